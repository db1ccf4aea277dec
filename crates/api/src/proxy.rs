//! PulsarProxy (SPEC 1.5).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{AutoScalingPolicy, CustomConfig, Customization, ImagePullPolicy, LogConfig, PodSpec};
use crate::istio::GatewayIstioSpec;
use crate::status::ComponentStatus;
use crate::zookeeper::one;

/// Pulsar proxies in front of the brokers.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "pulsar.streamnative.io",
    version = "v1alpha1",
    kind = "PulsarProxy",
    namespaced,
    shortname = "pp",
    shortname = "proxy",
    status = "ComponentStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Pulsar proxies managed by magnetar.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(name = "REPLICAS", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "READY REPLICAS", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "MESH", type_ = "string", json_path = ".status.mesh.dataplaneMode"),
    printcolumn(name = "DESIRED IMAGE", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.istio) || !has(self.istio.gateway) || (has(self.dnsNames) && size(self.dnsNames) > 0)").message("istio.gateway on a proxy needs dnsNames: list the external host names the gateway serves").field_path(".dnsNames"))]
pub struct PulsarProxySpec {
    /// Container image; required unless a PulsarCoordinator supplies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Number of proxies; 0 keeps the objects but runs no pod. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// The brokers' Service, `name` or `host[:port]`.
    #[schemars(length(min = 1))]
    pub broker_address: String,
    /// External host names of the proxy (served by the gateway).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// Extra proxy.conf entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<CustomConfig>,
    /// Serve Pulsar's WebSocket API on the proxy's web port (proxy.conf
    /// webSocketServiceEnabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_socket_service_enabled: Option<bool>,
    /// Log level and format; the image's conf/log4j2.yaml when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
    /// A HorizontalPodAutoscaler for the StatefulSet; while set, it, not
    /// replicas, decides how many pods run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_policy: Option<AutoScalingPolicy>,
    /// Pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSpec>,
    /// Mesh integration and external access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<GatewayIstioSpec>,
    /// Merge patches applied to generated objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customization: Vec<Customization>,
}
