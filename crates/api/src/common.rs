//! Fields every component kind shares: the pod template and customization.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, Container, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SecretVolumeSource, Toleration, TopologySpreadConstraint,
};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Image pull policy of the component's containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// What happens to persistent volume claims when the cluster is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ReclaimPolicy {
    /// Keep the PVCs and the data in them (default).
    #[default]
    Retain,
    /// Delete the PVCs with the cluster.
    Delete,
}

/// Settings of the component's pods.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// Extra labels on the pods. While the component's Istio integration is
    /// enabled, magnetar owns the mesh enrolment labels and overrides them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Resource requests and limits of the main container. The JVM's heap
    /// and direct memory are sized from the memory limit (or, without one,
    /// the memory request) unless jvmOptions.memoryOptions says otherwise.
    pub resources: Option<ResourceRequirements>,
    /// JVM options of the main container.
    pub jvm_options: Option<JvmOptions>,
    /// Pod-level security context. Pods run as non-root by default.
    pub security_context: Option<PodSecurityContext>,
    /// Node labels the pods must be scheduled on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity rules of the pods.
    pub affinity: Option<Affinity>,
    /// Use this existing ServiceAccount instead of the one magnetar creates.
    /// AuthorizationPolicies then name this account.
    pub service_account_name: Option<String>,
    /// Secrets mounted read-only into the main container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_refs: Vec<SecretRef>,
    /// Seconds a pod has to stop gracefully.
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Secrets (of type kubernetes.io/dockerconfigjson, in the component's
    /// namespace) the kubelet uses to pull the image from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Environment variables of the main container, as in a container's
    /// `env` (a `value`, or `valueFrom` a Secret, ConfigMap or field). The
    /// start-up script's `apply-config-from-env.py` sets the configuration
    /// key of the same name from one (for example `tokenSecretKey` or
    /// `brokerClientAuthenticationParameters` from a Secret), so a secret
    /// reaches the configuration without being written into a ConfigMap.
    /// A variable named like one magnetar sets (PULSAR_MEM,
    /// PULSAR_PREFIX_*, ...) replaces magnetar's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<EnvVar>,
    /// Containers that run to completion before the main container starts,
    /// in order (for example to fetch a certificate or wait for a service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// Extra containers that run beside the main container in every pod
    /// (for example a log shipper).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<Container>,
    /// Extra volumes of the pod (from a ConfigMap or a Secret), for the
    /// initContainers and sidecars to mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<PodVolume>,
    /// How the pods spread over topology domains (zones, nodes). Without
    /// them magnetar prefers one pod per node (a soft anti-affinity) unless
    /// `affinity` is set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Seconds a new pod must be Ready before it counts as available, so a
    /// rolling update waits that long between pods.
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
}

/// An extra volume of the pod: a ConfigMap or a Secret.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodVolume {
    /// The volume's name, which containers' volumeMounts refer to. Unique in
    /// the pod and different from the volumes magnetar adds itself.
    pub name: String,
    /// A ConfigMap whose keys become files.
    pub config_map: Option<ConfigMapVolumeSource>,
    /// A Secret whose keys become files.
    pub secret: Option<SecretVolumeSource>,
}

/// JVM options of the main container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JvmOptions {
    /// Heap and direct-memory options, for example ["-Xms2g", "-Xmx2g",
    /// "-XX:MaxDirectMemorySize=4g"]. They replace the sizes magnetar
    /// derives from the pod's memory, as PULSAR_MEM (BOOKIE_MEM for bookies
    /// and auto-recovery). Each entry starts with '-'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_options: Vec<String>,
    /// Garbage-collector options, as PULSAR_GC (BOOKIE_GC for bookies and
    /// auto-recovery); the image's G1 defaults when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gc_options: Vec<String>,
    /// GC logging options, as PULSAR_GC_LOG (BOOKIE_GC_LOG).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gc_logging_options: Vec<String>,
    /// Any other JVM options, as PULSAR_EXTRA_OPTS (BOOKIE_EXTRA_OPTS),
    /// for example ["-Dio.netty.leakDetectionLevel=advanced"].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_options: Vec<String>,
}

/// A Secret mounted read-only into the main container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret, in the component's namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Absolute path where the Secret's keys appear as files.
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("mountPath must be an absolute path, for example /etc/tls/client"))]
    pub mount_path: String,
}

