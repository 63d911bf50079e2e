{{/*
Chart name, for labels.
*/}}
{{- define "iamra.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Common labels of every object.
*/}}
{{- define "iamra.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "iamra.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: iamra-sidecar
{{- end -}}

{{/*
An image (or OCI artifact) reference from {registry, repository, tag}: the registry is
global.cattle.systemDefaultRegistry when that is set; a tag that is a digest (sha256:...)
is joined with @. Argument: dict "root" (the chart context) and "image".
*/}}
{{- define "iamra.image" -}}
{{- $registry := .image.registry -}}
{{- with ((.root.Values.global).cattle).systemDefaultRegistry }}{{ $registry = . }}{{ end -}}
{{- $tag := toString .image.tag -}}
{{- printf "%s%s%s%s" (ternary "" (printf "%s/" (trimSuffix "/" $registry)) (empty $registry)) .image.repository (ternary "@" ":" (hasPrefix "sha256:" $tag)) $tag -}}
{{- end -}}

{{/*
The namespace of the PolicyServer's ServiceAccount (where Kubewarden deploys its
PolicyServers): policyServer.namespace, else the release namespace.
*/}}
{{- define "iamra.policyServerNamespace" -}}
{{- .Values.policyServer.namespace | default .Release.Namespace -}}
{{- end -}}

{{/*
The issuer that signs the pods' certificates, as a dict {name, kind, group}: the CA
ClusterIssuer this chart creates, or the existing issuer from workloadIssuer.
*/}}
{{- define "iamra.issuerRef" -}}
{{- $w := .Values.workloadIssuer -}}
{{- if $w.create -}}
{{- dict "name" $w.name "kind" "ClusterIssuer" "group" "cert-manager.io" | toJson -}}
{{- else -}}
{{- dict "name" $w.name "kind" $w.kind "group" $w.group | toJson -}}
{{- end -}}
{{- end -}}

{{/*
Effective failurePolicy: the explicit one, else Fail in protect and Ignore in monitor
(as kubewarden-defaults does). Argument: dict "mode" "failurePolicy".
*/}}
{{- define "iamra.failurePolicy" -}}
{{- if .failurePolicy -}}
{{- .failurePolicy -}}
{{- else if eq .mode "monitor" -}}
Ignore
{{- else -}}
Fail
{{- end -}}
{{- end -}}

{{/*
Effective mode of the guard policy.
*/}}
{{- define "iamra.guardMode" -}}
{{- default .Values.policy.mode .Values.guard.mode -}}
{{- end -}}

{{/*
Sidecar resources with every quantity as a string: the policy reads Kubernetes
quantities as strings, and YAML turns `cpu: 1` into a number.
*/}}
{{- define "iamra.sidecarResources" -}}
{{- $out := dict -}}
{{- range $section, $quantities := .Values.sidecar.resources -}}
{{- $q := dict -}}
{{- range $name, $value := $quantities -}}
{{- $_ := set $q $name (toString $value) -}}
{{- end -}}
{{- $_ := set $out $section $q -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
The policy settings (the policy's settings contract, camelCase). Argument: dict "root"
(the chart context) and "mode" (inject or guard). Both policies get the same settings,
so the guard knows the workload issuer, the annotations and the allowed requesters.
*/}}
{{- define "iamra.settings" -}}
{{- $v := .root.Values -}}
{{- $sidecarImage := include "iamra.image" (dict "root" .root "image" $v.sidecar.image) -}}
{{- $sidecar := merge (dict "image" $sidecarImage "resources" (include "iamra.sidecarResources" .root | fromJson)) (omit (deepCopy $v.sidecar) "image") -}}
{{- $certificate := merge (dict "issuer" (include "iamra.issuerRef" .root | fromJson)) (deepCopy $v.certificate) -}}
{{- $settings := dict
  "mode" .mode
  "trustAnchorArn" ($v.trustAnchorArn | default "")
  "region" ($v.region | default "")
  "annotationPrefix" $v.annotationPrefix
  "clusterName" $v.clusterName
  "sidecar" $sidecar
  "defaults" $v.defaults
  "certificate" $certificate
  "allowedRequesters" $v.allowedRequesters
  "certificateRequests" $v.certificateRequests
  "irsa" $v.irsa
  "readServiceAccounts" $v.readServiceAccounts
  "kubevirt" $v.kubevirt
-}}
{{- toYaml $settings -}}
{{- end -}}

{{/*
The PolicyServer both policies run on: the chart's own, or the existing one.
*/}}
{{- define "iamra.policyServerName" -}}
{{- if .Values.policyServer.create -}}
{{- .Values.policyServer.name -}}
{{- else -}}
{{- .Values.policy.policyServer -}}
{{- end -}}
{{- end -}}

{{/*
The ServiceAccount policy-server runs as: the chart's own (named like the Deployment the
controller creates), or the existing PolicyServer's.
*/}}
{{- define "iamra.policyServerAccount" -}}
{{- if .Values.policyServer.create -}}
{{- printf "policy-server-%s" .Values.policyServer.name -}}
{{- else -}}
{{- .Values.policyServer.serviceAccountName -}}
{{- end -}}
{{- end -}}

{{/*
Labels the Kubewarden controller puts on a PolicyServer's Service and pods and selects
them by (kubewarden-controller v1.35.0: PolicyServer.CommonLabels, and the Service's and
PodDisruptionBudget's selectors in internal/controller/policyserver_controller_*.go).
*/}}
{{- define "iamra.policyServerSelector" -}}
app.kubernetes.io/instance: {{ printf "policy-server-%s" (include "iamra.policyServerName" .) }}
app.kubernetes.io/part-of: kubewarden
{{- end -}}

{{/*
Fields shared by both ClusterAdmissionPolicies. Argument: dict "root", "mode",
"failurePolicy", "backgroundAudit".
*/}}
{{- define "iamra.policyCommon" -}}
{{- $p := .root.Values.policy -}}
module: {{ printf "registry://%s" (include "iamra.image" (dict "root" .root "image" $p.module)) | quote }}
mode: {{ .mode }}
failurePolicy: {{ include "iamra.failurePolicy" (dict "mode" .mode "failurePolicy" .failurePolicy) }}
policyServer: {{ include "iamra.policyServerName" .root | quote }}
timeoutSeconds: {{ $p.timeoutSeconds }}
{{- if not (kindIs "invalid" $p.timeoutEvalSeconds) }}
timeoutEvalSeconds: {{ $p.timeoutEvalSeconds }}
{{- end }}
backgroundAudit: {{ .backgroundAudit }}
{{- end -}}

{{/*
A duration in whole seconds: plain seconds ("900") or Go style ("1h30m", "900s").
Empty when the value is neither.
*/}}
{{- define "iamra.seconds" -}}
{{- $s := toString . -}}
{{- if regexMatch "^[0-9]+$" $s -}}
{{- $s -}}
{{- else if regexMatch "^([0-9]+[hms])+$" $s -}}
{{- $units := dict "h" 3600 "m" 60 "s" 1 -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+[hms]" $s -1 -}}
{{- $n := regexFind "^[0-9]+" . | atoi -}}
{{- $total = add $total (mul $n (get $units (regexFind "[hms]$" .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
{{- end -}}

{{/*
Checks that need more than the values schema. Each fails the render with a message a
cluster operator can act on.
*/}}
{{- define "iamra.validate" -}}
{{- $v := .Values -}}
{{- $chart := .Chart.Name -}}
{{- /* APIs the cluster must serve */ -}}
{{- if $v.apiCheck.enabled -}}
{{- $needed := list (list "cert-manager.io/v1" "cert-manager (https://cert-manager.io) with its csi-driver") -}}
{{- if or $v.policy.enabled $v.guard.enabled $v.policyServer.create -}}
{{- $needed = append $needed (list "policies.kubewarden.io/v1" "Kubewarden 1.35 or later (its admission-controller chart; before Kubewarden 1.37, kubewarden-crds and kubewarden-controller)") -}}
{{- end -}}
{{- if $v.prometheus.enabled -}}
{{- $needed = append $needed (list "monitoring.coreos.com/v1" "the Prometheus operator CRDs (or set prometheus.enabled=false)") -}}
{{- end -}}
{{- range $needed -}}
{{- if not ($.Capabilities.APIVersions.Has (index . 0)) -}}
{{- fail (printf "\n%s: the cluster does not serve the API %s; install %s first.\nRendering offline (helm template, --dry-run=client, Argo CD or Flux without API discovery)? Pass --api-versions %s, or set apiCheck.enabled=false." $chart (index . 0) (index . 1) (index . 0)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* the workload issuer reference */ -}}
{{- $w := $v.workloadIssuer -}}
{{- if $w.create -}}
{{- if not $w.name -}}
{{- fail (printf "\n%s: workloadIssuer.name is empty; it names the CA ClusterIssuer this chart creates." $chart) -}}
{{- end -}}
{{- if or (ne $w.kind "ClusterIssuer") (ne $w.group "cert-manager.io") -}}
{{- fail (printf "\n%s: workloadIssuer.create=true creates a cert-manager.io ClusterIssuer, but workloadIssuer.kind/group are %q/%q. Set workloadIssuer.create=false to use an existing %s, or leave kind and group at ClusterIssuer and cert-manager.io." $chart $w.kind $w.group $w.kind) -}}
{{- end -}}
{{- else -}}
{{- $missing := list -}}
{{- range $field := list "name" "kind" "group" -}}
{{- if not (get $w $field) -}}
{{- $missing = append $missing (printf "workloadIssuer.%s" $field) -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "\n%s: workloadIssuer.create=false needs a complete reference to your existing issuer, but %s %s empty (for example name=my-pca, kind=AWSPCAClusterIssuer, group=awspca.cert-manager.io)." $chart (join ", " $missing) (ternary "is" "are" (eq (len $missing) 1))) -}}
{{- end -}}
{{- end -}}
{{- /* the inject policy's required settings (the schema checks them first) */ -}}
{{- if $v.policy.enabled -}}
{{- $arn := required (printf "%s: trustAnchorArn is required: the ARN of your IAM Roles Anywhere trust anchor" $chart) $v.trustAnchorArn -}}
{{- $region := required (printf "%s: region is required: the AWS region of your trust anchor" $chart) $v.region -}}
{{- $arnRegion := index (splitList ":" $arn) 3 -}}
{{- if ne $arnRegion $region -}}
{{- fail (printf "\n%s: region %q differs from the trust anchor's region %q; IAM Roles Anywhere serves a trust anchor only in its own region." $chart $region $arnRegion) -}}
{{- end -}}
{{- end -}}
{{- /* the ServiceAccount read */ -}}
{{- $ps := $v.policyServer -}}
{{- if and $v.readServiceAccounts (not $ps.create) $ps.grantServiceAccountRead (not $ps.serviceAccountName) -}}
{{- fail (printf "\n%s: policyServer.create=false with readServiceAccounts=true: set policyServer.serviceAccountName to the ServiceAccount of the PolicyServer %q (kubewarden-defaults names it policy-server), so that the chart can grant it get on serviceaccounts; or set policyServer.grantServiceAccountRead=false and grant it yourself." $chart $v.policy.policyServer) -}}
{{- end -}}
{{- /* timeouts */ -}}
{{- $p := $v.policy -}}
{{- if and (not (kindIs "invalid" $p.timeoutEvalSeconds)) (gt (int $p.timeoutEvalSeconds) (int $p.timeoutSeconds)) -}}
{{- fail (printf "\n%s: policy.timeoutEvalSeconds (%v) is longer than policy.timeoutSeconds (%v): the API server would give up on the webhook before the evaluation times out. Lower timeoutEvalSeconds or raise timeoutSeconds." $chart $p.timeoutEvalSeconds $p.timeoutSeconds) -}}
{{- end -}}
{{- /* durations (the same rules the policy applies to its settings) */ -}}
{{- $session := include "iamra.seconds" $v.defaults.sessionDuration -}}
{{- if or (not $session) (lt (atoi $session) 900) (gt (atoi $session) 43200) -}}
{{- fail (printf "\n%s: defaults.sessionDuration %q must be between 900s (15m) and 43200s (12h)." $chart (toString $v.defaults.sessionDuration)) -}}
{{- end -}}
{{- $c := $v.certificate -}}
{{- $duration := include "iamra.seconds" $c.duration | atoi -}}
{{- if lt $duration 3600 -}}
{{- fail (printf "\n%s: certificate.duration %q is shorter than cert-manager's minimum of 1h." $chart $c.duration) -}}
{{- end -}}
{{- if ge (include "iamra.seconds" $c.renewBefore | atoi) $duration -}}
{{- fail (printf "\n%s: certificate.renewBefore %q must be shorter than certificate.duration %q." $chart $c.renewBefore $c.duration) -}}
{{- end -}}
{{- if $w.create -}}
{{- range $which := list "root" "intermediate" -}}
{{- $ca := get $w $which -}}
{{- if ge (include "iamra.seconds" $ca.renewBefore | atoi) (include "iamra.seconds" $ca.duration | atoi) -}}
{{- fail (printf "\n%s: workloadIssuer.%s.renewBefore %q must be shorter than workloadIssuer.%s.duration %q." $chart $which $ca.renewBefore $which $ca.duration) -}}
{{- end -}}
{{- end -}}
{{- if le (include "iamra.seconds" $w.intermediate.duration | atoi) $duration -}}
{{- fail (printf "\n%s: the intermediate CA lives %q, not longer than a pod certificate (certificate.duration %q); cert-manager would cut the pod certificates short." $chart $w.intermediate.duration $c.duration) -}}
{{- end -}}
{{- if le (include "iamra.seconds" $w.root.duration | atoi) (include "iamra.seconds" $w.intermediate.duration | atoi) -}}
{{- fail (printf "\n%s: the root CA lives %q, not longer than the intermediate (workloadIssuer.intermediate.duration %q); cert-manager would cut the intermediate short." $chart $w.root.duration $w.intermediate.duration) -}}
{{- end -}}
{{- if eq $w.root.secretName $w.intermediate.secretName -}}
{{- fail (printf "\n%s: workloadIssuer.root.secretName and workloadIssuer.intermediate.secretName are both %q; the two CAs need their own Secrets." $chart $w.root.secretName) -}}
{{- end -}}
{{- end -}}
{{- end -}}
