#!/usr/bin/env bash
# annotate.sh MODULE OUTPUT [METADATA]: the module with METADATA (default metadata.yml) and
# README.md embedded, by kwctl when it is on PATH, else by the project's stand-in
# e2e-tests/tools/annotate.py (the same metadata; kwctl also re-encodes the code, see
# annotate.py).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
metadata=${3:-$repo/metadata.yml}
if command -v kwctl >/dev/null; then
  echo "annotating with $(kwctl --version)" >&2
  RUST_BACKTRACE=0 kwctl annotate -m "$metadata" -u "$repo/README.md" -o "$2" "$1"
else
  echo "annotating with e2e-tests/tools/annotate.py (kwctl not on PATH)" >&2
  python3 "$repo/e2e-tests/tools/annotate.py" "$metadata" "$1" "$2" -u "$repo/README.md"
fi
