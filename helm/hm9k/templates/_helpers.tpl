{{- define "hm9k.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "hm9k.labels" -}}
app.kubernetes.io/name: {{ .Values.nameOverride | default "hm9k" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hm9k
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels of one half's objects: {root, half}. */}}
{{- define "hm9k.halfLabels" -}}
{{ include "hm9k.labels" .root }}
app.kubernetes.io/component: {{ .half }}
{{- end -}}

{{- define "hm9k.selector" -}}
app.kubernetes.io/name: {{ .root.Values.nameOverride | default "hm9k" }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .half }}
{{- end -}}

{{- define "hm9k.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Object name of one half: {root, half} -> <fullname>-<half>. */}}
{{- define "hm9k.halfName" -}}
{{ include "hm9k.fullname" .root }}-{{ .half }}
{{- end -}}

{{/* ServiceAccount of one half: {root, half}. */}}
{{- define "hm9k.serviceAccountName" -}}
{{- $v := index .root.Values .half -}}
{{- $v.serviceAccount.name | default (include "hm9k.halfName" .) -}}
{{- end -}}

{{/* Namespace of the DesiredApp objects. */}}
{{- define "hm9k.desiredAppNamespace" -}}
{{ .Values.apps.desiredAppNamespace | default .Release.Namespace }}
{{- end -}}

{{/*
The configuration file of one half ({root, half}), exactly the keys of src/config.ts. apps.enabled /
nodes.enabled are not in the file: the container arguments (run --apps | run --nodes) set them, so a
file can never switch both halves on in one process. Secrets are not in the file either (HM9K_* env).
*/}}
{{- define "hm9k.config" -}}
{{- $v := .root.Values -}}
{{- $cfg := dict
  "namespace" .root.Release.Namespace
  "logLevel" $v.logLevel
  "metricsPort" (int $v.metricsPort)
  "healthPort" (int $v.healthPort)
  "leaderElection" (dict
    "enabled" true
    "leaseName" (index $v .half).leaseName
    "leaseDuration" $v.leaderElection.leaseDuration
    "renewDeadline" $v.leaderElection.renewDeadline
    "retryPeriod" $v.leaderElection.retryPeriod)
  "watch" (dict "timeout" $v.watch.timeout "watchdog" $v.watch.watchdog "resync" $v.watch.resync)
-}}
{{- if eq .half "apps" -}}
{{- $a := $v.apps -}}
{{- $nats := dict "servers" $a.nats.servers -}}
{{- if $a.nats.user }}{{ $_ := set $nats "user" $a.nats.user }}{{ end -}}
{{- $apps := dict
  "nats" $nats
  "cc" (dict "url" $a.cc.url "internalUser" $a.cc.internalUser "bulkUser" $a.cc.bulkUser)
  "sendVia" $a.sendVia
  "store" (dict "kind" $a.store.kind "endpoints" $a.store.endpoints "prefix" $a.store.prefix)
  "api" (dict "port" (int $a.api.port) "user" $a.api.user "heartbeatEndpoint" $a.api.heartbeatEndpoint "heartbeatAuth" $a.api.heartbeatAuth "heartbeatUser" ($a.api.heartbeatUser | default ""))
  "desiredAppNamespace" (include "hm9k.desiredAppNamespace" .root)
-}}
{{- if $a.policyName }}{{ $_ := set $apps "policyName" $a.policyName }}{{ end -}}
{{- $_ := set $cfg "apps" $apps -}}
{{- else -}}
{{- $n := $v.nodes -}}
{{- $nodes := dict
  "cloudsSecret" $n.cloudsSecret
  "cloudName" $n.cloudName
  "globalMaxUnhealthy" $n.globalMaxUnhealthy
  "maxConcurrentRemediations" (int $n.maxConcurrentRemediations)
  "maxParallelIpmi" (int $n.maxParallelIpmi)
  "maxParallelSsh" (int $n.maxParallelSsh)
  "consulWait" $n.consulWait
  "consulMinLoop" $n.consulMinLoop
  "powerPollInterval" $n.powerPollInterval
  "novaPollInterval" $n.novaPollInterval
  "httpTimeout" $n.httpTimeout
  "maxResponseBytes" (int $n.maxResponseBytes)
  "maxPages" (int $n.maxPages)
  "tokenRefreshPercent" (int $n.tokenRefreshPercent)
  "tokenRetryInterval" $n.tokenRetryInterval
  "resync" $n.resync
  "ipmitoolPath" $n.ipmitoolPath
  "workers" (int $n.workers)
  "serverCountInterval" $n.serverCountInterval
  "emailRetryInitial" $n.emailRetryInitial
  "emailRetryMax" $n.emailRetryMax
  "emailRetries" (int $n.emailRetries)
-}}
{{- with $n.smtpDefault }}{{ if .smtpHost -}}
{{- $smtp := dict "smtpHost" .smtpHost "smtpPort" (int .smtpPort) "secure" .secure "from" .from "to" .to -}}
{{- if .credentialsSecret }}{{ $_ := set $smtp "credentialsSecret" .credentialsSecret }}{{ end -}}
{{- $_ := set $nodes "smtpDefault" $smtp -}}
{{- end }}{{ end -}}
{{- if kindIs "float64" $n.globalMaxUnhealthy }}{{ $_ := set $nodes "globalMaxUnhealthy" (int $n.globalMaxUnhealthy) }}{{ end -}}
{{- $_ := set $cfg "nodes" $nodes -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Environment of one half ({root, half}): the pod name and the secrets, by reference only. */}}
{{- define "hm9k.env" -}}
- name: HM9K_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if eq .half "apps" }}
{{- $a := .root.Values.apps }}
{{- if $a.nats.existingSecret }}
{{- if $a.nats.passwordKey }}
- name: HM9K_APPS__NATS__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $a.nats.existingSecret }}
      key: {{ $a.nats.passwordKey }}
{{- end }}
{{- if $a.nats.tokenKey }}
- name: HM9K_APPS__NATS__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $a.nats.existingSecret }}
      key: {{ $a.nats.tokenKey }}
{{- end }}
{{- end }}
- name: HM9K_APPS__CC__INTERNAL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $a.cc.existingSecret }}
      key: {{ $a.cc.internalPasswordKey }}
      {{- if eq $a.sendVia "nats" }}
      optional: true
      {{- end }}
