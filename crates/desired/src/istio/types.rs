//! Typed Istio objects: exactly the fields magnetar emits.
//!
//! Every field exists, with the same shape, in the CRD schemas of Istio 1.24.2
//! and of the newest release (checked against 1.32.0), so the objects pass
//! strict field validation on both. Empty lists, maps and `None` are left out
//! so that server-side apply does not claim fields magnetar does not set.
//! AuthorizationPolicy sources use `principals`: the newer `serviceAccounts`
//! field is absent from Istio 1.24's CRD.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

macro_rules! istio_kind {
    ($(#[$meta:meta])* $kind:ident, $spec:ty, $group:literal, $version:literal, $plural:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $kind {
            pub api_version: String,
            pub kind: String,
            pub metadata: ObjectMeta,
            pub spec: $spec,
        }

        impl k8s_openapi::Resource for $kind {
            const API_VERSION: &'static str = concat!($group, "/", $version);
            const GROUP: &'static str = $group;
            const KIND: &'static str = stringify!($kind);
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::Metadata for $kind {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl $kind {
            pub fn new(metadata: ObjectMeta, spec: $spec) -> Self {
                use k8s_openapi::Resource;
                $kind { api_version: Self::API_VERSION.into(), kind: Self::KIND.into(), metadata, spec }
            }

            /// The object `name` of `component` as the build step emits it.
            pub fn object(
                owner: &crate::Owner,
                name: impl Into<String>,
                component: crate::names::Component,
                spec: $spec,
            ) -> crate::Object {
                crate::Object::typed(&Self::new(owner.metadata(name, component), spec))
            }
        }
    };
}

/// The same shape serves the Gateway API's kinds ([`crate::gateway_api::types`]).
pub(crate) use istio_kind as crd_kind;

istio_kind!(
    /// security.istio.io/v1 PeerAuthentication.
    PeerAuthentication, PeerAuthenticationSpec, "security.istio.io", "v1", "peerauthentications"
);
istio_kind!(
    /// security.istio.io/v1 AuthorizationPolicy.
    AuthorizationPolicy, AuthorizationPolicySpec, "security.istio.io", "v1", "authorizationpolicies"
);
istio_kind!(
    /// networking.istio.io/v1 DestinationRule.
    DestinationRule, DestinationRuleSpec, "networking.istio.io", "v1", "destinationrules"
);
istio_kind!(
    /// networking.istio.io/v1 Gateway.
    Gateway, GatewaySpec, "networking.istio.io", "v1", "gateways"
);
istio_kind!(
    /// networking.istio.io/v1 VirtualService.
    VirtualService, VirtualServiceSpec, "networking.istio.io", "v1", "virtualservices"
);
istio_kind!(
    /// networking.istio.io/v1 ServiceEntry.
    ServiceEntry, ServiceEntrySpec, "networking.istio.io", "v1", "serviceentries"
);

fn is_empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

// ---------------------------------------------------------------- security

/// `selector` of PeerAuthentication and AuthorizationPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    pub match_labels: BTreeMap<String, String>,
}

/// PeerAuthentication `mtls.mode` (and port-level mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerMtlsMode {
    Strict,
    Permissive,
    Disable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerMtls {
    pub mode: PeerMtlsMode,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    pub selector: Option<WorkloadSelector>,
    pub mtls: Option<PeerMtls>,
    /// Keyed by port number (as a string; the CRD requires 1..=65535).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_mtls: BTreeMap<String, PeerMtls>,
}

/// AuthorizationPolicy `action`: magnetar only writes ALLOW policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizationAction {
    Allow,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    pub selector: Option<WorkloadSelector>,
    pub action: AuthorizationAction,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub rules: Vec<Rule>,
}

/// An ALLOW rule; L4 only (`source` and `ports`) so that ztunnel enforces it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub from: Vec<RuleFrom>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub to: Vec<RuleTo>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleFrom {
    pub source: Source,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub principals: Vec<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub ip_blocks: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleTo {
    pub operation: Operation,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Destination (container) ports, as strings.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub ports: Vec<String>,
}

// ---------------------------------------------------------------- networking

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficPolicy {
    pub tls: ClientTls,
}

/// DestinationRule `trafficPolicy.tls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    IstioMutual,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientTls {
    pub mode: ClientTlsMode,
}

/// Protocol of a Gateway server port or a ServiceEntry port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PortProtocol {
    Tcp,
    Tls,
    Http,
    Https,
}

