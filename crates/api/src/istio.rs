//! `spec.istio` of components and of the coordinator (SPEC 1.6, 1.7).

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// How pods join the mesh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneMode {
    /// An Envoy sidecar in every pod (pods run 2/2).
    #[default]
    Sidecar,
    /// ztunnel on every node; no sidecar (pods run 1/1).
    Ambient,
}

impl DataplaneMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sidecar => "sidecar",
            Self::Ambient => "ambient",
        }
    }
}

/// Peer authentication mode of a component's pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MtlsMode {
    /// Only mutual TLS is accepted (default).
    #[default]
    Strict,
    /// Mutual TLS and plaintext are accepted; AuthorizationPolicies still
    /// deny plaintext callers, whose identity is unknown.
    Permissive,
    /// Mutual TLS is off. Not allowed in ambient mode. No AuthorizationPolicy
    /// is generated (principals need mTLS).
    None,
}

/// How the ingress gateway handles TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GatewayTlsMode {
    /// TLS is terminated at the gateway with certSecretName (default).
    #[default]
    Simple,
    /// TLS passes through the gateway, routed by SNI, and ends at the broker.
    Passthrough,
}

/// Mutual TLS settings.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtlsSpec {
    /// strict (default), permissive or none.
    pub mode: Option<MtlsMode>,
}

/// Metrics scraping by a Prometheus that is not one of the cluster's peers.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Ambient mode: accept plaintext on the metrics port (port-level
    /// PERMISSIVE), for a Prometheus outside the mesh. Only the callers in
    /// allowFrom get through, except on ZooKeeper, whose metrics port
    /// serves nothing else and is then open to any caller. Default true.
    pub permissive: Option<bool>,
    /// Who may scrape the metrics port (brokers and proxies 8080, bookies
    /// and ZooKeeper 8000). On brokers, proxies and bookies that port is
    /// also the admin API, so without an entry here it stays closed to
    /// everyone but the cluster's own components. principals and namespaces
    /// need mTLS (a Prometheus in the mesh); a Prometheus outside the mesh
    /// sends plaintext and has only its address: use ipBlocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<AuthSource>,
}

/// An extra ALLOW rule for the component's AuthorizationPolicy (L4 only, so
/// that ztunnel enforces it in ambient mode too).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthRule {
    /// Callers; the rule matches any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_source: Vec<AuthSource>,
    /// Destinations; the rule matches any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_operation: Vec<AuthOperation>,
}

/// A caller of an AuthorizationPolicy rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSource {
    /// Peer identities, `<trustDomain>/ns/<namespace>/sa/<serviceAccount>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// Namespaces of the peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Source IP blocks (CIDR or single IP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_blocks: Vec<String>,
}

/// The destination of an AuthorizationPolicy rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthOperation {
    /// Destination ports, as strings ("6650").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

/// External access through the Istio ingress gateway.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.gateways) && size(self.gateways) > 0) || (has(self.gatewayAPI) && has(self.gatewayAPI.parentRefs) && size(self.gatewayAPI.parentRefs) > 0) || (has(self.tls) && has(self.tls.mode) && self.tls.mode == 'passthrough') || (has(self.tls) && has(self.tls.certSecretName) && self.tls.certSecretName != '')").message("tls.certSecretName is required when tls.mode is simple (the default): name the TLS secret in the gateway's namespace, or set tls.mode: passthrough").field_path(".tls"))]
#[x_kube(validation = Rule::new("!(has(self.meshInternalHosts) && self.meshInternalHosts) || (has(self.tls) && has(self.tls.mode) && self.tls.mode == 'passthrough')").message("meshInternalHosts needs tls.mode passthrough: with simple the broker's external listener is plaintext, so mesh clients that follow a lookup (TLS to port 6651) cannot use it; remove meshInternalHosts or set tls.mode: passthrough").field_path(".meshInternalHosts"))]
pub struct GatewaySpec {
    /// Labels of the ingress gateway pods. Default {istio: ingressgateway}.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Namespace the ingress gateway runs in. Default istio-system.
    pub namespace: Option<String>,
    /// ServiceAccount of the ingress gateway (its identity in
    /// AuthorizationPolicies). Default istio-ingressgateway-service-account.
    pub service_account: Option<String>,
    /// Existing Gateways (`name` or `namespace/name`) to bind the routes to
    /// instead of generating one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Generate a MESH_INTERNAL ServiceEntry per broker so that clients in the
    /// mesh reach a broker by the external name a lookup hands out, straight
    /// at the broker's TLS listener. Needs Istio DNS capture with address
    /// auto-allocation, and tls.mode passthrough (only then does the broker
    /// serve TLS itself). Default true with passthrough, false with simple.
    pub mesh_internal_hosts: Option<bool>,
    /// TLS at the gateway.
    pub tls: Option<GatewayTls>,
    /// Route through the Kubernetes Gateway API (TLSRoute, HTTPRoute)
    /// instead of Istio's Gateway and VirtualServices (docs/gateway-api.md).
    #[serde(rename = "gatewayAPI")]
    pub gateway_api: Option<GatewayApi>,
}

