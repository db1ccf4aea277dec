//! PulsarBroker (SPEC 1.4).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::auth::{Authentication, BrokerAuthorization, ClientAuth};
use crate::common::{AutoScalingPolicy, Customization, ImagePullPolicy, LogConfig, OwnTls, PodSpec};
use crate::istio::GatewayIstioSpec;
use crate::status::ComponentStatus;
use crate::zookeeper::one;

/// DNS name pattern (RFC 1123, at least two labels), shared with validation.
pub const DOMAIN_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$";

/// Pulsar brokers.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "pulsar.streamnative.io",
    version = "v1alpha1",
    kind = "PulsarBroker",
    namespaced,
    shortname = "pb",
    shortname = "broker",
    status = "ComponentStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Pulsar brokers managed by magnetar.",
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
#[x_kube(validation = Rule::new("!has(self.istio) || !has(self.istio.gateway) || (has(self.config) && has(self.config.advertisedDomain) && self.config.advertisedDomain != '')").message("istio.gateway needs config.advertisedDomain: set it to the root domain external clients use, for example pulsar.example.com").field_path(".config.advertisedDomain"))]
#[x_kube(validation = Rule::new("(has(self.zkServers) && self.zkServers != '') || (has(self.metadataStoreUrl) && self.metadataStoreUrl != '')").message("zkServers or metadataStoreUrl is required: name the ZooKeeper servers (host:port) or the metadata store, for example oxia://my-oxia:6648/broker").field_path(".zkServers"))]
pub struct PulsarBrokerSpec {
    /// Container image; required unless a PulsarCoordinator supplies it.
    pub image: Option<String>,
    /// Image pull policy.
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Number of brokers. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// ZooKeeper servers, `host:port[,host:port]`; required unless
    /// metadataStoreUrl names the metadata store.
    pub zk_servers: Option<String>,
    /// Metadata store of the brokers (broker.conf metadataStoreUrl), for
    /// example `oxia://my-oxia:6648/broker` or `zk:zk-0:2181`. Overrides the
    /// URL magnetar derives from zkServers.
    pub metadata_store_url: Option<String>,
    /// Configuration metadata store (broker.conf
    /// configurationMetadataStoreUrl). Default: the metadata store.
    pub configuration_metadata_store_url: Option<String>,
    /// Metadata service URI of the BookKeeper cluster (broker.conf
    /// bookkeeperMetadataServiceUri), for example
    /// `metadata-store:oxia://my-oxia:6648/bookkeeper`; set it to the
    /// bookies' metadataServiceUri when that is not the brokers' metadata
    /// store. Default: the brokers' metadata store.
    pub bk_metadata_service_uri: Option<String>,
    /// Broker configuration.
    pub config: Option<BrokerConfig>,
    /// A HorizontalPodAutoscaler for the StatefulSet; while set, it, not
    /// replicas, decides how many pods run.
    pub auto_scaling_policy: Option<AutoScalingPolicy>,
    /// Pod settings.
    pub pod: Option<PodSpec>,
    /// How the StatefulSet rolls out a change.
    pub update_strategy: Option<UpdateStrategy>,
    /// Log level and format of the brokers; the image's conf/log4j2.yaml
    /// when absent.
    pub log_config: Option<LogConfig>,
    /// A PodMonitor for Prometheus (magnetar's own field).
    pub monitoring: Option<crate::common::Monitoring>,
    /// Mesh integration and external access.
    pub istio: Option<GatewayIstioSpec>,
    /// TLS served by the brokers themselves (6651, 8443) with a certificate
    /// of the user's, besides the mesh's mTLS.
    pub tls: Option<OwnTls>,
    /// Per-pod networking: a Service for each broker pod.
    pub networking: Option<BrokerNetworking>,
    /// Listeners the brokers advertise besides magnetar's `internal` (and,
    /// with external access, `external`): each binds its own container
    /// port and advertises a host formed per pod, for clients that look a
    /// topic up with that listener name (multi-cluster, per-pod Services).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub advertised_listeners: Vec<AdvertisedListener>,
    /// Labels for every object magnetar generates for this resource, not
    /// its pods (those take `pod.labels`); magnetar's own
    /// `app.kubernetes.io/*` keys are refused.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Merge patches applied to generated objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customization: Vec<Customization>,
}

/// Per-pod networking of the brokers.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerNetworking {
    /// A Service for each broker pod, named after the pod
    /// (`<name>-broker-<i>`), selecting that pod only.
    pub pod_service: Option<PodService>,
}

