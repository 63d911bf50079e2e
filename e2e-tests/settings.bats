#!/usr/bin/env bats
# Invalid settings stop kwctl before any request is evaluated: a non-zero exit with the
# policy's message on stderr. Valid variants run.

load helpers

ANCHOR=arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f

# settings_json EXTRA_JSON: the minimal valid settings merged with EXTRA_JSON (jq's *).
settings_json() {
  jq -cn --arg anchor "$ANCHOR" --argjson extra "$1" \
    '{trustAnchorArn: $anchor, region: "eu-west-1"} * $extra'
}

@test "the bundled settings files are valid" {
  for settings in "$FIXTURES/settings.yaml" "$FIXTURES/settings-classic.yaml"; do
    evaluate "$FIXTURES/pod-plain.json" "$settings"
  done
}

@test "settings without trustAnchorArn" {
  settings_rejected '{"region": "eu-west-1"}' "trustAnchorArn is required"
}

@test "settings without region" {
  settings_rejected "{\"trustAnchorArn\": \"$ANCHOR\"}" "region is required"
}

@test "empty settings" {
  settings_rejected '{}' "trustAnchorArn is required" "region is required"
}

@test "a region other than the trust anchor's (settings file)" {
  settings_rejected "$FIXTURES/settings-region-mismatch.yaml" \
    'region: "us-east-1" differs from the trust anchor'"'"'s region "eu-west-1"'
}

@test "a trust anchor ARN that is a profile ARN" {
  settings_rejected "$(settings_json '{"trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70"}')" \
    "trustAnchorArn:"
}

@test "a region that is not an AWS region" {
  settings_rejected "$(settings_json '{"region": "europe"}')" 'region: "europe" is not an AWS region name'
}

@test "a privileged sidecar.port" {
  settings_rejected "$(settings_json '{"sidecar": {"port": 80}}')" "sidecar.port: 80 is out of range"
}

@test "sidecar.native that is not a boolean" {
  settings_rejected "$(settings_json '{"sidecar": {"native": "yes"}}')" "native"
}

@test "a misspelt settings key" {
  settings_rejected "$(settings_json '{"sidecar": {"nativ": false}}')" 'unknown field `nativ`'
}

@test "a token duration default out of range" {
  settings_rejected "$(settings_json '{"defaults": {"sessionDuration": "13h"}}')" "defaults.sessionDuration:"
}

@test "certificate renewBefore not shorter than its duration" {
  settings_rejected "$(settings_json '{"certificate": {"duration": "8h", "renewBefore": "8h"}}')" \
    "must be shorter than certificate.duration"
}

@test "every settings problem is reported at once" {
  settings_rejected '{"sidecar": {"port": 1}}' "trustAnchorArn is required" "region is required" \
    "sidecar.port: 1 is out of range"
}