/// External access through Gateway API objects: either a Gateway magnetar
/// creates (`gatewayClassName`) or existing Gateways the routes attach to
/// (`parentRefs`).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.gatewayClassName) != (has(self.parentRefs) && size(self.parentRefs) > 0)").message("gatewayAPI needs exactly one of gatewayClassName (magnetar creates the Gateway) and parentRefs (attach to existing Gateways)"))]
pub struct GatewayApi {
    /// The GatewayClass of the Gateway magnetar creates in the component's
    /// namespace, for example istio.
    #[schemars(length(min = 1, max = 253))]
    pub gateway_class_name: Option<String>,
    /// Existing Gateways the routes attach to, each on the port of the
    /// protocol (the Gateway's listeners must allow routes from this
    /// namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub parent_refs: Vec<GatewayParentRef>,
}

/// An existing Gateway.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayParentRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Its namespace; the component's when absent.
    pub namespace: Option<String>,
}

/// TLS settings of the gateway.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayTls {
    /// simple (terminate at the gateway, default) or passthrough.
    pub mode: Option<GatewayTlsMode>,
    /// Secret with the certificate (tls.crt, tls.key), in the gateway's
    /// namespace for simple mode.
    pub cert_secret_name: Option<String>,
    /// Whether clients trust the certificate's CA (used by the toolset's
    /// client configuration).
    pub trust_certs_enabled: Option<bool>,
}

/// Settings every mesh block shares; implemented by the component blocks.
pub trait MeshSettings {
    fn enabled(&self) -> bool;
    fn dataplane_mode(&self) -> DataplaneMode;
    fn revision(&self) -> Option<&str>;
    fn trust_domain(&self) -> &str;
    fn mtls_mode(&self) -> MtlsMode;
    fn metrics_permissive(&self) -> bool;
    fn metrics_allow_from(&self) -> &[AuthSource];
    fn auth_rules(&self) -> &[AuthRule];
}

pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

macro_rules! mesh_block {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[serde_with::skip_serializing_none]
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
        #[serde(rename_all = "camelCase")]
        #[x_kube(validation = Rule::new("!(has(self.mtls) && has(self.mtls.mode) && self.mtls.mode == 'none' && has(self.dataplaneMode) && self.dataplaneMode == 'ambient')").message("mtls.mode none is not allowed with dataplaneMode ambient (ambient cannot disable mTLS): use strict or permissive").field_path(".mtls.mode"))]
        pub struct $name {
            /// Enrol this component in the mesh. Default false.
            pub enabled: Option<bool>,
            /// sidecar (default) or ambient.
            pub dataplane_mode: Option<DataplaneMode>,
            /// Istio revision for sidecar injection; empty or "default" means
            /// the default revision.
            pub revision: Option<String>,
            /// Trust domain of the mesh. Default cluster.local.
            pub trust_domain: Option<String>,
            /// Mutual TLS between the component's pods and their peers.
            pub mtls: Option<MtlsSpec>,
            /// Metrics scraping by a Prometheus that is not one of the
            /// cluster's components.
            pub metrics: Option<MetricsSpec>,
            /// Extra ALLOW rules for the component's AuthorizationPolicy.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub auth_rules: Vec<AuthRule>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl MeshSettings for $name {
            fn enabled(&self) -> bool { self.enabled.unwrap_or(false) }
            fn dataplane_mode(&self) -> DataplaneMode { self.dataplane_mode.unwrap_or_default() }
            fn revision(&self) -> Option<&str> {
                self.revision.as_deref().filter(|r| !r.is_empty() && *r != "default")
            }
            fn trust_domain(&self) -> &str {
                self.trust_domain.as_deref().filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TRUST_DOMAIN)
            }
            fn mtls_mode(&self) -> MtlsMode {
                self.mtls.as_ref().and_then(|m| m.mode).unwrap_or_default()
            }
            fn metrics_permissive(&self) -> bool {
                self.metrics.as_ref().and_then(|m| m.permissive).unwrap_or(true)
            }
            fn metrics_allow_from(&self) -> &[AuthSource] {
                self.metrics.as_ref().map(|m| m.allow_from.as_slice()).unwrap_or_default()
            }
            fn auth_rules(&self) -> &[AuthRule] { &self.auth_rules }
        }
    };
}

mesh_block! {
    /// Mesh integration of a ZooKeeper or BookKeeper cluster.
    IstioSpec {}
}

mesh_block! {
    /// Mesh integration of a broker or proxy, with optional external access.
    GatewayIstioSpec {
        /// External access through the Istio ingress gateway.
        pub gateway: Option<GatewaySpec>,
    }
}

impl GatewaySpec {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("istio-system")
    }
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().filter(|n| !n.is_empty()).unwrap_or("istio-ingressgateway-service-account")
    }
    pub fn selector(&self) -> BTreeMap<String, String> {
        if self.selector.is_empty() {
            BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())])
        } else {
            self.selector.clone()
        }
    }
    pub fn tls_mode(&self) -> GatewayTlsMode {
        self.tls.as_ref().and_then(|t| t.mode).unwrap_or_default()
    }
    pub fn cert_secret_name(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|t| t.cert_secret_name.as_deref()).filter(|s| !s.is_empty())
    }
    /// In SIMPLE mode the broker's external listener is plaintext (the
    /// gateway terminates TLS), so a mesh client following a lookup
    /// (`pulsar+ssl://<host>:6651`) would send TLS to a plaintext port:
    /// without the ServiceEntry its DNS name reaches the gateway like any
    /// other client's, which works.
    pub fn mesh_internal_hosts(&self) -> bool {
        self.mesh_internal_hosts.unwrap_or(self.tls_mode() == GatewayTlsMode::Passthrough)
    }
}
