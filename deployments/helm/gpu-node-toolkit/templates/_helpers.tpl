{{/*
Names, labels and the decisions the DaemonSets share. A decision that answers yes or no
is a named template that prints "true" or "false", so callers compare with eq.
*/}}

{{- define "gnt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gnt.fullname" -}}
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

{{/* A component's object name: <fullname>-<suffix>, within 63 characters. */}}
{{- define "gnt.componentName" -}}
{{- printf "%s-%s" (include "gnt.fullname" .root) .suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gnt.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "gnt.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gnt.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Labels on every object; call with (dict "root" $ "component" "...") */}}
{{- define "gnt.labels" -}}
helm.sh/chart: {{ include "gnt.chart" .root }}
{{ include "gnt.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Selector labels: one set per component, so the DaemonSets never select each other's pods. */}}
{{- define "gnt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gnt.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .root.Values.selectorLabelsOverride }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Could any config in use select a MIG strategy other than none? A ConfigMap the chart
cannot read (config.name) could; so could an embedded config that says so.
*/}}
{{- define "gnt.migPossible" -}}
{{- $result := false }}
{{- if .Values.migStrategy }}
{{- $result = ne .Values.migStrategy "none" }}
{{- else if .Values.config.name }}
{{- $result = true }}
{{- else }}
{{- range $name, $contents := .Values.config.map }}
{{- $config := $contents | fromYaml }}
{{- if and $config.flags $config.flags.migStrategy (ne $config.flags.migStrategy "none") }}
{{- $result = true }}
{{- end }}
{{- end }}
{{- end }}
{{- $result }}
{{- end }}

{{/* Could the plugin use the volume-mounts device-list strategy? */}}
{{- define "gnt.volumeMountsPossible" -}}
{{- $result := false }}
{{- if .Values.deviceListStrategy }}
{{- $result = has "volume-mounts" (splitList "," .Values.deviceListStrategy) }}
{{- else if .Values.config.name }}
{{- $result = true }}
{{- else }}
{{- range $name, $contents := .Values.config.map }}
{{- $config := $contents | fromYaml }}
{{- if and $config.flags $config.flags.plugin }}
{{- $strategy := $config.flags.plugin.deviceListStrategy }}
{{- if kindIs "string" $strategy }}
{{- $result = or $result (has "volume-mounts" (splitList "," $strategy)) }}
{{- else if kindIs "slice" $strategy }}
{{- $result = or $result (has "volume-mounts" $strategy) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $result }}
{{- end }}

{{- define "gnt.hasConfigMap" -}}
{{- or (ne .Values.config.name "") (not (empty .Values.config.map)) }}
{{- end }}

{{- define "gnt.configMapName" -}}
{{- if .Values.config.name }}
{{- .Values.config.name }}
{{- else if .Values.config.map }}
{{- include "gnt.componentName" (dict "root" . "suffix" "configs") }}
{{- end }}
{{- end }}

{{/*
The config an unlabelled node gets from an embedded map, as config-manager picks it
(docs/deployment.md#per-node-configuration): config.default, else the first fallback
that resolves. "-" means none resolves; "" means the empty config. For validation.yaml:
a map that leaves an unlabelled node without a config is refused at render time.
*/}}
{{- define "gnt.defaultConfig" -}}
{{- $result := "-" }}
{{- if .Values.config.default }}
{{- $result = .Values.config.default }}
{{- else }}
{{- $map := .Values.config.map | default dict }}
{{- range .Values.config.fallbackStrategies }}
{{- if eq $result "-" }}
{{- if and (eq . "named") (hasKey $map "default") }}
{{- $result = "default" }}
{{- else if and (eq . "single") (eq (len $map) 1) }}
{{- $result = first (keys $map) }}
{{- else if eq . "empty" }}
{{- $result = "" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $result }}
{{- end }}

{{/*
The plugin's security context, least first. compatWithCPUManager: privileged, to see
every host device node it passes to the kubelet as device specs (PASS_DEVICE_SPECS).
SYS_ADMIN where a MIG strategy, volume-mounts or a config file that may select either is
possible: the NVIDIA runtime treats CAP_SYS_ADMIN as privileged, and injects MIG monitor
devices, or honours NVIDIA_VISIBLE_DEVICES where unprivileged containers may not, only
then. Else nothing: all capabilities dropped.
*/}}
{{- define "gnt.pluginSecurityContext" -}}
{{- if .Values.securityContext }}
{{- toYaml .Values.securityContext }}
{{- else if .Values.compatWithCPUManager }}
privileged: true
{{- else if or (eq (include "gnt.migPossible" .) "true") (eq (include "gnt.volumeMountsPossible" .) "true") (eq (include "gnt.hasConfigMap" .) "true") }}
capabilities:
  add: ["SYS_ADMIN"]
{{- else }}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end }}
{{- end }}

{{/* GFD's: gfd.securityContext (SYS_ADMIN by default), else the plugin's rule without CPU-manager compatibility. */}}
{{- define "gnt.gfdSecurityContext" -}}
{{- if .Values.gfd.securityContext }}
{{- toYaml .Values.gfd.securityContext }}
{{- else if or (eq (include "gnt.migPossible" .) "true") (eq (include "gnt.volumeMountsPossible" .) "true") (eq (include "gnt.hasConfigMap" .) "true") }}
capabilities:
  add: ["SYS_ADMIN"]
{{- else }}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end }}
{{- end }}

