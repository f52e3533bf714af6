// Command pidfield adds the process cache to the generated actor.PID struct.
//
// actor.PID is a protobuf message so that users can embed PIDs in their own
// messages. Local sends must not pay a registry lookup per message, so the
// runtime caches the resolved process on the PID itself, in an unexported
// field that protobuf reflection ignores (it only maps fields carrying a
// `protobuf` tag). protoc-gen-go has no hook for extra fields, so `make proto`
// runs this command on sdk/actor/actor.pb.go right after `buf generate`.
//
// The edit is idempotent and the output gofmt-ed, so regenerating yields the
// committed file byte for byte and `make lint` can detect stale code.
//
// Usage:
//
//	go run ./tools/cmd/pidfield sdk/actor/actor.pb.go
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
)

// field is what gets inserted as the last field of PID. processRef is defined
// by hand in sdk/actor/pid.go.
const field = "\n\t// ref caches the resolved local process (see pid.go); added by tools/cmd/pidfield.\n\tref processRef\n"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pidfield path/to/actor.pb.go")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "pidfield:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := patch(src)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// patch inserts field before the closing brace of `type PID struct`.
func patch(src []byte) ([]byte, error) {
	if bytes.Contains(src, []byte("ref processRef")) {
		return src, nil
	}
	start := bytes.Index(src, []byte("type PID struct {"))
	if start < 0 {
		return nil, fmt.Errorf("no PID struct found")
	}
	end := bytes.Index(src[start:], []byte("\n}\n"))
	if end < 0 {
		return nil, fmt.Errorf("PID struct is not closed")
	}
	at := start + end
	var b bytes.Buffer
	b.Write(src[:at])
	b.WriteString(field)
	b.Write(src[at+1:])
	return format.Source(b.Bytes())
}
