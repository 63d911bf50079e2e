"""iamra-sidecar-policy renders what it promises, with defaults and with each option."""

from __future__ import annotations

import pytest

from chartlib import (
    REQUIRED,
    HelmRenderError,
    objects,
    TRUST_ANCHOR,
    find,
    kinds,
    notes,
    render_policy,
    render_raw,
    merge,
    NAMESPACE,
    POLICY_CHART,
    VERSION,
)

INJECT = "iamra-sidecar"
GUARD = "iamra-sidecar-guard"
SERVER = "iamra-sidecar"
SERVER_ACCOUNT = "policy-server-iamra-sidecar"
READ_SERVICE_ACCOUNTS = "iamra-iamra-sidecar-read-serviceaccounts"
DEFAULT_ISSUER = {"name": "iamra-workload", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def inject(objs):
    return find(objs, "ClusterAdmissionPolicy", INJECT)


def guard(objs):
    return find(objs, "ClusterAdmissionPolicy", GUARD)


def test_defaults_render_the_promised_objects():
    assert kinds(render_policy()) == [
        ("Certificate", "iamra-workload-intermediate"),
        ("Certificate", "iamra-workload-root"),
        ("ClusterAdmissionPolicy", INJECT),
        ("ClusterAdmissionPolicy", GUARD),
        ("ClusterIssuer", "iamra-workload"),
        ("ClusterIssuer", "iamra-workload-selfsigned"),
        ("ClusterRole", READ_SERVICE_ACCOUNTS),
        ("ClusterRoleBinding", READ_SERVICE_ACCOUNTS),
        ("Issuer", "iamra-workload-root"),
        ("PolicyServer", SERVER),
        ("ServiceAccount", SERVER_ACCOUNT),
    ]


def test_inject_policy_defaults():
    spec = inject(render_policy())["spec"]
    assert spec["module"] == f"registry://ghcr.io/iamra-sidecar/policies/iamra-sidecar-policy:v{VERSION}"
    assert spec["mutating"] is True
    assert spec["mode"] == "protect"
    assert spec["failurePolicy"] == "Fail"
    assert spec["timeoutSeconds"] == 10
    assert "timeoutEvalSeconds" not in spec
    assert spec["policyServer"] == SERVER
    assert spec["backgroundAudit"] is False  # mutating only: audit says nothing
    assert spec["rules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}
    ]
    assert spec["contextAwareResources"] == [{"apiVersion": "v1", "kind": "ServiceAccount"}]


def test_opt_in_is_match_expressions_not_match_labels():
    # Kubewarden drops matchLabels of cluster-wide policies: a matchLabels opt-in would
    # select every namespace.
    selector = inject(render_policy())["spec"]["namespaceSelector"]
    assert selector == {
        "matchExpressions": [{"key": "iamra.aws/enable", "operator": "In", "values": ["true"]}]
    }


def test_opt_in_label_is_configurable():
    objs = render_policy({"optIn": {"key": "example.com/aws", "value": "yes"}})
    assert inject(objs)["spec"]["namespaceSelector"]["matchExpressions"] == [
        {"key": "example.com/aws", "operator": "In", "values": ["yes"]}
    ]


def test_settings_follow_the_contract():
    settings = inject(render_policy())["spec"]["settings"]
    assert settings == {
        "mode": "inject",
        "trustAnchorArn": TRUST_ANCHOR,
        "region": "eu-west-1",
        "annotationPrefix": "iamra.aws",
        "clusterName": "cluster",
        "sidecar": {
            "image": settings["sidecar"]["image"],  # checked against src/settings/mod.rs elsewhere
            "imagePullPolicy": "IfNotPresent",
            "port": 9911,
            "native": True,
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            "logLevel": "info",
        },
        "defaults": {"sessionDuration": "900s", "audience": "sts.amazonaws.com"},
        "certificate": {
            "issuer": DEFAULT_ISSUER,
            "duration": "24h",
            "renewBefore": "8h",
            "keyAlgorithm": "ECDSA",
            "keySize": 256,
        },
        "allowedRequesters": ["system:serviceaccount:cert-manager:cert-manager-csi-driver"],
        "certificateRequests": {"binding": "allowedRequesters"},
        "irsa": {
            "annotationPrefix": "eks.amazonaws.com",
            "tokenExpiration": 86400,
            "stsRegionalEndpoints": False,
            "region": "",
        },
        "readServiceAccounts": True,
        "kubevirt": {"shareTokenWithGuest": False, "virtiofsImage": "", "translateUid": True},
    }


def test_settings_values_pass_through():
    objs = render_policy(
        {
            "annotationPrefix": "example.com",
            "clusterName": "prod-eu-1",
            "sidecar": {"port": 19911, "native": False, "logLevel": "debug", "imagePullPolicy": "Always"},
            "defaults": {"sessionDuration": "1h", "audience": "example"},
            "certificate": {"keyAlgorithm": "RSA", "keySize": 3072, "duration": "48h", "renewBefore": "12h"},
            "allowedRequesters": ["system:serviceaccount:certs:csi"],
            "certificateRequests": {"binding": "requester"},
            "irsa": {"region": "eu-west-1", "stsRegionalEndpoints": True, "tokenExpiration": 3600},
            "kubevirt": {"shareTokenWithGuest": True, "virtiofsImage": "registry.example/launcher:v1",
                         "translateUid": False},
        }
    )
    s = inject(objs)["spec"]["settings"]
    assert (s["annotationPrefix"], s["clusterName"]) == ("example.com", "prod-eu-1")
    assert s["sidecar"]["port"] == 19911 and s["sidecar"]["native"] is False
    assert s["sidecar"]["logLevel"] == "debug" and s["sidecar"]["imagePullPolicy"] == "Always"
    assert s["defaults"] == {"sessionDuration": "1h", "audience": "example"}
    assert s["certificate"] == {**s["certificate"], "keyAlgorithm": "RSA", "keySize": 3072,
                                "duration": "48h", "renewBefore": "12h"}
    assert s["allowedRequesters"] == ["system:serviceaccount:certs:csi"]
    assert s["certificateRequests"] == {"binding": "requester"}
    assert s["irsa"]["region"] == "eu-west-1" and s["irsa"]["stsRegionalEndpoints"] is True
    assert s["irsa"]["tokenExpiration"] == 3600
    assert s["kubevirt"] == {"shareTokenWithGuest": True, "virtiofsImage": "registry.example/launcher:v1",
                             "translateUid": False}


def test_service_account_reads_can_be_turned_off():
    spec = inject(render_policy({"readServiceAccounts": False}))["spec"]
    assert spec["settings"]["readServiceAccounts"] is False
    assert "contextAwareResources" not in spec  # least privilege: nothing to read


def test_numeric_quantities_become_strings():
    # The policy reads quantities as strings; `cpu: 1` in YAML is a number.
    objs = render_policy({"sidecar": {"resources": {"requests": {"cpu": 1}, "limits": {"cpu": 0.5}}}})
    resources = inject(objs)["spec"]["settings"]["sidecar"]["resources"]
    assert resources["requests"]["cpu"] == "1"
    assert resources["limits"]["cpu"] == "0.5"
    assert resources["limits"]["memory"] == "64Mi"


@pytest.mark.parametrize(
    ("values", "mode", "failure_policy"),
    [
        ({}, "protect", "Fail"),
        ({"policy": {"mode": "monitor"}}, "monitor", "Ignore"),
        ({"policy": {"failurePolicy": "Ignore"}}, "protect", "Ignore"),
        ({"policy": {"mode": "monitor", "failurePolicy": "Fail"}}, "monitor", "Fail"),
    ],
)
def test_failure_policy_follows_mode(values, mode, failure_policy):
    spec = inject(render_policy(values))["spec"]
    assert (spec["mode"], spec["failurePolicy"]) == (mode, failure_policy)


def test_policy_cr_options():
    objs = render_policy(
        {
            "policy": {
                "name": "aws-creds",
                "module": {"registry": "registry.example", "repository": "iamra", "tag": "v9"},
                "timeoutSeconds": 15,
                "timeoutEvalSeconds": 12,
                "policyServer": "iamra",
                "backgroundAudit": True,
            },
            "guard": {"backgroundAudit": False},
            "policyServer": {"create": False},
        }
    )
    spec = find(objs, "ClusterAdmissionPolicy", "aws-creds")["spec"]
    assert spec["module"] == "registry://registry.example/iamra:v9"
    assert (spec["timeoutSeconds"], spec["timeoutEvalSeconds"]) == (15, 12)
    assert spec["policyServer"] == "iamra"
    assert spec["backgroundAudit"] is True
    # The guard shares module, server and timeouts.
    g = guard(objs)["spec"]
    assert (g["module"], g["policyServer"], g["timeoutSeconds"]) == (spec["module"], "iamra", 15)
    assert g["timeoutEvalSeconds"] == 12
    assert g["backgroundAudit"] is False


def test_guard_defaults():
    objs = render_policy()
    spec = guard(objs)["spec"]
    assert spec["mutating"] is False
    assert (spec["mode"], spec["failurePolicy"]) == ("protect", "Fail")
    assert "namespaceSelector" not in spec  # every namespace
    assert "contextAwareResources" not in spec
    assert spec["backgroundAudit"] is True
    assert spec["rules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]},
        {"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"], "resources": ["certificates"],
         "operations": ["CREATE", "UPDATE"]},
        {"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"], "resources": ["certificaterequests"],
         "operations": ["CREATE"]},
    ]
    settings = spec["settings"]
    assert settings["mode"] == "guard"
    assert settings == {**inject(objs)["spec"]["settings"], "mode": "guard"}


