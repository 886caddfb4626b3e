{{/* Model labels of the engines by role: (dict "root" $ "role" "prefill"|"decode") -> "a,b". */}}
{{- define "pdserve.roleLabels" -}}
{{- $out := list -}}
{{- range $spec := .root.Values.servingEngineSpec.modelSpec -}}
{{- $kv := $spec.kvConfig | default dict -}}
{{- $m := include "pdserve.modelLabel" (dict "spec" $spec) -}}
{{- if and (eq $.role "prefill") $kv.enabled (eq $kv.kvRole "kv_producer") -}}{{- $out = append $out $m -}}{{- end -}}
{{- if and (eq $.role "decode") (or (not $kv.enabled) (ne $kv.kvRole "kv_producer")) -}}{{- $out = append $out $m -}}{{- end -}}
{{- end -}}
{{- join "," (uniq $out) -}}
{{- end -}}

{{/* Engine Service URLs by role: (dict "root" $ "role" ...) -> list of "http://svc:port", one per line. */}}
{{- define "pdserve.roleUrls" -}}
{{- range $spec := .root.Values.servingEngineSpec.modelSpec -}}
{{- $kv := $spec.kvConfig | default dict -}}
{{- $isP := and $kv.enabled (eq $kv.kvRole "kv_producer") -}}
{{- if or (and (eq $.role "prefill") $isP) (and (eq $.role "decode") (not $isP)) }}
- http://{{ include "pdserve.engineService" (dict "root" $.root "spec" $spec) }}:{{ $.root.Values.servingEngineSpec.servicePort }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The router container's args: `pdserve router` (vllm_router's flags) or `pdserve proxy`. */}}
{{- define "pdserve.routerArgs" -}}
{{- $r := .Values.routerSpec -}}
{{- if eq $r.kind "router" }}
- router
- --host
- 0.0.0.0
- --port
- {{ $r.containerPort | quote }}
- --service-discovery
- {{ $r.serviceDiscovery }}
{{- if eq $r.serviceDiscovery "k8s" }}
- --k8s-namespace
- {{ .Release.Namespace }}
- --k8s-label-selector
- {{ include "pdserve.selector" .Values.servingEngineSpec.labels | quote }}
- --k8s-port
- {{ .Values.servingEngineSpec.containerPort | quote }}
{{- end }}
- --routing-logic
- {{ $r.routingLogic }}
{{- with $r.sessionKey }}
- --session-key
- {{ . | quote }}
{{- end }}
{{- if eq $r.routingLogic "disaggregated_prefill" }}
- --prefill-model-labels
- {{ include "pdserve.roleLabels" (dict "root" . "role" "prefill") | quote }}
- --decode-model-labels
- {{ include "pdserve.roleLabels" (dict "root" . "role" "decode") | quote }}
{{- end }}
- --engine-stats-interval
- {{ $r.engineScrapeInterval | quote }}
- --request-stats-window
- {{ $r.requestStatsWindow | quote }}
{{- else }}
- proxy
- --host
- 0.0.0.0
- --port
- {{ $r.containerPort | quote }}
{{- range splitList "\n" (include "pdserve.roleUrls" (dict "root" . "role" "prefill") | trim) }}
{{- if . }}
- --prefiller
- {{ trimPrefix "- " . | quote }}
{{- end }}
{{- end }}
{{- range splitList "\n" (include "pdserve.roleUrls" (dict "root" . "role" "decode") | trim) }}
{{- if . }}
- --decoder
- {{ trimPrefix "- " . | quote }}
{{- end }}
{{- end }}
{{- if .Values.kvServerSpec.enabled }}
- --kv-server
- {{ printf "%s:%v" (include "pdserve.kvServerService" .) .Values.kvServerSpec.port | quote }}
{{- end }}
{{- end }}
- --internal-secret-file
- {{ include "pdserve.secretFile" . }}
{{- range $r.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
