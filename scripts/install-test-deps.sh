#!/usr/bin/env bash
# Installs what the e2e, chart and release tests need, when missing: bats with bats-support
# and bats-assert, jq, docker-registry (the OCI registry of the publish round trip), gpg (a
# throwaway key that signs the charts there) and prometheus (promtool, for the chart's alert
# rules) from Debian, helm-docs (the docs' generated tables) from the Go module proxy, the
# Python packages pinned for the e2e, chart and release tests, and the JavaScript SDK of the
# SDK suite (e2e-tests/sdk/js, from its package-lock.json). The other Go tools (helm,
# kubeconform, cosign, the real credential helper, the Go SDK probe) are built on first use
# by scripts/go-tools.sh, cached.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/debian-install.sh bats bats-support bats-assert jq docker-registry gpg prometheus
scripts/go-tools.sh helm-docs >/dev/null
python3 -m pip install -q --disable-pip-version-check \
  -r e2e-tests/requirements.txt -r charts/tests/requirements.txt -r tests/requirements.txt
if command -v npm >/dev/null; then
  # Only when the lock changed since the last install: npm ci empties node_modules first.
  js=e2e-tests/sdk/js
  if ! cmp -s "$js/package-lock.json" "$js/node_modules/.installed-lock.json"; then
    (cd "$js" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    cp "$js/package-lock.json" "$js/node_modules/.installed-lock.json"
  fi
else
  echo "install-test-deps: npm is not installed: the SDK suite skips the JavaScript SDK" >&2
fi
