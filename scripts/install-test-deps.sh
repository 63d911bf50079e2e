#!/usr/bin/env bash
# Installs what the e2e, chart and release tests need, when missing: bats with bats-support
# and bats-assert, jq, docker-registry (the OCI registry of the publish round trip) and gpg
# (a throwaway key that signs the charts there) from Debian, the Python packages pinned for
# the e2e, chart and release tests. The Go tools (helm, kubeconform, cosign) are built on
# first use by scripts/go-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/debian-install.sh bats bats-support bats-assert jq docker-registry gpg
python3 -m pip install -q --disable-pip-version-check \
  -r e2e-tests/requirements.txt -r charts/tests/requirements.txt -r tests/requirements.txt