def test_guard_exclusions_and_mode():
    objs = render_policy(
        {"guard": {"excludeNamespaces": ["kube-system", "legacy"], "mode": "monitor"}}
    )
    spec = guard(objs)["spec"]
    assert spec["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "legacy"]}
        ]
    }
    assert (spec["mode"], spec["failurePolicy"]) == ("monitor", "Ignore")
    assert inject(objs)["spec"]["mode"] == "protect"


def test_guard_mode_follows_policy_mode_by_default():
    assert guard(render_policy({"policy": {"mode": "monitor"}}))["spec"]["mode"] == "monitor"


def test_guard_can_be_disabled():
    objs = render_policy({"guard": {"enabled": False}})
    assert [n for k, n in kinds(objs) if k == "ClusterAdmissionPolicy"] == [INJECT]


def issuer_of(objs, ref, namespace):
    """The issuer object an issuerRef names (an Issuer in the namespace of its user)."""
    assert ref.get("group", "cert-manager.io") == "cert-manager.io"
    matches = [o for o in objs if o["kind"] == ref["kind"] and o["metadata"]["name"] == ref["name"]
               and (ref["kind"] == "ClusterIssuer" or o["metadata"].get("namespace") == namespace)]
    assert len(matches) == 1, f"no {ref['kind']} {ref['name']} for namespace {namespace}"
    return matches[0]


