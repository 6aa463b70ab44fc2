{{/* Names, labels and the image reference every template shares. */}}

{{- define "containment.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped base name: "<release>-containment", or just the release name when it already says so. */}}
{{- define "containment.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "containment.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "containment.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "containment.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: containment
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "scanner"). */}}
{{- define "containment.selectorLabels" -}}
app.kubernetes.io/name: {{ include "containment.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "containment.componentLabels" -}}
{{ include "containment.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* <repository>[:<tag>][@<digest>]; the tag defaults to appVersion unless only a digest pins it. */}}
{{- define "containment.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "containment.scannerURL" -}}
{{- printf "http://%s-scanner.%s.svc:%d" (include "containment.fullname" .) .Release.Namespace (int .Values.scanner.port) -}}
{{- end -}}

{{/* Hardened container security context of every non-node component. */}}
{{- define "containment.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "containment.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment every component shares. */}}
{{- define "containment.commonEnv" -}}
- name: CONTAINMENT_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* Placement (nodeSelector, tolerations, affinity) of one component's values. */}}
{{- define "containment.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "containment.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
