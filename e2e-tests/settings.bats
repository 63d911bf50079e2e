#!/usr/bin/env bats
# Invalid settings stop kwctl before any request is evaluated: a non-zero exit with the
# policy's message on stderr. Valid variants run.

load helpers

@test "the bundled settings files are valid" {
  for settings in "$FIXTURES/settings.yaml" "$FIXTURES/settings-classic.yaml"; do
    evaluate "$FIXTURES/pod-plain.json" "$settings"
  done
}

@test "settings without trustAnchorArn" {
  settings_rejected '{"region": "eu-west-1"}' "trustAnchorArn is required"
}

@test "settings without region" {
  settings_rejected "{\"trustAnchorArn\": \"$TRUST_ANCHOR\"}" "region is required"
}

@test "empty settings" {
  settings_rejected '{}' "trustAnchorArn is required" "region is required"
}

@test "a region other than the trust anchor's (settings file)" {
  settings_rejected "$FIXTURES/settings-region-mismatch.yaml" \
    'region: "us-east-1" differs from the trust anchor'"'"'s region "eu-west-1"'
}

@test "a trust anchor ARN that is a profile ARN" {
  settings_rejected "$(settings_with "{\"trustAnchorArn\": \"$PROFILE\"}")" \
    "trustAnchorArn:"
}

@test "a region that is not an AWS region" {
  settings_rejected "$(settings_with '{"region": "europe"}')" 'region: "europe" is not an AWS region name'
}

@test "a privileged sidecar.port" {
  settings_rejected "$(settings_with '{"sidecar": {"port": 80}}')" "sidecar.port: 80 is out of range"
}

@test "sidecar.native that is not a boolean" {
  settings_rejected "$(settings_with '{"sidecar": {"native": "yes"}}')" "native"
}

@test "a misspelt settings key" {
  settings_rejected "$(settings_with '{"sidecar": {"nativ": false}}')" 'unknown field `nativ`'
}

@test "an unknown key under sidecar.resources (limit: for limits:)" {
  settings_rejected "$(settings_with '{"sidecar": {"resources": {"limit": {"memory": "1Gi"}}}}')" \
    'unknown field `limit`, expected `limits` or `requests`'
}

@test "a sidecar.logLevel the helper cannot honour (error)" {
  settings_rejected "$(settings_with '{"sidecar": {"logLevel": "error"}}')" \
    'unknown variant `error`, expected `debug` or `info`'
}

@test "a token duration default out of range" {
  settings_rejected "$(settings_with '{"defaults": {"sessionDuration": "13h"}}')" "defaults.sessionDuration:"
}

@test "certificate renewBefore not shorter than its duration" {
  settings_rejected "$(settings_with '{"certificate": {"duration": "8h", "renewBefore": "8h"}}')" \
    "must be shorter than certificate.duration"
}

@test "every settings problem is reported at once" {
  settings_rejected '{"sidecar": {"port": 1}}' "trustAnchorArn is required" "region is required" \
    "sidecar.port: 1 is out of range"
}
