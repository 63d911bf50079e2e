#!/usr/bin/env bash
# annotate.sh MODULE OUTPUT: the module with metadata.yml and README.md embedded, by kwctl
# when it is on PATH, else by the project's stand-in e2e-tests/tools/annotate.py (the same
# metadata; kwctl also re-encodes the code, see annotate.py).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if command -v kwctl >/dev/null; then
  echo "annotating with $(kwctl --version)" >&2
  RUST_BACKTRACE=0 kwctl annotate -m "$repo/metadata.yml" -u "$repo/README.md" -o "$2" "$1"
else
  echo "annotating with e2e-tests/tools/annotate.py (kwctl not on PATH)" >&2
  python3 "$repo/e2e-tests/tools/annotate.py" "$repo/metadata.yml" "$1" "$2" -u "$repo/README.md"
fi
