//! Typed Gateway API objects (gateway.networking.k8s.io/v1): exactly the
//! fields magnetar emits. Every field exists, with the same shape, in the
//! standard channel's CRDs of Gateway API 1.5 and later (TLSRoute became v1
//! in 1.5); `crates/testenv/tests/render_apply.rs` applies them to those
//! CRDs with strict field validation and their CEL rules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::istio::types::crd_kind;

pub const GROUP: &str = "gateway.networking.k8s.io";

crd_kind!(
    /// gateway.networking.k8s.io/v1 Gateway.
    Gateway, GatewaySpec, "gateway.networking.k8s.io", "v1", "gateways"
);
crd_kind!(
    /// gateway.networking.k8s.io/v1 TLSRoute (standard channel since 1.5).
    TLSRoute, TlsRouteSpec, "gateway.networking.k8s.io", "v1", "tlsroutes"
);
crd_kind!(
    /// gateway.networking.k8s.io/v1 HTTPRoute.
    HTTPRoute, HttpRouteSpec, "gateway.networking.k8s.io", "v1", "httproutes"
);

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    pub gateway_class_name: String,
    pub listeners: Vec<Listener>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub name: String,
    pub hostname: Option<String>,
    pub port: i32,
    /// `TLS` or `HTTPS`.
    pub protocol: String,
    pub tls: Option<ListenerTls>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` or `Passthrough`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_refs: Vec<SecretRef>,
}

/// A Secret in the Gateway's namespace (group "" and kind Secret by default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub name: String,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    pub name: String,
    pub namespace: Option<String>,
    pub section_name: Option<String>,
    pub port: Option<i32>,
}

/// A Service in the route's namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    pub name: String,
    pub port: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteSpec {
    pub parent_refs: Vec<ParentRef>,
    pub hostnames: Vec<String>,
    pub rules: Vec<RouteRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    pub parent_refs: Vec<ParentRef>,
    pub hostnames: Vec<String>,
    pub rules: Vec<RouteRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    pub backend_refs: Vec<BackendRef>,
}
