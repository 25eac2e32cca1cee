{{- define "hourglass.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "hourglass.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hourglass.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "hourglass.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "hourglass.catalogName" -}}
{{ .Values.catalog.configMapName | default (printf "%s-catalog" (include "hourglass.fullname" .)) }}
{{- end -}}

{{- define "hourglass.esSecretName" -}}
{{ .Values.elasticsearch.existingSecret | default (printf "%s-elasticsearch" (include "hourglass.fullname" .)) }}
{{- end -}}

{{- define "hourglass.hasESCredentials" -}}
{{- if or .Values.elasticsearch.existingSecret .Values.elasticsearch.username -}}true{{- end -}}
{{- end -}}

{{/* The chart's own Spark Connect pool: the HAProxy Service of sparkconnect.yaml, its grpc port. */}}
{{- define "hourglass.sparkConnectPoolURL" -}}
sc://{{ include "hourglass.fullname" . }}-spark-connect-lb:15000
{{- end -}}

{{/* HOURGLASS_ES_USERNAME / _PASSWORD from the Elasticsearch Secret, when there is one. */}}
{{- define "hourglass.esEnv" -}}
{{- if include "hourglass.hasESCredentials" . }}
- name: HOURGLASS_ES_USERNAME
  valueFrom: {secretKeyRef: {name: {{ include "hourglass.esSecretName" . }}, key: username}}
- name: HOURGLASS_ES_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "hourglass.esSecretName" . }}, key: password}}
{{- end }}
{{- end -}}

{{/*
One Deployment. Arguments: root, component, values (replicas, resources),
args, ports (list of dicts name/port), env (YAML list text), mounts (list of
dicts name/mountPath/secret|configMap).
*/}}
{{- define "hourglass.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "hourglass.fullname" $root }}-{{ .component }}
  labels:
    {{- include "hourglass.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ .values.replicas | default 1 }}
  {{- end }}
  {{- if .recreate }}
  strategy: {type: Recreate}
  {{- end }}
  selector:
    matchLabels:
      {{- include "hourglass.selector" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "hourglass.selector" (dict "root" $root "component" .component) | nindent 8 }}
      annotations:
        checksum/catalog: {{ $root.Files.Get "files/catalog.yaml" | sha256sum }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext: {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 60
      containers:
        - name: {{ .component }}
          image: {{ include "hourglass.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: {{- toYaml .args | nindent 12 }}
          env:
            - name: HOURGLASS_LOG_LEVEL
              value: info
            {{- with .env }}{{ . | nindent 12 }}{{- end }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          livenessProbe:
            httpGet: {path: /healthz, port: admin}
            periodSeconds: 10
            failureThreshold: 6
          readinessProbe:
            httpGet: {path: /readyz, port: admin}
            periodSeconds: 5
          resources: {{- toYaml .values.resources | nindent 12 }}
          securityContext: {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
            {{- range .mounts }}
            - {name: {{ .name }}, mountPath: {{ .mountPath }}, readOnly: true}
            {{- end }}
      volumes:
        - {name: tmp, emptyDir: {}}
        {{- range .mounts }}
        {{- if .secret }}
        - name: {{ .name }}
          secret: {secretName: {{ .secret }}}
        {{- else }}
        - name: {{ .name }}
          configMap: {name: {{ .configMap }}}
        {{- end }}
        {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/*
An Alertmanager matcher written `name op value` (op one of = != =~ !~, value
optionally double-quoted), as the AlertmanagerConfig CRD's matcher object.
*/}}
{{- define "hourglass.amMatcher" -}}
{{- $re := "^\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*(=~|!~|!=|=)\\s*\"?(.*?)\"?\\s*$" -}}
{{- if not (regexMatch $re .) -}}
{{- fail (printf "files/alertmanager.yml: matcher %q is not `name op value`" .) -}}
{{- end -}}
{{- dict "name" (regexReplaceAll $re . "${1}") "matchType" (regexReplaceAll $re . "${2}") "value" (regexReplaceAll $re . "${3}") | toJson -}}
{{- end }}
