//! Status reported by every component and the coordinator (SPEC 2).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition types.
pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const MESH_CONFIGURED: &str = "MeshConfigured";
/// Brokers and proxies with a gateway: whether external traffic is routed.
pub const EXTERNAL_ACCESS: &str = "ExternalAccess";
/// Brokers and proxies with a gateway: whether Pulsar's own authentication
/// guards what the gateway exposes (False is a warning naming the fix).
pub const EDGE_AUTHENTICATION: &str = "EdgeAuthentication";
/// Brokers and proxies routed through the Gateway API: whether the
/// implementation accepted every route and resolved its backends.
pub const GATEWAY_ROUTES: &str = "GatewayRoutes";
/// Components with `spec.monitoring` on: whether the PodMonitor is applied.
pub const MONITORING: &str = "Monitoring";

/// Observed state of a component.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Pods that exist.
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods that run the current pod template.
    #[serde(default)]
    pub updated_replicas: i32,
    /// The generation this status describes.
    pub observed_generation: Option<i64>,
    /// Label selector of the pods, for the scale subresource.
    pub label_selector: Option<String>,
    /// Mesh enrolment of the pods.
    pub mesh: Option<MeshStatus>,
    /// Where clients reach the brokers (PulsarBroker only).
    pub service_endpoints: Option<ServiceEndpoints>,
    /// Ready, Progressing, Degraded and, with Istio, MeshConfigured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Mesh enrolment of a component's pods.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeshStatus {
    /// none, sidecar or ambient: the mode the pods are being moved to.
    pub dataplane_mode: String,
    /// Istio revision the pods run with (sidecar mode).
    pub revision: Option<String>,
    /// Pods enrolled in the mesh the way dataplaneMode says.
    #[serde(default)]
    pub on_mesh_replicas: i32,
}

/// Service URLs of a broker.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoints {
    /// URLs inside the cluster.
    pub cluster: ClusterEndpoints,
    /// URLs through the ingress gateway (with a gateway and advertisedDomain).
    pub external: Option<ExternalEndpoints>,
    /// External host of each broker, by ordinal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<String>,
}

/// URLs inside the cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEndpoints {
    /// Admin (HTTP) URL of the brokers' Service.
    #[serde(rename = "webServiceURL")]
    pub web_service_url: String,
    /// Pulsar protocol URL of the brokers' Service.
    #[serde(rename = "pulsarServiceURL")]
    pub pulsar_service_url: String,
}

/// URLs through the ingress gateway.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalEndpoints {
    /// Admin (HTTPS) URL through the gateway.
    #[serde(rename = "webServiceURL")]
    pub web_service_url: String,
    /// Pulsar protocol URL (TLS) through the gateway.
    #[serde(rename = "pulsarServiceURL")]
    pub pulsar_service_url: String,
    /// Kafka bootstrap servers through the gateway (KoP on).
    pub kafka_bootstrap_servers: Option<String>,
    /// MQTT URL through the gateway (MoP on).
    #[serde(rename = "mqttServiceURL")]
    pub mqtt_service_url: Option<String>,
    /// AMQP URL through the gateway (AoP on).
    #[serde(rename = "amqpServiceURL")]
    pub amqp_service_url: Option<String>,
}

/// Observed state of a coordinator.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoordinatorStatus {
    /// The generation this status describes.
    pub observed_generation: Option<i64>,
    /// Readiness of each managed component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ManagedComponent>,
    /// Ready (every managed component Ready) and Progressing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A component the coordinator manages.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedComponent {
    /// Kind of the component.
    pub kind: String,
    /// Name of the component.
    pub name: String,
    /// Whether the component's Ready condition is True.
    pub ready: bool,
    /// Why it is not ready.
    pub message: Option<String>,
}
