{{/* Name of the chart, overridable. */}}
{{- define "maxcloud-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "maxcloud-server.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "maxcloud-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "maxcloud-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maxcloud-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "maxcloud-server.labels" -}}
helm.sh/chart: {{ include "maxcloud-server.chart" . }}
{{ include "maxcloud-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: order-service
app.kubernetes.io/part-of: max-cloud
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "maxcloud-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "maxcloud-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "maxcloud-server.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "maxcloud-server.pvcName" -}}
{{- default (printf "%s-data" (include "maxcloud-server.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Whether the ServiceMonitor is rendered: asked for, and the cluster serves the kind. */}}
{{- define "maxcloud-server.serviceMonitor" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") }}true{{ end }}
{{- end }}

{{/* Settings that cannot work together fail the render with the value to change. */}}
{{- define "maxcloud-server.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.database.existingSecret) }}
{{- fail "replicaCount > 1 needs PostgreSQL: set database.existingSecret (SQLite in the data directory has a single writer)" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) .Values.persistence.enabled (not .Values.persistence.existingClaim) (not (has "ReadWriteMany" .Values.persistence.accessModes)) }}
{{- fail "replicaCount > 1 shares the tenant repositories: persistence.accessModes must include ReadWriteMany (or use persistence.existingClaim)" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.persistence.enabled) }}
{{- fail "replicaCount > 1 needs persistence.enabled: the tenant repositories must be shared by every replica" }}
{{- end }}
{{- end }}

{{/* Where Flux clones tenant repositories: git.tenantBaseUrl, else this release's Service. */}}
{{- define "maxcloud-server.tenantGitBaseUrl" -}}
{{- if .Values.git.tenantBaseUrl }}
{{- .Values.git.tenantBaseUrl }}
{{- else }}
{{- printf "http://%s.%s.svc.cluster.local:%d/git" (include "maxcloud-server.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}
{{- end }}