def ca_certificate_of(objs, issuer, namespace):
    """The Certificate whose Secret a CA issuer signs with (a ClusterIssuer reads it from
    cert-manager's cluster resource namespace)."""
    secret = issuer["spec"]["ca"]["secretName"]
    return next(o for o in objs if o["kind"] == "Certificate" and o["spec"]["secretName"] == secret
                and o["metadata"]["namespace"] == namespace)


def chain(objs, issuer_ref, workload_namespace="payments"):
    """The CA certificates a pod certificate from issuer_ref chains through, signer first,
    up to the self-signed one: [(Certificate, its issuer), ...]."""
    out, ref, namespace = [], issuer_ref, workload_namespace
    while True:
        issuer = issuer_of(objs, ref, namespace)
        if "selfSigned" in issuer["spec"]:
            return out
        cert = ca_certificate_of(objs, issuer, "cert-manager")
        assert cert["spec"]["isCA"] is True
        out.append(cert)
        ref, namespace = cert["spec"]["issuerRef"], cert["metadata"]["namespace"]


def test_pod_certificates_chain_through_a_rotating_intermediate_to_a_long_lived_root():
    objs = render_policy()
    issuer = inject(objs)["spec"]["settings"]["certificate"]["issuer"]
    assert issuer == DEFAULT_ISSUER
    intermediate, root = chain(objs, issuer)
    assert intermediate["metadata"]["name"] == "iamra-workload-intermediate"
    assert root["metadata"]["name"] == "iamra-workload-root"
    # The intermediate renews on its own, with a new key: the trust anchor holds the root.
    i = intermediate["spec"]
    assert (i["duration"], i["renewBefore"]) == ("2160h", "720h")  # 90 days, renewed 30 before
    assert i["privateKey"]["rotationPolicy"] == "Always"
    # The root lives years and keeps its key across renewals, so a renewed root still
    # verifies everything against the certificate already in the trust anchor.
    r = root["spec"]
    assert (r["duration"], r["renewBefore"]) == ("87600h", "8760h")  # 10 years, renewed 1 before
    assert r["privateKey"]["rotationPolicy"] == "Never"
    assert r["issuerRef"] == {"name": "iamra-workload-selfsigned", "kind": "ClusterIssuer",
                              "group": "cert-manager.io"}
    # The root signs through a namespaced Issuer: no Certificate outside cert-manager's
    # namespace can get a certificate that chains to the trust anchor but skips the
    # workload issuer (which the guard watches).
    assert i["issuerRef"] == {"name": "iamra-workload-root", "kind": "Issuer", "group": "cert-manager.io"}
    assert find(objs, "Issuer", "iamra-workload-root")["metadata"]["namespace"] == "cert-manager"
    assert not [o for o in objs if o["kind"] == "ClusterIssuer" and o["spec"].get("ca", {}).get(
        "secretName") == r["secretName"]]


