{{/* The engine's --kv-config file (LMCache field names, src/kv/config.ts) from modelSpec[].kvConfig. */}}
{{- define "pdserve.kvConfigYaml" -}}
{{- $kv := .spec.kvConfig | default dict -}}
{{- $top := dict -}}
{{- $extra := dict "remote_transport" ($kv.remoteTransport | default "tcp") -}}
{{- range $k, $v := $kv -}}
{{- if has $k (list "chunkSize" "localCpu" "maxLocalCpuSize" "saveUnfullChunk" "blockingTimeoutSecs" "minRetrieveTokens" "localDisk" "maxLocalDiskSize") -}}
{{- $_ := set $top (snakecase $k) $v -}}
{{- else if has $k (list "lookupBackoffTime" "remoteTimeoutSecs") -}}
{{- $_ := set $extra (snakecase $k) $v -}}
{{- end -}}
{{- end -}}
{{- if .root.Values.kvServerSpec.enabled -}}
{{- $_ := set $top "remote_url" (printf "pdkv://%s:%v" (include "pdserve.kvServerService" .root) .root.Values.kvServerSpec.port) -}}
{{- end -}}
{{- $_ := set $top "extra_config" $extra -}}
{{- toYaml $top -}}
{{- end -}}
