#!/usr/bin/env bats
# The suite's tools: the JSON patch applier (the jsonpatch package, shared with
# scripts/demo.sh) as the suite calls it, and the demo itself. A wrong applier would make
# every mutation test meaningless.

load helpers

REPO="$(cd "$E2E_DIR/.." && pwd)"

# patched DOCUMENT_JSON PATCH_JSON: prints the patched document, compact.
patched() {
  printf '%s' "$1" >"$BATS_TEST_TMPDIR/doc.json"
  printf '%s' "$2" >"$BATS_TEST_TMPDIR/patch.json"
  apply_json_patch "$BATS_TEST_TMPDIR/doc.json" "$BATS_TEST_TMPDIR/patch.json"
}

@test "jsonpatch: add, remove and replace, with escaped pointers and array positions" {
  result=$(patched '{"metadata": {"annotations": {"a": "1"}}, "l": [1, 2, 3]}' \
    '[{"op": "add", "path": "/metadata/annotations/iamra.aws~1injected", "value": "true"},
      {"op": "add", "path": "/l/0", "value": 0},
      {"op": "add", "path": "/l/-", "value": 4},
      {"op": "remove", "path": "/l/1"},
      {"op": "replace", "path": "/metadata/annotations/a", "value": "2"},
      {"op": "add", "path": "/t~0x", "value": null}]')
  [[ $(jq -cS . <<<"$result") == '{"l":[0,2,3,4],"metadata":{"annotations":{"a":"2","iamra.aws/injected":"true"}},"t~x":null}' ]]
}

@test "jsonpatch: move, copy and test" {
  result=$(patched '{"a": {"b": [1]}, "c": 1}' \
    '[{"op": "copy", "from": "/a/b", "path": "/d"},
      {"op": "move", "from": "/c", "path": "/a/c"},
      {"op": "test", "path": "/a/c", "value": 1.0}]')
  [[ $(jq -cS . <<<"$result") == '{"a":{"b":[1],"c":1},"d":[1]}' ]]
}

@test "jsonpatch: a patch that does not apply is refused with jsonpatch's error" {
  for patch in '[{"op": "remove", "path": "/missing"}]' \
    '[{"op": "replace", "path": "/x", "value": 1}]' \
    '[{"op": "add", "path": "/l/3", "value": 1}]' \
    '[{"op": "add", "path": "/l/01", "value": 1}]' \
    '[{"op": "add", "path": "/no/parent", "value": 1}]' \
    '[{"op": "test", "path": "/n", "value": true}]' \
    '[{"op": "frobnicate", "path": "/n"}]'; do
    run patched '{"l": [1, 2], "n": 1}' "$patch"
    assert_failure 1
    assert_output --regexp 'json(patch|pointer)\.[A-Za-z]+: '
    refute_output --partial '"l"'  # no document printed
  done
}

@test "demo.sh prints the response, the patched pod and a summary for the bundled example" {
  run "$REPO/scripts/demo.sh" "$KWCTL" "$FIXTURES/pod-plain.json" "$FIXTURES/settings.yaml"
  assert_success
  assert_output --partial '"patchType": "JSONPatch"'
  assert_output --partial "=== Pod after the patch ==="
  assert_output --partial '"name": "iamra-credential-helper"'
  assert_line --index -1 "Summary: sidecar iamra-credential-helper added as a native sidecar (initContainers[0]); 1 container(s) wired (app) to http://127.0.0.1:9911; 0 warning(s)."
}

@test "demo.sh summarises a rejection" {
  run "$REPO/scripts/demo.sh" "$KWCTL" \
    "$(with_spec "$FIXTURES/pod-plain.json" '.hostNetwork = true')" "$FIXTURES/settings.yaml"
  assert_success
  assert_line --index -1 --partial "Summary: rejected (400): spec.hostNetwork is true"
}

@test "demo.sh fails on invalid settings" {
  run "$REPO/scripts/demo.sh" "$KWCTL" "$FIXTURES/pod-plain.json" '{"region": "eu-west-1"}'
  assert_failure
  assert_output --partial "trustAnchorArn is required"
}
