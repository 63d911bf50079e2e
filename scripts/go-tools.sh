#!/usr/bin/env bash
# go-tools.sh NAME: builds the Go tools of tools/go/NAME (the packages listed in its
# tools.txt, at the versions its go.mod and go.sum pin) into tools/go/bin, from the Go
# module proxy; a tool already built from the same go.sum is kept. Prints the bin folder.
# Needs Go 1.21+ on PATH (it fetches the go.mod's toolchain, 1.24, from the module proxy
# when older); the project's machines have it in /usr/local/go/bin.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: go-tools.sh NAME (a folder of tools/go)}
dir=$repo/tools/go/$name
bin=$repo/tools/go/bin
[ -f "$dir/tools.txt" ] || { echo "go-tools.sh: no $dir/tools.txt" >&2; exit 2; }
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "go-tools.sh: Go is not installed (go.dev/doc/install)" >&2; exit 2; }
mkdir -p "$bin"
stamp=$bin/.$name.go.sum
while read -r pkg; do
  [ -n "$pkg" ] && [ "${pkg:0:1}" != "#" ] || continue
  tool=$bin/$(basename "$pkg")
  if [ -x "$tool" ] && cmp -s "$dir/go.sum" "$stamp"; then continue; fi
  echo "go-tools.sh: building $pkg (tools/go/$name)" >&2
  (cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath -o "$tool" "$pkg")
done <"$dir/tools.txt"
cp "$dir/go.sum" "$stamp"
echo "$bin"
