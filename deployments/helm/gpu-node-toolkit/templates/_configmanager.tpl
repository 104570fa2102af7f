{{/*
config-manager (configmanager/, docs/deployment.md "Per-node configuration"), as
upstream's chart runs it: whenever a ConfigMap of configs is used (config.name or
config.map), each plugin and GFD pod gets an init container `<main>-init` (--oneshot,
no signal) that writes the node's config before the daemon starts, and a sidecar
`<main>-sidecar` that follows the node label and sends the daemon SIGHUP after a change.
The pod shares one process namespace so that the sidecar sees the daemon. The configs
are mounted at /available-configs; the file the daemon reads is /config/config.yaml in
an emptyDir of the pod, read-only in the daemon's container.
*/}}

{{- define "gnt.configManager" -}}
{{- include "gnt.hasConfigMap" . }}
{{- end }}

{{- define "gnt.configFile" -}}
/config/config.yaml
{{- end }}

{{- define "gnt.configManagerLiveness" -}}
{{- .Values.configManager.livenessProbe.enabled }}
{{- end }}

{{/* The daemon's own mount of the config file's directory. */}}
{{- define "gnt.configMount" -}}
- name: config
  mountPath: /config
  readOnly: true
{{- end }}

{{/* The pod's volumes for config-manager; call with (dict "root" $ "token" <bool>). */}}
{{- define "gnt.configManagerVolumes" -}}
# The named configs, every key a file.
- name: available-configs
  configMap:
    name: {{ include "gnt.configMapName" .root }}
# The file the daemon reads: written by config-manager, one per pod.
- name: config
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- if .token }}
{{ include "gnt.apiTokenVolume" . }}
{{- end }}
{{- end }}

{{/*
A service account token for config-manager's containers alone, where the pod does not
mount one for every container: what the kubelet would mount, at the same path.
*/}}
{{- define "gnt.apiTokenVolume" -}}
- name: config-manager-api-access
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
{{- end }}

{{/* Call with (dict "root" $ "main" "<daemon>" "process" "<command>" "token" <bool> "sidecar" <bool>). */}}
{{- define "gnt.configManagerContainer" -}}
{{- $root := .root }}
{{- $name := printf "%s-%s" .main (ternary "sidecar" "init" .sidecar) }}
{{- $probe := and .sidecar (eq (include "gnt.configManagerLiveness" $root) "true") -}}
- name: {{ $name }}
  image: {{ include "gnt.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command: ["config-manager"]
  env:
    - name: ONESHOT
      value: {{ (not .sidecar) | quote }}
    # empty: the pod's service account
    - name: KUBECONFIG
      value: ""
    - name: NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: NODE_LABEL
      value: "nvidia.com/device-plugin.config"
    - name: CONFIG_FILE_SRCDIR
      value: /available-configs
    - name: CONFIG_FILE_DST
      value: {{ include "gnt.configFile" $root }}
    - name: DEFAULT_CONFIG
      value: {{ $root.Values.config.default | quote }}
    - name: FALLBACK_STRATEGIES
      value: {{ join "," $root.Values.config.fallbackStrategies | quote }}
    - name: SEND_SIGNAL
      value: {{ .sidecar | quote }}
    - name: SIGNAL
      value: {{ ternary "1" "" .sidecar | quote }}{{ if .sidecar }}  # SIGHUP: reload{{ end }}
    - name: PROCESS_TO_SIGNAL
      value: {{ ternary .process "" .sidecar | quote }}
    {{- if $probe }}
    - name: CONFIG_MANAGER_HEARTBEAT_FILE
      value: {{ include "gnt.heartbeatDir" $root }}/{{ $name }}
    {{- end }}
  # Reads a ConfigMap volume, writes an emptyDir and signals a process of the same user
  # in its pod: no capability.
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
  volumeMounts:
    - name: available-configs
      mountPath: /available-configs
      readOnly: true
    - name: config
      mountPath: /config
    {{- if .token }}
    - name: config-manager-api-access
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- end }}
    {{- if $probe }}
    {{- include "gnt.heartbeatMount" $root | nindent 4 }}
    {{- end }}
  {{- if $probe }}
  # Fresh while the Node's list and watch go on (a watch lasts 5 minutes).
  livenessProbe:
    {{- include "gnt.livenessProbe" (dict "probe" $root.Values.configManager.livenessProbe "container" $name) | nindent 4 }}
  {{- end }}
  {{- with ($root.Values.configManager.resources | default $root.Values.resources) }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