- name: HM9K_APPS__CC__BULK_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $a.cc.existingSecret }}
      key: {{ $a.cc.bulkPasswordKey }}
- name: HM9K_APPS__API__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $a.api.existingSecret }}
      key: {{ $a.api.passwordKey }}
{{- if and $a.api.heartbeatEndpoint $a.api.heartbeatPasswordKey }}
- name: HM9K_APPS__API__HEARTBEAT_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $a.api.existingSecret }}
      key: {{ $a.api.heartbeatPasswordKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Cross-field checks the schema cannot phrase clearly: fail with the value's path. */}}
{{- define "hm9k.validate" -}}
{{- $a := .Values.apps -}}
{{- if $a.enabled -}}
{{- /* values.yaml ships a placeholder CC URL: an install that forgot to set it must not start against it. */ -}}
{{- if or (not $a.cc.url) (eq $a.cc.url "https://api.cf.internal") -}}{{ fail (printf "apps.cc.url is required when apps.enabled=true: set it to your Cloud Controller's base URL (e.g. https://api.sys.example.org); it is %s" (ternary "empty" "still the placeholder https://api.cf.internal of values.yaml" (not $a.cc.url))) }}{{- end -}}
{{- if not $a.cc.existingSecret -}}{{ fail "apps.cc.existingSecret is required when apps.enabled=true: an existing Secret with the CC internal and bulk API passwords" }}{{- end -}}
{{- if not $a.cc.bulkUser -}}{{ fail "apps.cc.bulkUser is required when apps.enabled=true" }}{{- end -}}
{{- if and (eq $a.sendVia "http") (not $a.cc.internalUser) -}}{{ fail "apps.cc.internalUser is required with apps.sendVia=http" }}{{- end -}}
{{- if not $a.api.existingSecret -}}{{ fail "apps.api.existingSecret is required when apps.enabled=true: an existing Secret with the /bulk_app_state basic-auth password" }}{{- end -}}
{{- if not $a.api.user -}}{{ fail "apps.api.user is required when apps.enabled=true" }}{{- end -}}
{{- if and $a.api.heartbeatEndpoint (not $a.api.heartbeatAuth) -}}{{ fail "apps.api.heartbeatAuth=false is refused while apps.api.heartbeatEndpoint=true: the pods listen on their IP, and an unauthenticated /dea/heartbeat lets any pod forge DEA heartbeats" }}{{- end -}}
{{- if and (eq $a.store.kind "etcd") (not $a.store.endpoints) -}}{{ fail "apps.store.endpoints needs at least one etcd URL with apps.store.kind=etcd" }}{{- end -}}
{{- end -}}
{{- range $half := list "apps" "nodes" -}}
{{- $v := index $.Values $half -}}
{{- if $v.enabled -}}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) -}}{{ fail (printf "%s.serviceAccount.name is required when %s.serviceAccount.create=false: the name of an existing ServiceAccount in the release namespace" $half $half) }}{{- end -}}
{{- if and $v.pdb.enabled (gt (int $v.replicas) 1) (not (kindIs "string" $v.pdb.minAvailable)) (ge (int $v.pdb.minAvailable) (int $v.replicas)) -}}{{ fail (printf "%s.pdb.minAvailable=%d with %s.replicas=%d would block kubectl drain: keep it below the replica count" $half (int $v.pdb.minAvailable) $half (int $v.replicas)) }}{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.apps.enabled .Values.nodes.enabled (eq .Values.apps.leaseName .Values.nodes.leaseName) -}}{{ fail "apps.leaseName and nodes.leaseName must differ: each half has its own Lease" }}{{- end -}}
{{- end -}}

{{/* Name of an object outside the release namespace or cluster-scoped ({root, half}): unique per release. */}}
{{- define "hm9k.globalName" -}}
hm9k:{{ .root.Release.Namespace }}:{{ include "hm9k.halfName" . }}
{{- end -}}
