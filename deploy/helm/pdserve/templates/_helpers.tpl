{{/* Common labels of every object. */}}
{{- define "pdserve.labels" -}}
app.kubernetes.io/name: pdserve
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* image: (dict "root" $ "spec" <spec with optional repository/tag>) */}}
{{- define "pdserve.image" -}}
{{- $r := .spec.repository | default .root.Values.image.repository -}}
{{- $t := .spec.tag | default .root.Values.image.tag -}}
{{- printf "%s:%s" $r (toString $t) -}}
{{- end -}}

{{- define "pdserve.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (printf "%s-pdserve" .Release.Name) -}}
{{- end -}}

{{- define "pdserve.secretName" -}}
{{- printf "%s-secrets" .Release.Name -}}
{{- end -}}

{{- define "pdserve.internalSecretName" -}}
{{- .Values.internalSecret.existingSecret | default (include "pdserve.secretName" .) -}}
{{- end -}}

{{- define "pdserve.internalSecretKey" -}}
{{- if .Values.internalSecret.existingSecret -}}{{ .Values.internalSecret.existingSecretKey }}{{- else -}}internal-secret{{- end -}}
{{- end -}}

{{/* Where the 0600 copy of the internal secret lives in every pdserve container. */}}
{{- define "pdserve.secretFile" -}}/run/pdserve/secret/internal-secret{{- end -}}

{{- define "pdserve.kvServerService" -}}
{{- printf "%s-kv-server-service" .Release.Name -}}
{{- end -}}

{{- define "pdserve.engineService" -}}
{{- printf "%s-%s-engine-service" .root.Release.Name .spec.name -}}
{{- end -}}

{{/* "k1=v1,k2=v2" from a map, keys sorted. */}}
{{- define "pdserve.selector" -}}
{{- $out := list -}}
{{- range $k, $v := . -}}{{- $out = append $out (printf "%s=%s" $k (toString $v)) -}}{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* The users' API key as an env var (PDSERVE_API_KEY), when one is configured. */}}
{{- define "pdserve.apiKeyEnv" -}}
{{- $k := .Values.servingEngineSpec.apiKey -}}
{{- if $k }}
- name: PDSERVE_API_KEY
  valueFrom:
    secretKeyRef:
      {{- if kindIs "string" $k }}
      name: {{ include "pdserve.secretName" . }}
      key: api-key
      {{- else }}
      name: {{ $k.secretName }}
      key: {{ $k.secretKey }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* Volumes for the internal secret: the Secret (read by the init container only) and the in-memory copy. */}}
{{- define "pdserve.secretVolumes" -}}
- name: internal-secret-src
  secret:
    secretName: {{ include "pdserve.internalSecretName" . }}
    # 0440 (root:fsGroup): readable by the init container through fsGroup; kubelet would add the group
    # bit to 0400 anyway when fsGroup is set. The process never reads this symlinked copy.
    defaultMode: 0440
    items:
      - key: {{ include "pdserve.internalSecretKey" . }}
        path: internal-secret
- name: internal-secret
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end -}}

{{/* The init container that turns the Secret into the 0600 file pdserve accepts. */}}
{{- define "pdserve.secretInit" -}}
- name: internal-secret
  image: {{ include "pdserve.image" (dict "root" .root "spec" .spec) }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command:
    - install
    - -m
    - "0600"
    - /run/pdserve/secret-src/internal-secret
    - {{ include "pdserve.secretFile" .root }}
  securityContext:
    {{- toYaml .root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: internal-secret-src
      mountPath: /run/pdserve/secret-src
      readOnly: true
    - name: internal-secret
      mountPath: /run/pdserve/secret
{{- end -}}

{{- define "pdserve.secretMount" -}}
- name: internal-secret
  mountPath: /run/pdserve/secret
  readOnly: true
{{- end -}}

{{/* An engine's model label (the router's role key): labels.model, else the modelSpec name. (dict "spec" ...) */}}
{{- define "pdserve.modelLabel" -}}
{{- (.spec.labels | default dict).model | default .spec.name -}}
{{- end -}}
