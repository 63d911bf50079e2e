"""iamra-example: a Job with the annotations the policy reads, running
`aws sts get-caller-identity`, that completes thanks to the native sidecar."""

from __future__ import annotations

import pytest
import yaml

from chartlib import (
    EXAMPLE_CHART,
    EXAMPLE_REQUIRED,
    POLICY_CHART,
    HelmValuesError,
    PROFILE,
    ROLE,
    find,
    kinds,
    merge,
    notes,
    render_example,
    render_raw,
)


def pod_spec(objs):
    return find(objs, "Job")["spec"]["template"]


def test_defaults():
    objs = render_example()
    assert kinds(objs) == [("Job", "iamra-iamra-example"), ("ServiceAccount", "iamra-iamra-example")]
    template = pod_spec(objs)
    assert template["metadata"]["annotations"] == {
        "iamra.aws/role-arn": ROLE,
        "iamra.aws/signing-profile-arn": PROFILE,
    }
    spec = template["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "iamra-iamra-example"
    (container,) = spec["containers"]
    assert container["args"][:2] == ["sts", "get-caller-identity"]
    assert container["image"].startswith("public.ecr.aws/aws-cli/aws-cli:")
    # The example must not bring its own helper: the policy injects it.
    assert "initContainers" not in spec


def test_annotation_prefix_matches_the_policy_chart_default():
    policy, example = (yaml.safe_load((c / "values.yaml").read_text())
                       for c in (POLICY_CHART, EXAMPLE_CHART))
    assert example["annotationPrefix"] == policy["annotationPrefix"]


def test_options():
    objs = render_example({
        "annotationPrefix": "example.com",
        "sessionDuration": "1h",
        "serviceAccount": {"create": True, "name": "reader"},
        "image": {"tag": "2.30.0", "pullPolicy": "Always"},
        "job": {"backoffLimit": 0, "activeDeadlineSeconds": 60, "ttlSecondsAfterFinished": None},
    })
    job = find(objs, "Job")
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "example.com/role-arn": ROLE,
        "example.com/signing-profile-arn": PROFILE,
        "example.com/token-duration": "1h",
    }
    assert find(objs, "ServiceAccount", "reader")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "reader"
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 60)
    assert "ttlSecondsAfterFinished" not in job["spec"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":2.30.0") and container["imagePullPolicy"] == "Always"


def test_existing_service_account():
    objs = render_example({"serviceAccount": {"create": False}})
    assert [k for k, _ in kinds(objs)] == ["Job"]
    assert pod_spec(objs)["spec"]["serviceAccountName"] == "default"


def test_independent_of_the_policy_chart():
    chart = yaml.safe_load((EXAMPLE_CHART / "Chart.yaml").read_text())
    assert not chart.get("dependencies")
    assert not (EXAMPLE_CHART / "charts").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "missing properties 'roleArn', 'profileArn'"),
        ({"roleArn": ROLE}, "missing property 'profileArn'"),
        (merge(EXAMPLE_REQUIRED, {"roleArn": "arn:aws:iam::123456789012:user/app"}), "/roleArn"),
        (merge(EXAMPLE_REQUIRED, {"profileArn": PROFILE.replace("profile/", "trust-anchor/")}), "/profileArn"),
        (merge(EXAMPLE_REQUIRED, {"sessionDuration": "soon"}), "/sessionDuration"),
        (merge(EXAMPLE_REQUIRED, {"image": {"tag": ""}}), "/image/tag"),
        (merge(EXAMPLE_REQUIRED, {"rolearn": ROLE}), "additional properties 'rolearn' not allowed"),
    ],
)
def test_missing_or_malformed_values_fail(values, message):
    with pytest.raises(HelmValuesError) as err:
        render_raw(EXAMPLE_CHART, values)
    assert message in str(err.value)


def test_notes_tell_how_to_run_it():
    text = notes(render_raw(EXAMPLE_CHART, EXAMPLE_REQUIRED))
    assert "kubectl label namespace iamra-system iamra.aws/enable=true" in text
    assert "logs job/iamra-iamra-example -c aws-cli" in text