def test_notes_export_the_root_the_pods_chain_to():
    manifests = render_raw(POLICY_CHART, REQUIRED)
    root = chain(objects(manifests), DEFAULT_ISSUER)[-1]
    text = notes(manifests)
    assert (f"kubectl -n cert-manager get secret {root['spec']['secretName']} -o jsonpath='{{.data.tls\\.crt}}'"
            in text), text
    assert "renews every 60 days with a new key" in text
    assert "put the renewed root certificate into the trust\n   anchor (the commands above) within 8760h" in text


def test_a_root_that_does_not_outlive_the_intermediate_is_refused():
    with pytest.raises(HelmRenderError) as err:
        render_policy({"workloadIssuer": {"root": {"duration": "2000h", "renewBefore": "100h"}}})
    assert "the root CA lives \"2000h\", not longer than the intermediate" in str(err.value)


def test_workload_issuer_names_are_configurable():
    objs = render_policy(
        {"workloadIssuer": {"name": "pods-ca", "selfSignedName": "boot", "namespace": "certs",
                            "root": {"secretName": "r"}, "intermediate": {"secretName": "i"}}}
    )
    assert find(objs, "ClusterIssuer", "pods-ca")["spec"] == {"ca": {"secretName": "i"}}
    assert {o["metadata"]["namespace"] for o in objs if o["kind"] in ("Certificate", "Issuer")} == {"certs"}
    assert find(objs, "Certificate", "r")["spec"]["issuerRef"]["name"] == "boot"
    assert find(objs, "Certificate", "i")["spec"]["issuerRef"] == {"name": "r", "kind": "Issuer",
                                                                   "group": "cert-manager.io"}
    assert inject(objs)["spec"]["settings"]["certificate"]["issuer"]["name"] == "pods-ca"


