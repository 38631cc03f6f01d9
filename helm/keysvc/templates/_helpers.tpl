{{/*
Chart name, truncated to the 63 characters DNS labels allow.
*/}}
{{- define "keysvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: <release>-<chart>, or the release name when it already contains the chart name.
*/}}
{{- define "keysvc.fullname" -}}
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

{{- define "keysvc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: name and instance only (immutable in a Deployment's selector).
*/}}
{{- define "keysvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keysvc.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/*
Common labels on every object.
*/}}
{{- define "keysvc.labels" -}}
helm.sh/chart: {{ include "keysvc.chart" . | quote }}
{{ include "keysvc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: "keysvc"
{{- end }}

{{- define "keysvc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keysvc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
image reference: repository[:tag][@digest]; tag defaults to appVersion.
*/}}
{{- define "keysvc.imageRef" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Store kind: "postgresql" or "sqlite".
*/}}
{{- define "keysvc.storeKind" -}}
{{- if or (hasPrefix "postgresql://" .Values.store.url) (hasPrefix "postgres://" .Values.store.url) }}postgresql{{- else }}sqlite{{- end }}
{{- end }}

{{/*
Store URL actually written to the config: the value, or SQLite in the data volume.
*/}}
{{- define "keysvc.storeUrl" -}}
{{- if .Values.store.url }}
{{- .Values.store.url }}
{{- else }}
{{- /* sqlite:/// + an absolute path: the four-slash form means the same file whether the server
strips "sqlite://" or "sqlite:///". */ -}}
{{- printf "sqlite:///%s/keysvc.db" (trimSuffix "/" .Values.persistence.mountPath) }}
{{- end }}
{{- end }}

{{/*
"true" when pods need the data volume: a SQLite store or the local KEK file.
*/}}
{{- define "keysvc.needsDataVolume" -}}
{{- if or (eq (include "keysvc.storeKind" .) "sqlite") (eq .Values.kek.provider "local") }}true{{- end }}
{{- end }}

{{/*
"true" when the plaintext health-only port is served (always with TLS: kubelet gRPC probes cannot do TLS).
*/}}
{{- define "keysvc.healthPortEnabled" -}}
{{- if or .Values.tls.enabled .Values.server.healthPortEnabled }}true{{- end }}
{{- end }}

{{/*
The port kubelet probes and `helm test` call for grpc.health.v1.Health.
*/}}
{{- define "keysvc.probePort" -}}
{{- if include "keysvc.healthPortEnabled" . }}{{ .Values.server.healthPort }}{{- else }}{{ .Values.server.port }}{{- end }}
{{- end }}

{{/*
Largest replica count the release can reach.
*/}}
{{- define "keysvc.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.maxReplicas }}{{- else }}{{ .Values.replicaCount }}{{- end }}
{{- end }}

{{/*
Checks that span several values. Each failure says what to set. Included by the Deployment
(so every install renders it) and produces no output.
*/}}
{{- define "keysvc.validate" -}}
{{- $multi := gt (int (include "keysvc.maxReplicas" .)) 1 }}
{{- $kind := include "keysvc.storeKind" . }}
{{- if $multi }}
{{- $_ := required "keysvc: store.url is required when more than one replica can run (replicaCount > 1 or autoscaling.enabled): set store.url to postgresql://USER@HOST:PORT/DB (password from store.existingSecret)" .Values.store.url }}
{{- if ne $kind "postgresql" }}
{{- fail "keysvc: store.url must be postgresql://... when more than one replica can run; SQLite is single-node only" }}
{{- end }}
{{- if eq .Values.kek.provider "local" }}
{{- fail "keysvc: kek.provider=local keeps the KEK in one pod's data volume and cannot serve more than one replica: set kek.provider=vault-transit and vault.addr" }}
{{- end }}
{{- end }}
{{- if and .Values.store.url (not (or (hasPrefix "postgresql://" .Values.store.url) (hasPrefix "postgres://" .Values.store.url) (hasPrefix "sqlite:///" .Values.store.url))) }}
{{- fail (printf "keysvc: store.url must start with postgresql:// or sqlite:/// (got scheme %q)" (regexFind "^[a-zA-Z0-9+.-]*:" .Values.store.url)) }}
{{- end }}
{{- if regexMatch "^[a-zA-Z0-9+.-]+://[^/@]*:[^/@]*@" .Values.store.url }}
{{- fail "keysvc: store.url contains a password; remove it from the URL and put it in an existing Secret named by store.existingSecret (key store.existingSecretPasswordKey)" }}
{{- end }}
{{- if and (eq $kind "sqlite") .Values.store.existingSecret }}
{{- fail "keysvc: store.existingSecret is set but the store is SQLite; set store.url to postgresql://..." }}
{{- end }}
{{- if eq .Values.kek.provider "vault-transit" }}
{{- $_ := required "keysvc: vault.addr is required when kek.provider is vault-transit (e.g. https://vault.vault.svc:8200)" .Values.vault.addr }}
{{- if eq .Values.vault.auth "kubernetes" }}
{{- $_ := required "keysvc: vault.role is required when vault.auth is kubernetes (the Vault Kubernetes auth role bound to this ServiceAccount)" .Values.vault.role }}
{{- if not .Values.serviceAccount.automountToken }}
{{- fail "keysvc: vault.auth=kubernetes logs in with the ServiceAccount token: set serviceAccount.automountToken=true" }}
{{- end }}
{{- else if eq .Values.vault.auth "approle" }}
{{- $_ := required "keysvc: vault.roleId is required when vault.auth is approle" .Values.vault.roleId }}
{{- $_ := required "keysvc: vault.secretIdSecret (existing Secret with key secret-id) is required when vault.auth is approle" .Values.vault.secretIdSecret }}
{{- else if eq .Values.vault.auth "token" }}
{{- $_ := required "keysvc: vault.tokenSecret (existing Secret with key token) is required when vault.auth is token" .Values.vault.tokenSecret }}
{{- end }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- $_ := required "keysvc: tls.secretName (existing kubernetes.io/tls Secret with tls.crt, tls.key, ca.crt) is required when tls.enabled" .Values.tls.secretName }}
{{- end }}
{{- if and .Values.server.healthPortEnabled (eq (int .Values.server.healthPort) (int .Values.server.port)) }}
{{- fail "keysvc: server.healthPort must differ from server.port" }}
{{- end }}
{{- if and (include "keysvc.needsDataVolume" .) (not .Values.persistence.enabled) (not .Values.persistence.allowEphemeral) }}
{{- fail "keysvc: embedded mode (SQLite store or kek.provider=local) keeps keys in the data directory; without persistence.enabled every restart destroys them. Enable persistence, use PostgreSQL + vault-transit, or set persistence.allowEphemeral=true for throwaway installs" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (eq $kind "postgresql") (empty .Values.networkPolicy.postgresql.to) }}
{{- fail "keysvc: networkPolicy.postgresql.to is required when networkPolicy.enabled and the store is PostgreSQL (NetworkPolicyPeer list, e.g. a podSelector or ipBlock for the database)" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (eq .Values.kek.provider "vault-transit") (empty .Values.networkPolicy.vault.to) }}
{{- fail "keysvc: networkPolicy.vault.to is required when networkPolicy.enabled and kek.provider is vault-transit" }}
{{- end }}
{{- end }}
