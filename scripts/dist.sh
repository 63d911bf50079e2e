#!/usr/bin/env bash
# dist/: what a release publishes, from the built policy.wasm:
#   policy.wasm                 the annotated module (scripts/annotate.sh: kwctl or the stand-in)
#   <chart>-<version>.tgz       both charts, packaged by Helm's engine (helm-python-sdk)
#   sbom.cdx.json               CycloneDX SBOM of the module's crates (scripts/sbom.py)
#   <chart>-<version>.tgz.prov  with SIGN_KEY set: Helm provenance files, the charts signed with
#                               that PGP key from KEYRING (default ~/.gnupg/secring.gpg)
#   SHA256SUMS                  sha256sum -c checks all of the above
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/release.py check
rm -rf dist
mkdir dist
scripts/annotate.sh policy.wasm dist/policy.wasm
python3 -c 'import sys, helm_python; [helm_python.package(c, destination="dist") for c in sys.argv[1:]]' \
  charts/iamra-sidecar-policy charts/iamra-example
if [[ -n ${SIGN_KEY:-} ]]; then
  python3 -c 'import sys, helm_python; [helm_python.sign(a, key=sys.argv[1], keyring=sys.argv[2]) for a in sys.argv[3:]]' \
    "$SIGN_KEY" "${KEYRING:-$HOME/.gnupg/secring.gpg}" dist/*.tgz
fi
python3 scripts/sbom.py dist/sbom.cdx.json
(cd dist && sha256sum -- policy.wasm *.tgz* sbom.cdx.json >SHA256SUMS)
ls -l dist
