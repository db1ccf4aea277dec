{{/* Labels on every object of the chart. */}}
{{- define "magnetar.labels" -}}
app.kubernetes.io/name: magnetar
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/*
The one namespace the operator watches, or "" for every namespace.
*/}}
{{- define "magnetar.watchNamespace" -}}
{{- if gt (len .Values.watchNamespaces) 1 -}}
{{- fail (printf "watchNamespaces: %v names %d namespaces; magnetar watches every namespace (give none) or exactly one" .Values.watchNamespaces (len .Values.watchNamespaces)) -}}
{{- end -}}
{{- first .Values.watchNamespaces | default "" -}}
{{- end }}

{{/* The operator's pods. */}}
{{- define "magnetar.selectorLabels" -}}
app.kubernetes.io/name: magnetar
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The operator's permissions, for a ClusterRole (every namespace) or a Role
(watchNamespaces). Exactly the kinds it reads and writes: crates/cli/tests/chart.rs
removes each rule in turn and shows a named operation failing, and keeps
deploy/operator/rbac.yaml's rules equal to these.
*/}}
{{- define "magnetar.rules" -}}
# Its own resources: read, and the coordinator's writes into components.
- apiGroups: [k8s.streamnative.io, zookeeper.streamnative.io, bookkeeper.streamnative.io, pulsar.streamnative.io]
  resources: [pulsarcoordinators, zookeeperclusters, bookkeeperclusters, pulsarbrokers, pulsarproxies]
  verbs: [get, list, watch, patch]
- apiGroups: [k8s.streamnative.io, zookeeper.streamnative.io, bookkeeper.streamnative.io, pulsar.streamnative.io]
  resources: [pulsarcoordinators/status, zookeeperclusters/status, bookkeeperclusters/status, pulsarbrokers/status, pulsarproxies/status]
  verbs: [get, patch]
# What it builds.
- apiGroups: [apps]
  resources: [statefulsets, deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps, serviceaccounts]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# autoScalingPolicy on bookies, brokers and proxies.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [security.istio.io]
  resources: [peerauthentications, authorizationpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.istio.io]
  resources: [destinationrules, gateways, virtualservices, serviceentries]
  verbs: [get, list, watch, create, patch, delete]
# External access through the Gateway API (istio.gateway.gatewayAPI).
- apiGroups: [gateway.networking.k8s.io]
  resources: [gateways, tlsroutes, httproutes]
  verbs: [get, list, watch, create, patch, delete]
# PodMonitors for Prometheus (spec.monitoring).
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors]
  verbs: [get, list, watch, create, patch, delete]
# Status and checks: pods (readiness, mesh enrolment, ZooKeeper restarts in
# leader order; the ingress gateway's pods, watched while missing), the
# gateway's TLS secrets (existence, read as metadata only).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
