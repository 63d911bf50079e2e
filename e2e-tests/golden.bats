#!/usr/bin/env bats
# Golden files: the whole pod the policy makes of a few canonical requests, committed as
# fixtures/golden/<case>.pod.json (the request with the patch applied, keys sorted,
# indented by 2), so that any change to the policy's output shows in a diff.
#
# After a change that is meant to alter the output, regenerate them and review the diff:
#   make golden          (GOLDEN_UPDATE=1 bats e2e-tests/golden.bats)

load helpers

GOLDEN="$FIXTURES/golden"

setup_file() {
  annotate_policy
}

# assert_golden CASE: the patched pod ($POD) is fixtures/golden/CASE.pod.json, byte for
# byte; with GOLDEN_UPDATE=1 the file is written instead.
assert_golden() {
  local golden="$GOLDEN/$1.pod.json" actual="$BATS_TEST_TMPDIR/$1.pod.json"
  apply_response_patch || return
  python3 -m json.tool --sort-keys --indent 2 "$POD" >"$actual" || return
  if [[ ${GOLDEN_UPDATE:-} == 1 ]]; then
    cp "$actual" "$golden"
    return
  fi
  [[ -f $golden ]] || fail "$golden is missing: make golden writes it" || return
  diff -u --label "$golden (committed)" --label "$1: the policy's pod now" "$golden" "$actual" >&2 ||
    fail "the policy's pod differs from $golden (above); if the change is intended, run make golden and commit the diff"
}

@test "golden: plain pod" {
  evaluate "$FIXTURES/pod-plain.json"
  assert_golden plain
}

@test "golden: init containers" {
  evaluate "$FIXTURES/pod-init-containers.json"
  assert_golden init-containers
}

@test "golden: variables the containers already set" {
  evaluate "$FIXTURES/pod-env-preset.json"
  assert_golden env-preset
}

@test "golden: classic sidecar (sidecar.native: false)" {
  evaluate "$FIXTURES/pod-plain.json" "$FIXTURES/settings-classic.yaml"
  assert_golden classic-sidecar
}

@test "golden: a ReplicaSet's pod with misspelt annotations: only its warnings recorded" {
  evaluate "$FIXTURES/pod-replicaset-typos.json"
  assert_golden replicaset-typos
}

@test "golden: IRSA from the ServiceAccount's role" {
  use_context_aware
  SESSION="$FIXTURES/irsa/sa-irsa.yml"
  evaluate "$FIXTURES/irsa/pod.json" "$FIXTURES/irsa/settings.yaml"
  assert_golden irsa
}

@test "golden: a KubeVirt VM with IRSA, its token shared with the guest" {
  use_context_aware
  SESSION="$FIXTURES/kubevirt/sa-irsa.yml"
  evaluate "$FIXTURES/kubevirt/vm-burstable.json" "$FIXTURES/kubevirt/settings-share.yaml"
  assert_golden kubevirt-vm
}