/// The per-pod Services of the brokers.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodService {
    /// Create the Services (default true once `podService` is given).
    #[serde(default = "enabled_by_default")]
    pub enabled: Option<bool>,
    /// Service type. Default ClusterIP.
    #[serde(rename = "type")]
    pub type_: Option<PodServiceType>,
    /// Annotations of each Service (a load balancer's settings, for example).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels of each Service, besides magnetar's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Ports besides the brokers' own (which every per-pod Service has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<k8s_openapi::api::core::v1::ServicePort>,
}

fn enabled_by_default() -> Option<bool> {
    Some(true)
}

/// Kubernetes Service types a per-pod Service may have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PodServiceType {
    #[default]
    ClusterIP,
    LoadBalancer,
    NodePort,
}

/// A listener the brokers advertise (Pulsar's `advertisedListeners` and
/// `bindAddresses`).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvertisedListener {
    /// The listener's name, which clients give in their lookups.
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// The host each broker advertises; `$(POD_NAME)` and
    /// `$(POD_NAMESPACE)` are replaced per pod, for example
    /// `$(POD_NAME).pulsar.svc.cluster.local` with per-pod Services.
    pub host_template: String,
    /// The protocols on this listener.
    pub protocols: Option<ListenerProtocols>,
}

/// Protocols of an advertised listener.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerProtocols {
    /// Pulsar's binary protocol.
    pub pulsar: Option<ListenerProtocol>,
    /// Kafka (KoP).
    pub kafka: Option<ListenerProtocol>,
}

/// One protocol of an advertised listener.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerProtocol {
    /// Serve it (default true).
    pub enabled: Option<bool>,
    /// The port the brokers bind.
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: Option<i32>,
    /// The port advertised to clients (default: containerPort).
    #[schemars(range(min = 1, max = 65535))]
    pub advertised_port: Option<i32>,
    /// `pulsar` (the default and the only scheme magnetar serves here: the
    /// mesh encrypts it between pods).
    pub scheme: Option<String>,
}

/// How per-broker external hostnames are formed (SPEC 3.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ServiceUrlGenerationPolicy {
    /// `<name>-<uid prefix>-<ordinal>.<domain>`: stable and unique per CR (default).
    #[default]
    NameUIDPrefix,
    /// `pb<ordinal>-<domain>`.
    OrdinalPrefix,
    /// `<name>-broker-<ordinal>.<domain>`.
    #[serde(rename = "FQDN")]
    Fqdn,
}

/// Which of Pulsar's load managers the brokers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LoadManagerType {
    /// Pulsar's extensible load manager (PIP-192) with its TransferShedder.
    ExtensibleLoadManager,
    /// Pulsar's modular load manager (Pulsar 4.0's default).
    ModularLoadManager,
    /// StreamNative's own; refused by magnetar, which runs Apache Pulsar.
    ShadowNamespaceLoadManager,
}

/// Broker configuration.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerConfig {
    /// Pulsar cluster name. Default: the PulsarBroker's name.
    pub cluster_name: Option<String>,
    /// Root domain that clients outside the cluster use.
    #[x_kube(validation = Rule::new("self.size() <= 200 && self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$')").message("advertisedDomain must be a lower-case DNS name with at least two labels, at most 200 characters, for example pulsar.example.com"))]
    pub advertised_domain: Option<String>,
    /// How per-broker external hostnames are formed: NameUIDPrefix (default),
    /// OrdinalPrefix or FQDN.
    #[serde(rename = "serviceURLGenerationPolicy")]
    pub service_url_generation_policy: Option<ServiceUrlGenerationPolicy>,
    /// Kafka, MQTT and AMQP protocol handlers.
    pub protocol_handlers: Option<ProtocolHandlers>,
    /// Enable Pulsar transactions.
    pub transaction_enabled: Option<bool>,
    /// The load manager (broker.conf loadManagerClassName, and the shedding
    /// strategy the extensible one needs).
    pub load_manager_type: Option<LoadManagerType>,
    /// Additional servlets the brokers load by name (broker.conf
    /// additionalServlets); their NAR files must be in the image's
    /// additionalServletDirectory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_servlets: Vec<String>,
    /// Advertise each broker's pod IP instead of its DNS name on the
    /// `internal` listener (and KoP's), for clients that cannot resolve the
    /// cluster's DNS names.
    #[serde(rename = "usePodIPAsAdvertisedAddress")]
    pub use_pod_ip_as_advertised_address: Option<bool>,
    /// Serve Pulsar's WebSocket API on the brokers' web port (broker.conf
    /// webSocketServiceEnabled).
    pub web_socket_service_enabled: Option<bool>,
    /// StreamNative's Message REST API (`/admin/rest/topics/v1/…` on the
    /// web port), which StreamNative's images serve: written to broker.conf
    /// under this name. Apache Pulsar's own REST producer (`/topics/…`) is
    /// always on and needs no switch.
    pub pulsar_rest_messaging_service_enabled: Option<bool>,
    /// Pulsar's authentication of clients (JWT, TLS certificates).
    pub authentication: Option<Authentication>,
    /// Pulsar's authorization: super-user and proxy roles.
    pub authorization: Option<BrokerAuthorization>,
    /// The credentials of the brokers' internal client.
    pub client_auth: Option<ClientAuth>,
    /// Pulsar Functions. magnetar runs no functions worker, so only the
    /// off switch StreamNative's Oxia example writes is accepted.
    pub function: Option<FunctionConfig>,
    /// Extra broker.conf entries. Keys that begin with PULSAR_PREFIX_ are
    /// passed as environment variables unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

