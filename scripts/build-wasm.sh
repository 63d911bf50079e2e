#!/usr/bin/env bash
# Builds a policy crate to a module (wasm32-wasip1, release) with whichever toolchain
# this machine has:
# a rustup toolchain with the wasm32-wasip1 target (added when missing), or else
# Debian's rustc-web with std built from source (rust-web-src), wasm-ld (lld) and
# wasi-libc, installed on demand. WASM_TOOLCHAIN=rustup|debian forces one of them.
# Usage: scripts/build-wasm.sh [PACKAGE OUTPUT]   default: iamra-sidecar-policy policy.wasm
# (make bench builds its floor with: scripts/build-wasm.sh bench-floor target/bench-floor.wasm)
# WASM_FEATURES=a,b builds with those cargo features (make runner-tests: arena-poison).
# WASM_TARGET_DIR=dir builds under dir instead of target (make bench-profile's build,
# which keeps the function names, so that it does not replace the stripped one's).
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1
package=${1:-iamra-sidecar-policy}
output=${2:-policy.wasm}
crate=${package//-/_}
features=()
[ -n "${WASM_FEATURES:-}" ] && features=(--features "$WASM_FEATURES")
choice=${WASM_TOOLCHAIN:-auto}
dir=${WASM_TARGET_DIR:-target}

rustup_ready() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$target" && return 0
  echo "build-wasm: adding the $target target with rustup" >&2
  timeout 300 rustup target add "$target" >&2
}

if [ "$choice" = rustup ] || { [ "$choice" = auto ] && rustup_ready; }; then
  [ "$choice" = rustup ] && rustup_ready
  echo "build-wasm: rustup toolchain" >&2
  cargo build --locked --release --target "$target" --target-dir "$dir" -p "$package" --lib "${features[@]}"
  out=$dir/$target/release/$crate.wasm
else
  scripts/debian-install.sh rustc-web cargo-web rust-web-src lld wasi-libc
  echo "build-wasm: Debian rustc-web with build-std" >&2
  # Its own target dir: artifacts of two compilers never mix.
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_WASIP1_LINKER=wasm-ld \
    CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-Clink-self-contained=no -L/usr/lib/wasm32-wasi" \
    /usr/bin/cargo build --locked -Zbuild-std=std,panic_abort --release \
    --target "$target" --target-dir "$dir/debian" -p "$package" --lib "${features[@]}"
  out=$dir/debian/$target/release/$crate.wasm
fi

cp "$out" "$output"
echo "$output: $(stat -c %s "$output") bytes" >&2
