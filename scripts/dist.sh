#!/usr/bin/env bash
# dist/: what a release publishes, from the built policy.wasm:
#   policy.wasm                 the annotated module (scripts/annotate.sh: kwctl or the stand-in)
#   <chart>-<version>.tgz       both charts, packaged by Helm's engine (helm-python-sdk)
#   sbom.cdx.json               CycloneDX SBOM of the module's crates (scripts/sbom.py)
#   <chart>-<version>.tgz.prov  with SIGN_KEY set: Helm provenance files, the charts signed with
#                               that PGP key from KEYRING (default ~/.gnupg/secring.gpg); the
#                               charts then carry ArtifactHub's artifacthub.io/signKey (the key's
#                               fingerprint and SIGN_KEY_URL, by default the release's
#                               signing-key.asc)
#   signing-key.asc             with SIGN_KEY set: the public key, for `helm --verify` and ArtifactHub
#   SHA256SUMS                  sha256sum -c checks all of the above
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/release.py check
rm -rf dist
mkdir dist
scripts/annotate.sh policy.wasm dist/policy.wasm
charts=(charts/iamra-sidecar-policy charts/iamra-example)
if [[ -n ${SIGN_KEY:-} ]]; then
  # The public key and its fingerprint, read from the keyring without importing it anywhere.
  gnupg=$(mktemp -d)
  trap 'gpgconf --homedir "$gnupg" --kill gpg-agent 2>/dev/null; rm -rf "$gnupg"' EXIT
  GNUPGHOME=$gnupg gpg --batch --quiet --import "${KEYRING:-$HOME/.gnupg/secring.gpg}" 2>/dev/null
  fingerprint=$(GNUPGHOME=$gnupg gpg --batch --with-colons --list-keys "$SIGN_KEY" | awk -F: '$1 == "fpr" {print $10; exit}')
  [[ -n $fingerprint ]] || { echo "dist.sh: no key $SIGN_KEY in ${KEYRING:-$HOME/.gnupg/secring.gpg}" >&2; exit 1; }
  GNUPGHOME=$gnupg gpg --batch --armor --export "$fingerprint" >dist/signing-key.asc
  version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["package"]["version"])')
  url=${SIGN_KEY_URL:-https://github.com/iamra-sidecar/iamra-sidecar-policy/releases/download/v$version/signing-key.asc}
  # Package copies of the charts that name the key (ArtifactHub shows them as signed).
  staged=$(mktemp -d)
  for chart in "${charts[@]}"; do
    cp -r "$chart" "$staged/"
    python3 - "$staged/$(basename "$chart")/Chart.yaml" "$fingerprint" "$url" <<'PY'
import sys
path, fingerprint, url = sys.argv[1:]
text = open(path).read()
assert "\nannotations:\n" in text, path
text = text.replace("\nannotations:\n", "\nannotations:\n  artifacthub.io/signKey: |\n"
                    f"    fingerprint: {fingerprint}\n    url: {url}\n", 1)
open(path, "w").write(text)
PY
  done
  charts=("$staged"/*)
fi
python3 -c 'import sys, helm_python; [helm_python.package(c, destination="dist") for c in sys.argv[1:]]' \
  "${charts[@]}"
if [[ -n ${SIGN_KEY:-} ]]; then
  python3 -c 'import sys, helm_python; [helm_python.sign(a, key=sys.argv[1], keyring=sys.argv[2]) for a in sys.argv[3:]]' \
    "$SIGN_KEY" "${KEYRING:-$HOME/.gnupg/secring.gpg}" dist/*.tgz
fi
python3 scripts/sbom.py dist/sbom.cdx.json
(cd dist && sha256sum -- policy.wasm *.tgz* sbom.cdx.json $([[ -f signing-key.asc ]] && echo signing-key.asc) >SHA256SUMS)
ls -l dist
