{{/* Labels every object of the release carries. */}}
{{- define "aifactory.labels" -}}
app.kubernetes.io/name: aifactory-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pod selector: stable across upgrades. */}}
{{- define "aifactory.selector" -}}
app.kubernetes.io/name: aifactory-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The image reference: pinned by digest when one is given. */}}
{{- define "aifactory.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}
