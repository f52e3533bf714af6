package main

import (
	"bytes"
	"strings"
	"testing"
)

const generated = `package actor

type PID struct {
	state protoimpl.MessageState
	Address string
	Id      string
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

type Terminated struct {
	Who *PID
}
`

func TestPatchAddsFieldOnceAndFormats(t *testing.T) {
	out, err := patch([]byte(generated))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "ref processRef"); n != 1 {
		t.Fatalf("field inserted %d times, want 1:\n%s", n, out)
	}
	pid := string(out[:strings.Index(string(out), "type Terminated")])
	if !strings.Contains(pid, "ref processRef") {
		t.Fatalf("field not inside PID:\n%s", out)
	}
	again, err := patch(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Fatalf("second patch changed the file:\n%s", again)
	}
}

func TestPatchRejectsFilesWithoutPID(t *testing.T) {
	if _, err := patch([]byte("package actor\n\ntype Other struct{}\n")); err == nil {
		t.Fatal("patch of a file without PID succeeded")
	}
}
