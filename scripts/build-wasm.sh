#!/usr/bin/env bash
# Builds policy.wasm (wasm32-wasip1, release) with whichever toolchain this machine has:
# a rustup toolchain with the wasm32-wasip1 target (added when missing), or else
# Debian's rustc-web with std built from source (rust-web-src), wasm-ld (lld) and
# wasi-libc, installed on demand. WASM_TOOLCHAIN=rustup|debian forces one of them.
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1
crate=iamra_sidecar_policy
choice=${WASM_TOOLCHAIN:-auto}

rustup_ready() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$target" && return 0
  echo "build-wasm: adding the $target target with rustup" >&2
  timeout 300 rustup target add "$target" >&2
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

debian_ready() {
  local missing=()
  for pkg in rustc-web cargo-web rust-web-src lld wasi-libc; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "build-wasm: installing ${missing[*]} from Debian" >&2
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

if [ "$choice" = rustup ] || { [ "$choice" = auto ] && rustup_ready; }; then
  [ "$choice" = rustup ] && rustup_ready
  echo "build-wasm: rustup toolchain" >&2
  cargo build --release --target "$target" -p iamra-sidecar-policy --lib
  out=target/$target/release/$crate.wasm
else
  debian_ready
  echo "build-wasm: Debian rustc-web with build-std" >&2
  # Its own target dir: artifacts of two compilers never mix.
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_WASIP1_LINKER=wasm-ld \
    CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-Clink-self-contained=no -L/usr/lib/wasm32-wasi" \
    /usr/bin/cargo build -Zbuild-std=std,panic_abort --release \
    --target "$target" --target-dir target/debian -p iamra-sidecar-policy --lib
  out=target/debian/$target/release/$crate.wasm
fi

cp "$out" policy.wasm
echo "policy.wasm: $(stat -c %s policy.wasm) bytes" >&2
