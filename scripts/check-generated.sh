#!/usr/bin/env bash
# Fails if the committed generated code is not what `make proto` produces.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/genproto.sh" "$tmp"
stale=0
while IFS= read -r f; do
  rel=${f#"$tmp"/}
  if ! cmp -s "$f" "$root/$rel"; then
    echo "stale generated file: $rel (run 'make proto')" >&2
    stale=1
  fi
done < <(find "$tmp" -type f)
exit $stale
