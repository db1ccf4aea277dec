//! PulsarProxy (SPEC 1.5).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::auth::{Authentication, ClientAuth, ProxyAuthorization};
use crate::common::{AutoScalingPolicy, Customization, ImagePullPolicy, LogConfig, OwnTls, PodSpec};
use crate::istio::GatewayIstioSpec;
use crate::status::ComponentStatus;
use crate::zookeeper::one;

/// Pulsar proxies in front of the brokers.
#[serde_with::skip_serializing_none]
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
    pub image: Option<String>,
    /// Image pull policy.
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Number of proxies; 0 keeps the objects but runs no pod. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// The brokers' Service, `name` or `host[:port]`.
    #[schemars(length(min = 1))]
    pub broker_address: String,
    /// The configuration store (ZooKeeper `host:port[,host:port]`, or a
    /// metadata store URL) the proxies read Pulsar's permissions from: needed
    /// when the proxies authorize clients themselves (`config.authorization`).
    pub configuration_store_servers: Option<String>,
    /// External host names of the proxy (served by the gateway).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// The Secret with the proxies' own certificate when `config.tls` is
    /// enabled and names none (for example the Secret of a cert-manager
    /// Certificate created for `dnsNames`).
    pub cert_secret_name: Option<String>,
    /// proxy.conf settings.
    pub config: Option<ProxyConfig>,
    /// Serve Pulsar's WebSocket API on the proxy's web port (proxy.conf
    /// webSocketServiceEnabled).
    pub web_socket_service_enabled: Option<bool>,
    /// Log level and format; the image's conf/log4j2.yaml when absent.
    pub log_config: Option<LogConfig>,
    /// A PodMonitor for Prometheus (magnetar's own field).
    pub monitoring: Option<crate::common::Monitoring>,
    /// A HorizontalPodAutoscaler for the StatefulSet; while set, it, not
    /// replicas, decides how many pods run.
    pub auto_scaling_policy: Option<AutoScalingPolicy>,
    /// Pod settings.
    pub pod: Option<PodSpec>,
    /// Mesh integration and external access.
    pub istio: Option<GatewayIstioSpec>,
    /// Labels for every object magnetar generates for this resource, not
    /// its pods (those take `pod.labels`); magnetar's own
    /// `app.kubernetes.io/*` keys are refused.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Merge patches applied to generated objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customization: Vec<Customization>,
}

/// Proxy configuration.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    /// The Pulsar cluster the proxies serve (proxy.conf clusterName).
    pub cluster_name: Option<String>,
    /// Each proxy advertises its pod IP (proxy.conf advertisedAddress)
    /// instead of its host name.
    #[serde(rename = "usePodIPAsAdvertisedAddress")]
    pub use_pod_ip_as_advertised_address: Option<bool>,
    /// Pulsar's authentication of clients (JWT, TLS certificates).
    pub authentication: Option<Authentication>,
    /// Pulsar's authorization at the proxy: super-user roles.
    pub authorization: Option<ProxyAuthorization>,
    /// The credentials the proxy presents to the brokers.
    pub client_auth: Option<ClientAuth>,
    /// Kafka clients through the proxy: Pulsar's proxy extension `kafka`
    /// (KoP's proxy), which the image must contain.
    pub kop_proxy: Option<KopProxy>,
    /// TLS served by the proxies themselves: `pulsar+ssl` on 6651 and
    /// HTTPS on 8443 with the user's certificate.
    pub tls: Option<OwnTls>,
    /// Extra proxy.conf entries. Keys that begin with PULSAR_PREFIX_ are
    /// passed as environment variables unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

/// The Kafka proxy extension on the proxies: Kafka clients connect to the
/// proxies' port 9092, which forward to the brokers' Kafka listeners.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KopProxy {
    /// Load the extension and listen on 9092.
    pub enabled: Option<bool>,
    /// `host:port` the proxies advertise to Kafka clients, for example a
    /// load balancer in front of them. Default: the proxies' Service, port
    /// 9092 (reachable in the cluster only).
    #[x_kube(validation = Rule::new("self.matches('^[^:/ ]+:[0-9]{1,5}$')").message("kopProxy.kafkaAdvertisedListener must be host:port, for example kafka.example.com:9092"))]
    pub kafka_advertised_listener: Option<String>,
}
