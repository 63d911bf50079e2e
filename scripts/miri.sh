#!/usr/bin/env bash
# The arena's tests (src/arena.rs) under miri with strict provenance, as bumpalo's CI
# runs its own: no integer-to-pointer cast, no use of a reset chunk. Needs a nightly
# toolchain with miri; without one it says so and skips.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  echo "SKIPPED: the arena under miri (no nightly toolchain with miri;" \
    "rustup toolchain install nightly --component miri)"
  exit 0
fi
MIRIFLAGS="-Zmiri-strict-provenance ${MIRIFLAGS:-}" \
  cargo +nightly miri test --locked -p iamra-sidecar-policy --lib arena::
