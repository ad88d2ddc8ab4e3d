{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "vidra.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects. */}}
{{- define "vidra.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vidra.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vidra.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vidra.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "vidra.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vidra
{{- end -}}

{{- define "vidra.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vidra.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag or registry/repository@digest */}}
{{- define "vidra.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the ConfigMap holding the extra CA bundle, if any. */}}
{{- define "vidra.caConfigMap" -}}
{{- if .Values.caBundle.existingConfigMap.name -}}
{{- .Values.caBundle.existingConfigMap.name -}}
{{- else if .Values.caBundle.pem -}}
{{- printf "%s-ca" (include "vidra.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "vidra.caKey" -}}
{{- if .Values.caBundle.existingConfigMap.name -}}
{{- .Values.caBundle.existingConfigMap.key -}}
{{- else -}}
ca.crt
{{- end -}}
{{- end -}}

{{/* The lease name: one per release. */}}
{{- define "vidra.leaseName" -}}
{{- include "vidra.fullname" . -}}
{{- end -}}

{{/* Pod label naming the shard an operator Deployment serves ("main" for
the one without a shard); set only when shards are configured. */}}
{{- define "vidra.shardLabel" -}}
sharding.infrahub.operators.com/instance
{{- end -}}

{{/* Verbs for what Vidra manages. */}}
{{- define "vidra.manageVerbs" -}}
[get, list, watch, create, update, patch, delete]
{{- end -}}
