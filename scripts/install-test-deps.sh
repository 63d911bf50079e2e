#!/usr/bin/env bash
# Installs what the e2e, chart and release tests need, when missing: bats, jq,
# docker-registry (the OCI registry of the publish round trip), gpg (a throwaway key
# that signs the charts there) and prometheus (promtool, for the chart's alert rules) from
# Debian, helm-docs (the docs' generated tables) from the Go module proxy, the Python
# packages pinned for the e2e, chart and release tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/debian-install.sh bats jq docker-registry gpg prometheus
scripts/go-tools.sh helm-docs >/dev/null
python3 -m pip install -q --disable-pip-version-check \
  -r e2e-tests/requirements.txt -r charts/tests/requirements.txt -r tests/requirements.txt