{{/* Does GFD talk to the API server (NodeFeature output possible)? Only an explicit false says no. */}}
{{- define "gnt.gfdUsesApi" -}}
{{- not (and (kindIs "bool" .Values.gfd.useNodeFeatureAPI) (not .Values.gfd.useNodeFeatureAPI)) }}
{{- end }}

{{/* Pod annotations: the user's, plus the embedded config's checksum so a change rolls the pods. */}}
{{- define "gnt.podAnnotations" -}}
{{- $annotations := deepCopy (.Values.podAnnotations | default dict) }}
{{- if and .Values.config.map (not (hasKey $annotations "checksum/config")) }}
{{- $_ := set $annotations "checksum/config" (toYaml .Values.config.map | sha256sum) }}
{{- end }}
{{- with $annotations }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* Pod spec fields every DaemonSet shares: scheduling, priority, runtime, pull secrets.
On a simulated machine (simulator.profile) the nodes have no NVIDIA labels, so the
GPU-node affinity is not applied and simulator.nodeSelector joins nodeSelector. */}}
{{- define "gnt.podCommon" -}}
{{- $nodeSelector := .Values.nodeSelector }}
{{- $affinity := .Values.affinity }}
{{- if .Values.simulator.profile }}
{{- $nodeSelector = merge (deepCopy (.Values.simulator.nodeSelector | default dict)) (.Values.nodeSelector | default dict) }}
{{- $affinity = dict }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Environment both the plugin and GFD take from the top-level values. */}}
{{- define "gnt.sharedEnv" -}}
{{- include "gnt.simulatorEnv" . }}
{{- if kindIs "string" .Values.migStrategy }}
- name: MIG_STRATEGY
  value: {{ .Values.migStrategy | quote }}
{{- end }}
{{- if kindIs "bool" .Values.failOnInitError }}
- name: FAIL_ON_INIT_ERROR
  value: {{ .Values.failOnInitError | quote }}
{{- end }}
{{- if eq (include "gnt.configManager" .) "true" }}
- name: CONFIG_FILE
  value: {{ include "gnt.configFile" . }}
{{- end }}
{{- if eq (include "gnt.migPossible" .) "true" }}
- name: NVIDIA_MIG_MONITOR_DEVICES
  value: all
{{- end }}
{{- if kindIs "string" .Values.deviceDiscoveryStrategy }}
- name: DEVICE_DISCOVERY_STRATEGY
  value: {{ .Values.deviceDiscoveryStrategy | quote }}
{{- end }}
{{- end }}