impl PortProtocol {
    /// From a Service port's `appProtocol` (`tcp`, `tls`, `http`, `https`);
    /// anything else is opaque TCP.
    pub fn from_app_protocol(app_protocol: &str) -> Self {
        match app_protocol {
            "tls" => Self::Tls,
            "http" => Self::Http,
            "https" => Self::Https,
            _ => Self::Tcp,
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewaySpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub servers: Vec<Server>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub port: ServerPort,
    pub hosts: Vec<String>,
    pub tls: Option<ServerTls>,
}

/// A Gateway port: the port of the ingress gateway's Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerPort {
    pub number: i32,
    pub protocol: PortProtocol,
    /// Unique within the Gateway (Istio names routes after it).
    pub name: String,
}

/// Gateway server `tls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    Simple,
    Passthrough,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTls {
    pub mode: ServerTlsMode,
    pub credential_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VirtualServiceSpec {
    #[serde(default, skip_serializing_if = "is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub gateways: Vec<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub http: Vec<HttpRoute>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub tls: Vec<TlsRoute>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub tcp: Vec<TcpRoute>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    #[serde(rename = "match", default, skip_serializing_if = "is_empty")]
    pub matches: Vec<PortMatch>,
    pub route: Vec<RouteDestination>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpRoute {
    #[serde(rename = "match", default, skip_serializing_if = "is_empty")]
    pub matches: Vec<PortMatch>,
    pub route: Vec<RouteDestination>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsRoute {
    #[serde(rename = "match")]
    pub matches: Vec<TlsMatch>,
    pub route: Vec<RouteDestination>,
}

/// Match on the gateway port (HTTP and TCP routes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortMatch {
    pub port: i32,
}

/// Match on the gateway port and the SNI (TLS routes; sniHosts is required).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsMatch {
    pub port: i32,
    pub sni_hosts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteDestination {
    pub destination: Destination,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    /// A Service FQDN, `<svc>.<ns>.svc.<cluster domain>`.
    pub host: String,
    pub port: PortSelector,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortSelector {
    pub number: i32,
}

impl RouteDestination {
    pub fn to(host: &str, port: i32) -> Self {
        RouteDestination { destination: Destination { host: host.to_string(), port: PortSelector { number: port } } }
    }
}

/// ServiceEntry `location`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    MeshInternal,
}

/// ServiceEntry `resolution`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    Static,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    pub hosts: Vec<String>,
    pub location: Location,
    pub resolution: Resolution,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub ports: Vec<ServiceEntryPort>,
    pub workload_selector: Option<ServiceEntryWorkloadSelector>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub export_to: Vec<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntryPort {
    /// The port clients connect to (what a lookup hands out).
    pub number: i32,
    pub protocol: PortProtocol,
    pub name: String,
    /// The port on the selected pod; unset means `number`.
    pub target_port: Option<i32>,
}

/// ServiceEntry `workloadSelector` (key `labels`, unlike the policies).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceEntryWorkloadSelector {
    pub labels: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialize_as_istio_spells_them() {
        let j = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        assert_eq!(j(serde_json::json!(PeerMtlsMode::Permissive)), "PERMISSIVE");
        assert_eq!(j(serde_json::json!(ClientTlsMode::IstioMutual)), "ISTIO_MUTUAL");
        assert_eq!(j(serde_json::json!(Location::MeshInternal)), "MESH_INTERNAL");
        assert_eq!(j(serde_json::json!(PortProtocol::Https)), "HTTPS");
        assert_eq!(j(serde_json::json!(AuthorizationAction::Allow)), "ALLOW");
    }

    #[test]
    fn empty_fields_are_left_out() {
        let spec = VirtualServiceSpec { hosts: vec!["h".into()], ..Default::default() };
        assert_eq!(serde_json::to_string(&spec).unwrap(), r#"{"hosts":["h"]}"#);
        let rule = Rule { from: vec![], to: vec![RuleTo { operation: Operation { ports: vec!["1".into()] } }] };
        assert_eq!(serde_json::to_string(&rule).unwrap(), r#"{"to":[{"operation":{"ports":["1"]}}]}"#);
    }

    #[test]
    fn objects_carry_api_version_and_kind() {
        let pa = PeerAuthentication::new(ObjectMeta::default(), PeerAuthenticationSpec::default());
        let v = serde_json::to_value(&pa).unwrap();
        assert_eq!(v["apiVersion"], "security.istio.io/v1");
        assert_eq!(v["kind"], "PeerAuthentication");
    }
}
