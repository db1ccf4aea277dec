//! External access through the Kubernetes Gateway API (issue 12): the same
//! hosts, ports and destinations as the Istio Gateway and VirtualServices
//! of [`crate::istio::routing`], as a Gateway (or the user's Gateways) with
//! one TLSRoute per host and TLS protocol and one HTTPRoute per host for
//! the web service when the gateway terminates TLS.
//!
//! Listeners: a route the gateway terminates gets one listener per host
//! (its certificate and, with Istio, one backend per terminating server);
//! a passthrough route gets one listener per port, and the TLSRoutes pick
//! their broker by SNI. No route crosses namespaces (every backend is a
//! Service beside the route), so no ReferenceGrant is needed; a shared
//! Gateway in another namespace admits the routes through its listeners'
//! `allowedRoutes`.

pub mod types;

use magnetar_api::istio::{GatewayApi, GatewaySpec as GatewayConfig};

use crate::istio::routing::Binding;
use crate::listeners::{Protocol, Route};
use crate::names::Component;
use crate::{Object, Owner};
use types::*;

/// Gateway API's limit of listeners on one Gateway.
pub const MAX_LISTENERS: usize = 64;

/// The Gateway (with `gatewayClassName`) and the routes of `bindings`.
pub(crate) fn objects(
    api: &GatewayApi,
    gw: &GatewayConfig,
    gateway_name: &str,
    routes: &[Route],
    bindings: &[Binding],
    component: Component,
    owner: &Owner,
) -> Vec<Object> {
    let mut out = Vec::new();
    if let Some(class) = api.gateway_class_name.as_deref() {
        let spec = GatewaySpec {
            gateway_class_name: class.to_string(),
            listeners: listeners(routes, bindings, gw.cert_secret_name()),
        };
        out.push(Gateway::object(owner, gateway_name, component, spec));
    }
    for b in bindings {
        for r in routes {
            let parents = parents(api, gateway_name, r, b);
            let hostnames = b.hosts.clone();
            let rules =
                vec![RouteRule { backend_refs: vec![BackendRef { name: b.name.clone(), port: r.target.port }] }];
            let name = format!("{}-{}", b.name, protocol_name(r.protocol));
            out.push(if is_http(r) {
                HTTPRoute::object(owner, name, component, HttpRouteSpec { parent_refs: parents, hostnames, rules })
            } else {
                TLSRoute::object(owner, name, component, TlsRouteSpec { parent_refs: parents, hostnames, rules })
            });
        }
    }
    out
}

/// How many listeners the created Gateway has: one per host for a route the
/// gateway terminates, one per port for a passthrough route.
pub fn listener_count(routes: &[Route], hosts: usize) -> usize {
    routes.iter().map(|r| if r.terminated { hosts } else { 1 }).sum()
}

fn listeners(routes: &[Route], bindings: &[Binding], certificate: Option<&str>) -> Vec<Listener> {
    let certificate_refs: Vec<SecretRef> = certificate.map(|n| SecretRef { name: n.to_string() }).into_iter().collect();
    let mut out = Vec::new();
    for r in routes {
        if !r.terminated {
            out.push(Listener {
                name: listener_name(r, None),
                hostname: None,
                port: r.gateway_port,
                protocol: "TLS".into(),
                tls: Some(ListenerTls { mode: "Passthrough".into(), certificate_refs: Vec::new() }),
            });
            continue;
        }
        for b in bindings {
            for host in &b.hosts {
                out.push(Listener {
                    name: listener_name(r, Some((b, host))),
                    hostname: Some(host.clone()),
                    port: r.gateway_port,
                    protocol: if is_http(r) { "HTTPS" } else { "TLS" }.into(),
                    tls: Some(ListenerTls { mode: "Terminate".into(), certificate_refs: certificate_refs.clone() }),
                });
            }
        }
    }
    out
}

/// `tls-6651` (passthrough), `tls-9093-b0`, `https-443-main` (terminated,
/// per host; a binding with several hosts numbers them).
fn listener_name(r: &Route, binding: Option<(&Binding, &String)>) -> String {
    let kind = if is_http(r) { "https" } else { "tls" };
    match binding {
        None => format!("{kind}-{}", r.gateway_port),
        Some((b, host)) => {
            let i = b.hosts.iter().position(|h| h == host).unwrap_or(0);
            let suffix = if i == 0 { String::new() } else { format!("-{i}") };
            format!("{kind}-{}-{}{suffix}", r.gateway_port, b.label)
        }
    }
}

/// The created Gateway's listener for this route and host (its
/// `sectionName`), or each of the user's Gateways on the route's port.
fn parents(api: &GatewayApi, gateway_name: &str, r: &Route, b: &Binding) -> Vec<ParentRef> {
    if api.gateway_class_name.is_some() {
        let names: Vec<String> = if r.terminated {
            b.hosts.iter().map(|h| listener_name(r, Some((b, h)))).collect()
        } else {
            vec![listener_name(r, None)]
        };
        return names
            .into_iter()
            .map(|section| ParentRef { name: gateway_name.into(), section_name: Some(section), ..Default::default() })
            .collect();
    }
    api.parent_refs
        .iter()
        .map(|p| ParentRef {
            name: p.name.clone(),
            namespace: p.namespace.clone().filter(|n| !n.is_empty()),
            section_name: None,
            port: Some(r.gateway_port),
        })
        .collect()
}