{{/* Every command runs on the simulated machine, when there is one. */}}
{{- define "gnt.simulatorEnv" -}}
{{- with .Values.simulator.profile }}
- name: NVML_MOCK
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The CDI generator's driver root on the host (default /), mounted at /driver-root. */}}
{{- define "gnt.cdiDriverRoot" -}}
{{- if kindIs "string" .Values.nvidiaDriverRoot }}
{{- clean .Values.nvidiaDriverRoot }}
{{- else -}}
/
{{- end }}
{{- end }}

{{/* The generator's dev root on the host when it is not the driver root (its /dev is then
mounted at /dev-root/dev); else empty: the nodes are read under the driver root's mount. */}}
{{- define "gnt.cdiDevRoot" -}}
{{- if kindIs "string" .Values.nvidiaDevRoot }}
{{- $dev := clean .Values.nvidiaDevRoot }}
{{- if ne $dev (include "gnt.cdiDriverRoot" .) }}
{{- $dev }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Liveness heartbeats (nvlib/heartbeat.py): each container's command touches
<heartbeatDir>/<container name> after every pass of its loop, in an emptyDir of the pod,
and its exec probe checks the file's age against the interval the command wrote in it.
*/}}
{{- define "gnt.heartbeatDir" -}}
/run/gpu-node-toolkit/heartbeat
{{- end }}

{{/* The probe; call with (dict "probe" <component>.livenessProbe "container" "<name>"). */}}
{{- define "gnt.livenessProbe" -}}
exec:
  command: ["python3", "-m", "nvlib.heartbeat", "check", "{{ include "gnt.heartbeatDir" . }}/{{ .container }}"]
{{- with omit .probe "enabled" }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gnt.heartbeatMount" -}}
- name: heartbeat
  mountPath: {{ include "gnt.heartbeatDir" . }}
{{- end }}

{{- define "gnt.heartbeatVolume" -}}
- name: heartbeat
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}

{{/* GFD's probe: none with an infinite sleep interval, which has no periodic pass. */}}
{{- define "gnt.gfdLiveness" -}}
{{- and .Values.gfd.livenessProbe.enabled (ne (toString .Values.gfd.sleepInterval) "infinite") }}
{{- end }}

{{/* Where GFD reads label templates from the chart's ConfigMap. */}}
{{- define "gnt.labelTemplatesDir" -}}
/etc/gpu-feature-discovery/label-templates
{{- end }}

{{/* Does GFD get label templates from a ConfigMap of the chart (gfd.labelTemplates a map)? */}}
{{- define "gnt.labelTemplatesMap" -}}
{{- and (kindIs "map" .Values.gfd.labelTemplates) (not (empty .Values.gfd.labelTemplates)) }}
{{- end }}

{{/* GFD's pod annotations: the shared ones, and a checksum that rolls GFD's pods when
the templates change (GFD compiles them once, at start or SIGHUP). */}}
{{- define "gnt.gfdPodAnnotations" -}}
{{- $annotations := include "gnt.podAnnotations" . | fromYaml | default dict }}
{{- if eq (include "gnt.labelTemplatesMap" .) "true" }}
{{- $_ := set $annotations "checksum/label-templates" (toYaml .Values.gfd.labelTemplates | sha256sum) }}
{{- end }}
{{- with $annotations }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
Prometheus metrics (metrics.*): each container's port, named `metrics` (`metrics-imex` for
the IMEX generator, which shares the CDI pod), and the address its command serves on.
*/}}
{{- define "gnt.metricsPort" -}}
- name: {{ .name }}
  containerPort: {{ .port }}
  protocol: TCP
{{- end }}

{{/* The component's Service: headless, so Prometheus finds every pod of the DaemonSet.
Call with (dict "root" $ "component" "..." "suffix" "..." "ports" (list (list name port) ...)). */}}
{{- define "gnt.metricsService" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "gnt.componentName" (dict "root" .root "suffix" (printf "%s-metrics" .suffix)) }}
  namespace: {{ include "gnt.namespace" .root }}
  labels:
    {{- include "gnt.labels" . | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "gnt.selectorLabels" . | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ index . 0 }}
      port: {{ index . 1 }}
      targetPort: {{ index . 0 }}
      protocol: TCP
    {{- end }}
{{- end }}
