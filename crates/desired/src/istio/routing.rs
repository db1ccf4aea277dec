//! External access through the Istio ingress gateway (SPEC 3.4, 3.5):
//! the Gateway, VirtualServices and ServiceEntries of a broker (whose
//! per-broker Services `components::broker` builds), and the Gateway and VirtualService of a proxy.
//!
//! Every host and port comes from [`BrokerListeners`] and its
//! [`HostPattern`], the same table the workload
//! and the advertised listeners read, so routing cannot disagree with them.

use magnetar_api::PulsarBroker;
use magnetar_api::istio::{GatewaySpec as GatewayConfig, GatewayTlsMode};

use super::types::*;
use crate::hosts::HostPattern;
use crate::listeners::{BrokerListeners, Protocol, ProxyListeners, Route};
use crate::names::{self, Component};
use crate::{BuildContext, Object, Owner};

/// One VirtualService (or set of Gateway API routes): its hosts and the
/// Service its routes go to.
pub(crate) struct Binding {
    /// The destination Service's name, and the routes' name.
    pub(crate) name: String,
    /// Distinguishes this binding's Gateway servers (`main`, `b0`, ...).
    pub(crate) label: String,
    pub(crate) hosts: Vec<String>,
    /// FQDN of the destination Service.
    pub(crate) destination: String,
}

/// Everything a broker with external access needs besides its workload.
pub fn broker(res: &PulsarBroker, listeners: &BrokerListeners, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let Some(ext) = &listeners.external else {
        return Vec::new();
    };
    let routes = listeners.routes();
    let ordinals: Vec<i32> = (0..crate::components::broker::max_brokers(res)).collect();
    let c = Component::Broker;
    let bindings = broker_bindings(&ext.hosts, &ordinals, owner, ctx);
    let mut out = gateway_and_routes(ext.gateway, &gateway_name(c, owner), &routes, &bindings, c, owner);
    if ext.gateway.mesh_internal_hosts() {
        out.extend(ordinals.iter().map(|&i| service_entry(i, &ext.hosts.host(i), &routes, owner)));
    }
    out
}

/// `<n>-broker-gateway`, `<n>-proxy-gateway`: the Gateway magnetar creates
/// (Istio's or the Gateway API's).
pub fn gateway_name(component: Component, owner: &Owner) -> String {
    format!("{}-gateway", component.object_name(&owner.name))
}

/// The main host to the `<n>-broker` Service, and each per-broker host to
/// its own `<n>-broker-<i>` Service.
fn broker_bindings(hosts: &HostPattern, ordinals: &[i32], owner: &Owner, ctx: &BuildContext) -> Vec<Binding> {
    let main = Component::Broker.object_name(&owner.name);
    let mut v = vec![Binding {
        label: "main".into(),
        hosts: vec![hosts.main.clone()],
        destination: ctx.service_host(&main, &owner.namespace),
        name: main,
    }];
    v.extend(ordinals.iter().map(|&i| {
        let pod = names::broker_pod_name(&owner.name, i);
        Binding {
            label: format!("b{i}"),
            hosts: vec![hosts.host(i)],
            destination: ctx.service_host(&pod, &owner.namespace),
            name: pod,
        }
    }));
    v
}

/// The Gateway (unless existing ones are named) and one VirtualService per
/// binding.
fn gateway_and_routes(
    gw: &GatewayConfig,
    gateway_name: &str,
    routes: &[Route],
    bindings: &[Binding],
    component: Component,
    owner: &Owner,
) -> Vec<Object> {
    if let Some(api) = gw.gateway_api.as_ref() {
        return crate::gateway_api::objects(api, gw, gateway_name, routes, bindings, component, owner);
    }
    let existing: Vec<String> = gw.gateways.iter().filter(|g| !g.is_empty()).cloned().collect();
    let mut out = Vec::new();
    let refs = if existing.is_empty() {
        let spec = GatewaySpec { selector: gw.selector(), servers: servers(gw, routes, bindings) };
        out.push(Gateway::object(owner, gateway_name, component, spec));
        vec![gateway_name.to_string()]
    } else {
        existing
    };
    let mode = gw.tls_mode();
    out.extend(bindings.iter().map(|b| virtual_service(b, routes, &refs, mode, component, owner)));
    out
}

/// SIMPLE: one server per host group per port, so Istio builds one SNI
/// filter chain per host and routes terminated TLS by host. PASSTHROUGH: one
/// server per port listing every host; the VirtualServices route by SNI.
/// AMQP is terminated at the gateway in both modes (AoP has no TLS
/// listener), so its servers are SIMPLE ones in PASSTHROUGH mode too.
fn servers(gw: &GatewayConfig, routes: &[Route], bindings: &[Binding]) -> Vec<Server> {
    match gw.tls_mode() {
        GatewayTlsMode::Simple => routes
            .iter()
            .flat_map(|r| bindings.iter().map(move |b| simple_server(r, b, gw.cert_secret_name())))
            .collect(),
        GatewayTlsMode::Passthrough => {
            let hosts: Vec<String> = bindings.iter().flat_map(|b| b.hosts.iter().cloned()).collect();
            routes
                .iter()
                .flat_map(|r| {
                    // A route the gateway terminates (AMQP) gets SIMPLE servers
                    // even here, one per host group as in SIMPLE mode.
                    let servers: Vec<Server> = if r.terminated {
                        bindings.iter().map(|b| simple_server(r, b, gw.cert_secret_name())).collect()
                    } else {
                        vec![passthrough_server(r, &hosts)]
                    };
                    servers
                })
                .collect()
        }
    }
}

