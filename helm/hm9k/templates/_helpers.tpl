{{- define "hm9k.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "hm9k.labels" -}}
app.kubernetes.io/name: hm9k
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hm9k.selector" -}}
app.kubernetes.io/name: hm9k
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .half }}
{{- end -}}

{{- define "hm9k.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
