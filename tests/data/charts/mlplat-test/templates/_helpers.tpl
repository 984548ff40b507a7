{{- define "mlplat-test.labels" -}}
app.kubernetes.io/name: mlplat-test
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
{{- define "mlplat-test.selector" -}}
app.kubernetes.io/name: mlplat-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
