{{/* The objects' name: the release's, or <release>-sluice when the
release's name does not say sluice. */}}
{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sluice.labels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Over SSH unless the repository is an http(s) URL, as the agent
decides. */}}
{{- define "sluice.ssh" -}}
{{- if not (or (hasPrefix "https://" .Values.git.repo) (hasPrefix "http://" .Values.git.repo)) -}}true{{- end -}}
{{- end -}}

{{- define "sluice.checkMode" -}}
{{- if not (has .Values.mode (list "cluster-wide" "tenancy")) -}}
{{- fail (printf "values: mode %q: want cluster-wide or tenancy" .Values.mode) -}}
{{- end -}}
{{- end -}}