/// Protocol handlers of the broker.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolHandlers {
    /// Kafka on Pulsar.
    pub kop: Option<KopSpec>,
    /// MQTT on Pulsar.
    pub mop: Option<ProxiedHandler>,
    /// AMQP on Pulsar.
    pub aop: Option<ProxiedHandler>,
}

/// Kafka on Pulsar.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KopSpec {
    /// Turn the Kafka protocol handler on.
    pub enabled: Option<bool>,
    /// TLS of the Kafka listener at the broker.
    pub tls: Option<KopTls>,
}

/// TLS of the Kafka listener.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.enabled) || !self.enabled || (has(self.certSecretName) && self.certSecretName != '')").message("kop.tls.certSecretName is required when kop.tls.enabled is true: name the Secret with the broker's keystore").field_path(".certSecretName"))]
#[x_kube(validation = Rule::new("!has(self.enabled) || !self.enabled || (has(self.passwordSecretRef) && self.passwordSecretRef.name != '' && self.passwordSecretRef.key != '')").message("kop.tls.passwordSecretRef is required when kop.tls.enabled is true: give the name and key of the Secret holding the keystore password").field_path(".passwordSecretRef"))]
pub struct KopTls {
    /// Serve TLS on the Kafka listener.
    pub enabled: Option<bool>,
    /// Secret with the certificate and its keystore (cert-manager layout).
    pub cert_secret_name: Option<String>,
    /// Trust the certificate's CA for the broker's own clients.
    pub trust_certs_enabled: Option<bool>,
    /// The Secret key holding the keystore password; required when enabled.
    pub password_secret_ref: Option<SecretKeyRef>,
}

/// A key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// A protocol handler that may also run its proxy.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxiedHandler {
    /// Turn the protocol handler on.
    pub enabled: Option<bool>,
    /// Run the handler's proxy inside each broker (MoP 5682, AoP 5683): it
    /// looks up the topic's owner and forwards to it, so a connection that
    /// lands on any broker reaches the right one. Default: on when the
    /// broker has external access through istio.gateway (the gateway spreads
    /// connections over all brokers), off otherwise. false is refused with
    /// a gateway and more than one broker.
    pub proxy_enabled: Option<bool>,
}

/// Pulsar Functions (StreamNative's `config.function`, reduced to its off
/// switches: magnetar runs no functions worker nor Function Mesh).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.enabled) || !self.enabled").message("function.enabled: true is not supported: magnetar runs no Pulsar Functions worker; remove it or set false").field_path(".enabled"))]
pub struct FunctionConfig {
    /// Run the functions worker in the brokers. Only false: magnetar does
    /// not run one (broker.conf functionsWorkerEnabled=false).
    pub enabled: Option<bool>,
    /// Function Mesh settings.
    pub mesh: Option<FunctionMeshConfig>,
}

/// Function Mesh settings (only the package upload switch, off).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.uploadEnabled) || !self.uploadEnabled").message("function.mesh.uploadEnabled: true is not supported: magnetar runs no Function Mesh; remove it or set false").field_path(".uploadEnabled"))]
pub struct FunctionMeshConfig {
    /// Upload function packages. Only false: magnetar runs no Function Mesh.
    pub upload_enabled: Option<bool>,
}

/// How a StatefulSet rolls out a change.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// Only pods with an ordinal at or above this are updated (a canary of
    /// the highest ordinals); 0, the default, updates every pod.
    #[schemars(range(min = 0))]
    pub partition: Option<i32>,
    /// Old revisions the StatefulSet keeps for rollback. Default 3.
    #[schemars(range(min = 1))]
    pub revision_history_limit: Option<i32>,
}