SERVER_KINDS = ("PolicyServer", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")


@pytest.mark.parametrize(
    "issuer",
    [
        {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"},
        {"name": "team-ca", "kind": "Issuer", "group": "cert-manager.io"},
    ],
)
def test_existing_issuer(issuer):
    objs = render_policy({"workloadIssuer": {"create": False, **issuer}})
    assert [k for k, _ in kinds(objs) if k not in SERVER_KINDS] == ["ClusterAdmissionPolicy",
                                                                    "ClusterAdmissionPolicy"]
    assert inject(objs)["spec"]["settings"]["certificate"]["issuer"] == issuer
    assert guard(objs)["spec"]["settings"]["certificate"]["issuer"] == issuer


def test_bootstrap_without_inject_policy():
    # policy.enabled=false: no trust anchor needed yet; the issuer chain and the guard.
    manifests = render_raw(POLICY_CHART, {"policy": {"enabled": False}})
    objs = objects(manifests)
    assert [n for k, n in kinds(objs) if k == "ClusterAdmissionPolicy"] == [GUARD]
    assert chain(objs, DEFAULT_ISSUER)  # the CA chain exists before the trust anchor
    settings = guard(objs)["spec"]["settings"]
    assert (settings["trustAnchorArn"], settings["region"]) == ("", "")
    assert "policy.enabled=true" in notes(manifests)


@pytest.mark.parametrize(("binding", "says"), [
    ("allowedRequesters", "only system:serviceaccount:cert-manager:cert-manager-csi-driver may request"),
    ("requester", "The csi-driver must run with\n   app.driver.useTokenRequest: true"),
])
def test_notes_say_who_may_request_workload_certificates(binding, says):
    text = notes(render_raw(POLICY_CHART, merge(REQUIRED, {"certificateRequests": {"binding": binding}})))
    assert says in text, text


@pytest.mark.parametrize("kind,endpoints,endpoint", [
    ("ServiceMonitor", "endpoints", {"port": "metrics", "interval": "30s"}),
    ("PodMonitor", "podMetricsEndpoints", {"portNumber": 8080, "interval": "30s"}),
])
@pytest.mark.parametrize("server,values", [
    ("iamra-sidecar", {}),
    ("default", {"policyServer": {"create": False}, "policy": {"policyServer": "default"}}),
])
def test_prometheus_monitor(kind, endpoints, endpoint, server, values):
    # What the Kubewarden controller (v1.35.0) puts on the policy-server Service and pods
    # of PolicyServer <server>; the old `app: kubewarden-policy-server-<server>` is gone
    # from Services since 1.24.
    objs = render_policy(merge(values, {"prometheus": {"enabled": True, "kind": kind,
                                                       "labels": {"release": "kps"}}}))
    monitor = find(objs, kind)
    assert monitor["metadata"]["namespace"] == NAMESPACE  # the release namespace
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"] == {"matchLabels": {
        "app.kubernetes.io/instance": f"policy-server-{server}", "app.kubernetes.io/part-of": "kubewarden"}}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"][endpoints] == [endpoint]


def test_prometheus_namespace_follows_the_policy_server():
    objs = render_policy({"prometheus": {"enabled": True}, "policyServer": {"namespace": "kw"}})
    monitor = find(objs, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "kw"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["kw"]}


def test_prometheus_off_by_default():
    assert not [o for o in render_policy() if o["kind"] in ("ServiceMonitor", "PodMonitor")]


def test_labels_on_every_object():
    for obj in render_policy({"prometheus": {"enabled": True}}):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]
        assert labels["app.kubernetes.io/instance"] == "iamra", obj["kind"]


def test_notes_explain_trust_anchor_and_renewal():
    text = notes(render_raw(POLICY_CHART, REQUIRED))
    assert "get secret iamra-workload-root" in text
    assert "aws rolesanywhere create-trust-anchor" in text
    assert "aws rolesanywhere update-trust-anchor --region eu-west-1 --trust-anchor-id 8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f" in text
    assert "rotationPolicy Never" in text and "second trust anchor during the\n   overlap" in text
    assert "kubectl label namespace <namespace> iamra.aws/enable=true" in text
    assert "iamra.aws/role-arn" in text and "iamra.aws/signing-profile-arn" in text
    assert "clusterwide-iamra-sidecar" in text
    assert "approver-policy" in text


