#!/usr/bin/env bash
# Installs the given Debian packages that are not installed yet (apt-get, as root or
# through sudo). Used by the build, lint, test-deps and load scripts.
# Usage: scripts/debian-install.sh PACKAGE...
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
echo "installing ${missing[*]} from Debian" >&2
as_root apt-get update -qq >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
