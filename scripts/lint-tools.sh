#!/usr/bin/env bash
# Makes sure `cargo fmt` and `cargo clippy` run, for make lint: rustup's components on a
# rustup toolchain, else Debian's rustfmt-web and rust-web-clippy, the linters of the
# rustc-web that scripts/build-wasm.sh falls back to.
set -euo pipefail
cd "$(dirname "$0")/.."

components=()
packages=()
command -v cargo >/dev/null 2>&1 || command -v rustup >/dev/null 2>&1 ||
  packages+=(rustc-web cargo-web)
cargo fmt --version >/dev/null 2>&1 || { components+=(rustfmt); packages+=(rustfmt-web); }
cargo clippy --version >/dev/null 2>&1 || { components+=(clippy); packages+=(rust-web-clippy); }
((${#packages[@]})) || exit 0
if command -v rustup >/dev/null 2>&1; then
  echo "lint-tools: adding ${components[*]} with rustup" >&2
  timeout 300 rustup component add "${components[@]}" >&2
else
  scripts/debian-install.sh "${packages[@]}"
fi