/// The web service behind a gateway that terminates TLS: an HTTPRoute.
/// Everything else, HTTPS passed through included, is a TLSRoute.
fn is_http(r: &Route) -> bool {
    r.protocol == Protocol::Http && r.terminated
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Pulsar => "pulsar",
        Protocol::Http => "web",
        Protocol::Kafka => "kafka",
        Protocol::Mqtt => "mqtt",
        Protocol::Amqp => "amqp",
    }
}

/// Namespace and ServiceAccount of the gateway's pods, for the
/// AuthorizationPolicies: what the user set, else Istio's defaults — its
/// ingress gateway, or for a Gateway API Gateway the Deployment istiod
/// creates for it (`<gateway>-<class>` in the Gateway's namespace).
pub fn gateway_identity(gw: &GatewayConfig, gateway_name: &str, own_namespace: &str) -> (String, String) {
    let set = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let Some(api) = gw.gateway_api.as_ref() else {
        return (gw.namespace().to_string(), gw.service_account().to_string());
    };
    let (default_ns, default_sa) = match (api.gateway_class_name.as_deref(), api.parent_refs.first()) {
        (Some(class), _) => (own_namespace.to_string(), format!("{gateway_name}-{class}")),
        (None, Some(p)) => {
            (set(&p.namespace).unwrap_or_else(|| own_namespace.to_string()), format!("{}-istio", p.name))
        }
        (None, None) => (own_namespace.to_string(), format!("{gateway_name}-istio")),
    };
    (set(&gw.namespace).unwrap_or(default_ns), set(&gw.service_account).unwrap_or(default_sa))
}

/// What the Gateway API implementation says of a component's routes, from
/// their `status.parents[].conditions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteReport {
    /// Every route accepted by every parent, its references resolved.
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

pub const REASON_ROUTES_ACCEPTED: &str = "RoutesAccepted";
pub const REASON_ROUTE_NOT_ACCEPTED: &str = "RouteNotAccepted";
pub const REASON_ROUTES_NOT_REPORTED: &str = "RoutesNotReported";

/// The report over `routes` (TLSRoutes and HTTPRoutes as JSON): the first
/// route a parent refused (`Accepted` or `ResolvedRefs` False) with the
/// implementation's reason and message; else, routes no implementation has
/// reported on yet; else accepted.
pub fn route_report(routes: &[serde_json::Value]) -> RouteReport {
    if routes.is_empty() {
        return RouteReport {
            ok: false,
            reason: REASON_ROUTES_NOT_REPORTED,
            message: "the routes are not applied yet".into(),
        };
    }
    let mut unreported = Vec::new();
    for r in routes {
        let name =
            format!("{}/{}", r["kind"].as_str().unwrap_or("Route"), r["metadata"]["name"].as_str().unwrap_or(""));
        let parents = r["status"]["parents"].as_array().map(Vec::as_slice).unwrap_or_default();
        if parents.is_empty() {
            unreported.push(name);
            continue;
        }
        for p in parents {
            for c in p["conditions"].as_array().into_iter().flatten() {
                let t = c["type"].as_str().unwrap_or_default();
                if (t == "Accepted" || t == "ResolvedRefs") && c["status"] == "False" {
                    let gateway = p["parentRef"]["name"].as_str().unwrap_or("?");
                    return RouteReport {
                        ok: false,
                        reason: REASON_ROUTE_NOT_ACCEPTED,
                        message: format!(
                            "{name}: Gateway {gateway} reports {t}=False ({}): {}",
                            c["reason"].as_str().unwrap_or(""),
                            c["message"].as_str().unwrap_or("")
                        ),
                    };
                }
            }
        }
    }
    if !unreported.is_empty() {
        unreported.sort();
        return RouteReport {
            ok: false,
            reason: REASON_ROUTES_NOT_REPORTED,
            message: format!(
                "no Gateway API implementation has reported on {} route(s) yet (first: {}): check that a controller serves the Gateway's class",
                unreported.len(),
                unreported[0]
            ),
        };
    }
    RouteReport {
        ok: true,
        reason: REASON_ROUTES_ACCEPTED,
        message: format!(
            "the Gateway API implementation accepted all {} route(s) and resolved their backends",
            routes.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(name: &str, conditions: serde_json::Value) -> serde_json::Value {
        json!({"kind": "TLSRoute", "metadata": {"name": name},
               "status": {"parents": [{"parentRef": {"name": "gw"}, "conditions": conditions}]}})
    }

    #[test]
    fn route_report_names_the_first_refusal_then_the_silent_routes() {
        let ok = json!([{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "True"}]);
        let all = route_report(&[route("a", ok.clone()), route("b", ok.clone())]);
        assert_eq!((all.ok, all.reason), (true, REASON_ROUTES_ACCEPTED));
        let bad = json!([{"type": "Accepted", "status": "True"},
                         {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound", "message": "no Service"}]);
        let r = route_report(&[route("a", ok.clone()), route("b", bad)]);
        assert_eq!((r.ok, r.reason), (false, REASON_ROUTE_NOT_ACCEPTED));
        assert_eq!(r.message, "TLSRoute/b: Gateway gw reports ResolvedRefs=False (BackendNotFound): no Service");
        let silent = route_report(&[route("a", ok), json!({"kind": "HTTPRoute", "metadata": {"name": "w"}})]);
        assert_eq!((silent.ok, silent.reason), (false, REASON_ROUTES_NOT_REPORTED));
        assert!(silent.message.contains("HTTPRoute/w"), "{}", silent.message);
        assert!(!route_report(&[]).ok, "no route is no accepted route");
    }
}