/// A JSON merge patch (RFC 7386) applied to generated objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Customization {
    /// The patch, as a YAML (or JSON) document. It is merged into every
    /// generated object that `match` selects, after magnetar built it.
    #[schemars(length(min = 1))]
    pub manifest: String,
    /// Which generated objects the patch applies to.
    #[serde(rename = "match")]
    pub match_: CustomizationMatch,
}

/// Selects generated objects by kind and name.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomizationMatch {
    /// Kinds to patch; an object matches when its group and kind (and the
    /// version, when given) equal one of these.
    #[schemars(length(min = 1))]
    pub group_version_kinds: Vec<GroupVersionKindMatch>,
    /// Regular expression the object's name must match in full (anchored).
    /// Empty or absent matches every name.
    pub name: Option<String>,
}

/// A group, optional version, and kind.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupVersionKindMatch {
    /// API group; empty for the core group (Service, ConfigMap, ...).
    #[serde(default)]
    pub group: String,
    /// API version; any version when absent.
    pub version: Option<String>,
    /// Kind, for example AuthorizationPolicy.
    #[schemars(length(min = 1))]
    pub kind: String,
}

/// Log level of a component (log4j2 levels, StreamNative's enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Info,
    Debug,
    Trace,
    Warn,
    Error,
    Fatal,
    All,
    Off,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
            Self::Trace => "TRACE",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::All => "ALL",
            Self::Off => "OFF",
        }
    }
}

/// Format of the log lines on the container's standard output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// The image's plain-text pattern (default).
    #[default]
    Text,
}

/// Log level and format of the component (StreamNative's logConfig).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogConfig {
    /// Level of Pulsar's loggers and of the root logger: INFO (the image's
    /// default), DEBUG, TRACE, WARN, ERROR, FATAL, ALL or OFF.
    pub level: Option<LogLevel>,
    /// json writes one JSON object per line to standard output; text (the
    /// default) keeps the image's pattern. Ignored when template is set.
    pub format: Option<LogFormat>,
    /// A complete log4j2 configuration (YAML) that replaces the image's
    /// conf/log4j2.yaml. The level still reaches it as the system
    /// properties pulsar.log.level and pulsar.log.root.level.
    pub template: Option<String>,
}

/// Horizontal autoscaling of a component (StreamNative's autoScalingPolicy):
/// magnetar creates an autoscaling/v2 HorizontalPodAutoscaler for the
/// component's StatefulSet and leaves its replica count to it; `replicas`
/// is then only the size the StatefulSet starts with.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas").message("autoScalingPolicy.minReplicas must not exceed maxReplicas").field_path(".minReplicas"))]
pub struct AutoScalingPolicy {
    /// Fewest pods the autoscaler keeps. Default 1.
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,
    /// Most pods the autoscaler may run.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// What the autoscaler measures (HorizontalPodAutoscaler metrics);
    /// Kubernetes' default, 80% average CPU utilization of the pods'
    /// requests, when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSpec>,
    /// Scale-up and scale-down behaviour (HorizontalPodAutoscaler behavior).
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// Prometheus scraping of the component's pods: a PodMonitor
/// (prometheus-operator's monitoring.coreos.com/v1) whose endpoint works in
/// the component's mesh mode (docs/operations.md).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    /// Create the PodMonitor. Default false.
    pub enabled: Option<bool>,
    /// Scrape interval, for example 30s; Prometheus's own when absent.
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(ms|s|m|h)$')").message("monitoring.interval must be a duration such as 30s or 1m"))]
    pub interval: Option<String>,
    /// Labels of the PodMonitor, for a Prometheus that selects PodMonitors
    /// by label (for example release: prometheus).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Monitoring {
    pub fn on(m: Option<&Monitoring>) -> Option<&Monitoring> {
        m.filter(|m| m.enabled.unwrap_or(false))
    }
}

/// TLS served by a broker or proxy itself (StreamNative's `tls` blocks):
/// Pulsar's `pulsar+ssl` on 6651 and HTTPS on 8443, besides the mesh's
/// mTLS.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnTls {
    /// Serve `pulsar+ssl` on 6651 and HTTPS on 8443.
    pub enabled: Option<bool>,
    /// The Secret with `tls.crt` and `tls.key` (and `ca.crt`), for example
    /// cert-manager's.
    pub cert_secret_name: Option<String>,
    /// Trust the Secret's `ca.crt` (tlsTrustCertsFilePath).
    pub trust_certs_enabled: Option<bool>,
}
