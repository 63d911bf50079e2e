#!/usr/bin/env bash
# Builds the Go test tools of one wrapper module, tools/go/NAME, from the Go module proxy
# and prints the directory that holds them. In the wrapper: go.mod + go.sum pin the
# versions, tools.txt names the binaries ("name package" lines), ldflags.txt (optional)
# adds link flags, cgo.txt (optional, any content) builds with cgo for a tool that needs
# it. Binaries are cached under the user's cache directory, keyed by a hash of the
# wrapper's files, so a second run builds nothing.
# Go is for test infrastructure only: nothing built here is part of the product.
#   scripts/go-tools.sh k8s        -> ~/.cache/iamra-sidecar/go/k8s-<hash>
set -euo pipefail
name=${1:?usage: go-tools.sh NAME (a directory under tools/go)}
wrapper="$(cd "$(dirname "$0")/.." && pwd)/tools/go/$name"
[ -f "$wrapper/go.mod" ] || { echo "go-tools.sh: no $wrapper/go.mod" >&2; exit 2; }
command -v go >/dev/null || { echo "go-tools.sh: Go is not installed" >&2; exit 3; }
key=$(cd "$wrapper" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum \
  | cut -c1-12)
bin="${XDG_CACHE_HOME:-$HOME/.cache}/iamra-sidecar/go/$name-$key"
if [ ! -f "$bin/.complete" ]; then
  mkdir -p "$bin"
  ldflags="-s -w"
  [ ! -f "$wrapper/ldflags.txt" ] || ldflags+=" $(grep -v '^#' "$wrapper/ldflags.txt")"
  cgo=0
  [ ! -f "$wrapper/cgo.txt" ] || cgo=1
  grep -v '^#' "$wrapper/tools.txt" | while read -r tool pkg; do
    [ -n "$tool" ] || continue
    echo "go-tools.sh: building $tool ($pkg) into $bin" >&2
    (cd "$wrapper" && CGO_ENABLED=$cgo go build -trimpath \
      -ldflags "$ldflags" -o "$bin/$tool" "$pkg") >&2
  done
  touch "$bin/.complete"
fi
echo "$bin"
