#!/usr/bin/env bash
# Installs what the e2e, chart and release tests need, when missing: bats, jq,
# docker-registry (the OCI registry of the publish round trip) and gpg (a throwaway key
# that signs the charts there) from Debian, the Python
# packages pinned for the e2e, chart and release tests.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v bats >/dev/null 2>&1 || missing+=(bats)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v gpg >/dev/null 2>&1 || missing+=(gpg)
if ((${#missing[@]})); then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
python3 -m pip install -q --disable-pip-version-check \
  -r e2e-tests/requirements.txt -r charts/tests/requirements.txt -r tests/requirements.txt