def test_notes_wait_until_both_policies_are_active():
    text = notes(render_raw(POLICY_CHART, REQUIRED))
    assert ("kubectl wait --for=jsonpath='{.status.policyStatus}'=active --timeout=5m "
            "clusteradmissionpolicy/iamra-sidecar clusteradmissionpolicy/iamra-sidecar-guard") in text
    text = notes(render_raw(POLICY_CHART, merge(REQUIRED, {"guard": {"enabled": False}})))
    assert "--timeout=5m clusteradmissionpolicy/iamra-sidecar\n" in text


def test_notes_offer_helm_test_only_where_it_exists():
    assert "helm test iamra -n iamra-system" in notes(render_raw(POLICY_CHART, REQUIRED))
    assert "helm test" not in notes(render_raw(POLICY_CHART, {"policy": {"enabled": False}}))
    assert "helm test" not in notes(render_raw(POLICY_CHART, merge(REQUIRED, {"helmTest": {"enabled": False}})))


def test_notes_never_reuse_values():
    for values in ({}, {"policy": {"enabled": False}}):
        text = notes(render_raw(POLICY_CHART, merge(REQUIRED, values)))
        assert "--reuse-values" not in text.replace("never\n--reuse-values", "")
        assert "--reset-then-reuse-values" in text


def test_notes_give_the_uninstall_order():
    text = notes(render_raw(POLICY_CHART, REQUIRED))
    steps = [text.index(s) for s in (
        "--set policy.enabled=false --set guard.enabled=false",
        "kubectl wait --for=delete --timeout=2m mutatingwebhookconfiguration/clusterwide-iamra-sidecar "
        "validatingwebhookconfiguration/clusterwide-iamra-sidecar-guard",
        "helm uninstall iamra -n iamra-system")]
    assert steps == sorted(steps)


def test_notes_warn_about_monitor_mode():
    text = notes(render_raw(POLICY_CHART, merge(REQUIRED, {"policy": {"mode": "monitor"}})))
    assert "pods are NOT\n   injected" in text


def test_notes_for_existing_issuer():
    text = notes(render_raw(POLICY_CHART, merge(REQUIRED, {"workloadIssuer": {
        "create": False, "name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"}})))
    assert "existing AWSPCAClusterIssuer pca" in text
    assert "create-trust-anchor" not in text


def test_a_second_chain_for_a_root_key_roll_installs_beside_the_first():
    # docs/operations.md: a second release with its own names, guarded by a second guard
    # on the first release's PolicyServer; no object of the two may share a name.
    second = render_policy({
        "policy": {"enabled": False, "policyServer": "iamra-sidecar"}, "helmTest": {"enabled": False},
        "readServiceAccounts": False, "policyServer": {"create": False},
        "guard": {"name": "iamra-sidecar-guard-2"},
        "workloadIssuer": {"name": "iamra-workload-2", "selfSignedName": "iamra-workload-2-selfsigned",
                           "root": {"secretName": "iamra-workload-root-2", "commonName": "iamra-workload-root-2"},
                           "intermediate": {"secretName": "iamra-workload-intermediate-2",
                                            "commonName": "iamra-workload-intermediate-2"}}})
    first = render_policy(hooks=True)

    def names(objs):
        return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs}

    assert not names(first) & names(second)
    guard2 = find(second, "ClusterAdmissionPolicy", "iamra-sidecar-guard-2")
    assert guard2["spec"]["policyServer"] == "iamra-sidecar"
    assert guard2["spec"]["settings"]["certificate"]["issuer"]["name"] == "iamra-workload-2"
    assert [c["metadata"]["name"] for c in chain(second, {"name": "iamra-workload-2", "kind": "ClusterIssuer",
                                                          "group": "cert-manager.io"})] == [
        "iamra-workload-intermediate-2", "iamra-workload-root-2"]
