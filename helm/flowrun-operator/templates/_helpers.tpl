{{/*
Standard names, as `helm create` makes them.
*/}}
{{- define "flowrun-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "flowrun-operator.fullname" -}}
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

{{- define "flowrun-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "flowrun-operator.labels" -}}
helm.sh/chart: {{ include "flowrun-operator.chart" . }}
{{ include "flowrun-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flowrun-operator
{{- end }}

{{- define "flowrun-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flowrun-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flowrun-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flowrun-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flowrun-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Cluster-wide mode unless watchNamespaces lists namespaces.
*/}}
{{- define "flowrun-operator.clusterwide" -}}
{{- if not .Values.watchNamespaces }}true{{- end }}
{{- end }}

{{/*
The operator's rules in a watched namespace (or in every namespace, cluster-wide).
Each rule says what needs it; tests/packaging/test_rbac_needed.py shows the operator denied
without it, test_install.py that the whole set is enough.
*/}}
{{- define "flowrun-operator.rules" -}}
# kopf lists and watches FlowRuns and patches them (finalizer, progress annotations). `get` is
# held only so that the operator may grant it: each runner's Role allows get/watch of its own
# FlowRun, and RBAC lets nobody grant what they do not hold.
- apiGroups: ["flowrun.dev"]
  resources: ["flowruns"]
  verbs: ["get", "list", "watch", "patch"]
# The status writer patches status (phase, tasks, conditions).
- apiGroups: ["flowrun.dev"]
  resources: ["flowruns/status"]
  verbs: ["patch"]
# Setting blockOwnerDeletion on the DaskCluster's ownerReference to its FlowRun needs update
# on the owner's finalizers (OwnerReferencesPermissionEnforcement admission).
- apiGroups: ["flowrun.dev"]
  resources: ["flowruns/finalizers"]
  verbs: ["update"]
# A FlowRun with spec.flow.templateRef copies its FlowTemplate when it starts: read by name.
- apiGroups: ["flowrun.dev"]
  resources: ["flowtemplates"]
  verbs: ["get"]
# A big inline flow's live status (1,000 tasks or more): a ConfigMap owned by its FlowRun,
# created by the operator and patched by it (in-process runs) or by the runner (which may patch
# only that one, so the operator must hold patch to grant it). Writes of the FlowRun itself cost
# the API server the whole flow (benchmarks/README.md). A templateRef run's copy of its template:
# a ConfigMap owned by its FlowRun, created by the operator and read by name by it (after a
# restart) and by the runner (which may get only that one, so the operator must hold get).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
# Events for phase changes, task failures and the cluster's life (kopf posts core v1 Events).
# `list` (by field selector, on the runner's Job alone): when the runner's Pod cannot be created
# (a ResourceQuota, a LimitRange), the Job controller says why only in a FailedCreate Event.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list"]
# The Kubernetes Dask provider: one DaskCluster per FlowRun, created, found again by name after a
# restart, and deleted at the end; patched only to touch one its operator has not actioned
# (flowrun.cluster.nudge). Its worker groups are read (KubeCluster status, the runner path's
# start), and its default group is made or touched when the dask operator dropped it
# (flowrun.controller.workergroup).
- apiGroups: ["kubernetes.dask.org"]
  resources: ["daskclusters"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["kubernetes.dask.org"]
  resources: ["daskworkergroups"]
  verbs: ["get", "list", "create", "patch"]
# spec.executor.dask.adapt: a DaskAutoscaler next to the DaskCluster, created with it and
# deleted before it (by name: no get or list).
- apiGroups: ["kubernetes.dask.org"]
  resources: ["daskautoscalers"]
  verbs: ["create", "delete"]
# dask-kubernetes' KubeCluster polls (never watches) the scheduler Pod and Service. kr8s reads an
# object by name with a list and a field selector, hence list next to get throughout.
- apiGroups: [""]
  resources: ["pods", "services"]
  verbs: ["get", "list"]
# Each FlowRun's runner (the Pod that runs its flow): a Job, and its own identity, a
# ServiceAccount bound to a Role on its FlowRun alone; created, then deleted at the run's end. The
# operator follows the Job (and reads its Pods, above) to say why a runner died. No Secret is ever
# read: parametersFrom reach the runner as secretKeyRef env, resolved by the kubelet.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["create", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create", "delete"]
{{- end }}

{{/*
The dask-kubernetes operator's ServiceAccount, named as its (vendored) subchart names it.
*/}}
{{- define "flowrun-operator.daskOperatorServiceAccount" -}}
{{- $values := index .Values "dask-kubernetes-operator" | default dict }}
{{- $sa := $values.serviceAccount | default dict }}
{{- if $sa.name }}
{{- $sa.name }}
{{- else if $values.fullnameOverride }}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "dask-kubernetes-operator" $values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}