fn simple_server(route: &Route, binding: &Binding, credential: Option<&str>) -> Server {
    let protocol = if route.protocol == Protocol::Http { PortProtocol::Https } else { PortProtocol::Tls };
    Server {
        port: ServerPort {
            number: route.gateway_port,
            protocol,
            name: format!("{}-{}-{}", protocol.prefix(), route.gateway_port, binding.label),
        },
        hosts: binding.hosts.clone(),
        tls: Some(ServerTls { mode: ServerTlsMode::Simple, credential_name: credential.map(str::to_string) }),
    }
}

fn passthrough_server(route: &Route, hosts: &[String]) -> Server {
    Server {
        port: ServerPort {
            number: route.gateway_port,
            protocol: PortProtocol::Tls,
            name: format!("tls-{}", route.gateway_port),
        },
        hosts: hosts.to_vec(),
        tls: Some(ServerTls { mode: ServerTlsMode::Passthrough, credential_name: None }),
    }
}

/// SIMPLE: `tcp` routes by gateway port, and an `http` route for HTTPS.
/// PASSTHROUGH: `tls` routes by port and SNI (the binding's own hosts),
/// except AMQP, which the gateway terminates: a `tcp` route, as in SIMPLE.
fn virtual_service(
    binding: &Binding,
    routes: &[Route],
    gateways: &[String],
    mode: GatewayTlsMode,
    component: Component,
    owner: &Owner,
) -> Object {
    let mut spec =
        VirtualServiceSpec { hosts: binding.hosts.clone(), gateways: gateways.to_vec(), ..Default::default() };
    for r in routes {
        let route = vec![RouteDestination::to(&binding.destination, r.target.port)];
        match mode {
            GatewayTlsMode::Simple if r.protocol == Protocol::Http => {
                spec.http.push(HttpRoute { matches: vec![PortMatch { port: r.gateway_port }], route })
            }
            // Terminated at the gateway (every route in SIMPLE mode, AMQP in
            // PASSTHROUGH mode): plaintext TCP onwards.
            _ if r.terminated => spec.tcp.push(TcpRoute { matches: vec![PortMatch { port: r.gateway_port }], route }),
            _ => spec.tls.push(TlsRoute {
                matches: vec![TlsMatch { port: r.gateway_port, sni_hosts: binding.hosts.clone() }],
                route,
            }),
        }
    }
    VirtualService::object(owner, &binding.name, component, spec)
}

/// Lets mesh clients in the namespace reach broker `ordinal` by the name a
/// lookup hands out; endpoints are the pod's IP (workloadSelector), so
/// mTLS/HBONE apply. Each port is the one the client dials (6651, 443,
/// 9093, 8883: the gateway's) with `targetPort` the broker's own TLS
/// listener behind it (6653, 8443, 9095, 8883), so that a client which
/// follows a lookup lands on the listener that speaks what it sends.
///
/// Only routes whose target serves TLS are listed: behind the others (SIMPLE
/// mode, AMQP) the gateway terminates TLS, and a mesh client would send TLS
/// to a plaintext port. Every listed port is therefore TLS or HTTPS, which
/// Istio routes by SNI; that is also why analyzer IST0134
/// (ServiceEntryAddressesRequired), which fires for a port whose protocol is
/// TCP or unset on a ServiceEntry without addresses, has nothing to report.
///
/// Istio takes an endpoint's port from the selected pod's container port of
/// the same name before `targetPort` (pilot's serviceentry conversion and
/// ambient's constructServices), so each port is named after its target
/// container port: both rules give the same answer.
fn service_entry(ordinal: i32, host: &str, routes: &[Route], owner: &Owner) -> Object {
    let spec = ServiceEntrySpec {
        hosts: vec![host.to_string()],
        location: Location::MeshInternal,
        resolution: Resolution::Static,
        ports: service_entry_ports(routes),
        workload_selector: Some(ServiceEntryWorkloadSelector {
            labels: crate::components::broker::pod_selector(owner, ordinal),
        }),
        export_to: vec![".".into()],
    };
    ServiceEntry::object(owner, names::broker_pod_name(&owner.name, ordinal), Component::Broker, spec)
}

/// Client-facing ports of the routes whose target serves TLS (see
/// [`service_entry`]).
fn service_entry_ports(routes: &[Route]) -> Vec<ServiceEntryPort> {
    routes
        .iter()
        .filter(|r| matches!(r.target.app_protocol, "tls" | "https"))
        .map(|r| ServiceEntryPort {
            number: r.gateway_port,
            protocol: PortProtocol::from_app_protocol(r.target.app_protocol),
            name: r.target.name.to_string(),
            target_port: Some(r.target.port),
        })
        .collect()
}

/// Gateway `<n>-proxy-gateway` and VirtualService `<n>-proxy` for the
/// proxy's DNS names, all on one server per port (one certificate covers
/// them; the proxy has no per-instance hosts).
pub fn proxy(listeners: &ProxyListeners, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let Some(ext) = &listeners.external else {
        return Vec::new();
    };
    let c = Component::Proxy;
    let name = c.object_name(&owner.name);
    let binding = Binding {
        label: "proxy".into(),
        hosts: ext.hosts.clone(),
        destination: ctx.service_host(&name, &owner.namespace),
        name: name.clone(),
    };
    gateway_and_routes(ext.gateway, &gateway_name(c, owner), &listeners.routes(), &[binding], c, owner)
}
