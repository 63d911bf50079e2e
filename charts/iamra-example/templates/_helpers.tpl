{{/*
Chart name, for labels.
*/}}
{{- define "iamra-example.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Object name: the release name, or release-chart when the release name lacks the chart's.
*/}}
{{- define "iamra-example.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
The ServiceAccount the Job runs as (part of the certificate identity).
*/}}
{{- define "iamra-example.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "iamra-example.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Common labels.
*/}}
{{- define "iamra-example.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "iamra-example.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "iamra-example.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iamra-example.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The pod annotations that ask iamra-sidecar-policy for credentials.
*/}}
{{- define "iamra-example.iamraAnnotations" -}}
{{- $p := .Values.annotationPrefix -}}
{{ $p }}/role-arn: {{ required "roleArn is required: the ARN of the IAM role to assume" .Values.roleArn | quote }}
{{ $p }}/signing-profile-arn: {{ required "profileArn is required: the ARN of the IAM Roles Anywhere profile" .Values.profileArn | quote }}
{{- with .Values.sessionDuration }}
{{ $p }}/token-duration: {{ . | quote }}
{{- end }}
{{- end -}}
