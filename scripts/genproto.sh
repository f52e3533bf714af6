#!/usr/bin/env bash
# Regenerates the Go code of every .proto into the directory given (default:
# the repository root). `make proto` writes in place; `make lint` generates
# into a temporary directory and fails if the committed code differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
cd "$root"
go=${GO:-go}
"$go" tool buf generate proto --template proto/buf.gen.yaml -o "$out"
# actor.PID gets its process cache field (see tools/cmd/pidfield).
"$go" run ./tools/cmd/pidfield "$out/sdk/actor/actor.pb.go"
