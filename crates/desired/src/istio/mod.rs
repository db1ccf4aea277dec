//! Istio objects (SPEC 3.5): typed structs for what magnetar emits, the
//! security objects every enrolled component gets, and the gateway routing
//! of brokers and proxies.
//!
//! Every object lives in the CR's namespace and every workload selector
//! includes the component label, so no two generated policies select the
//! same pod. BookKeeper's auto-recovery pods get their own policies named
//! `<n>-bk-auto-recovery` (the Deployment's name, another kind).

pub mod routing;
pub mod security;
pub mod types;

use magnetar_api::istio::{GatewaySpec, MeshSettings};
use magnetar_api::{BookKeeperCluster, ZooKeeperCluster};

use crate::names::Component;
use crate::ports::*;
use crate::validate::{ValidBroker, ValidProxy};
use crate::{BuildContext, Object, Owner};
use security::Target;

fn enabled<M: MeshSettings>(istio: Option<&M>) -> Option<&M> {
    istio.filter(|m| m.enabled())
}

/// Who the gateway of `component` is (its pods' namespace and ServiceAccount).
fn identity(gw: &GatewaySpec, component: Component, owner: &Owner) -> (String, String) {
    crate::gateway_api::gateway_identity(gw, &routing::gateway_name(component, owner), &owner.namespace)
}

/// The main Service and the headless one.
fn both_services(component: Component, owner: &Owner) -> Vec<String> {
    vec![component.object_name(&owner.name), component.headless_name(&owner.name)]
}

pub fn zookeeper(res: &ZooKeeperCluster, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let Some(mesh) = enabled(res.spec.istio.as_ref()) else {
        return Vec::new();
    };
    let c = Component::ZooKeeper;
    let target = Target {
        component: c,
        ports: vec![ZK_CLIENT, ZK_QUORUM, ZK_ELECTION, ZK_ADMIN],
        metrics_port: ZK_ADMIN,
        // Prometheus metrics only: the admin server is off (docs/design.md).
        metrics_is_admin: false,
        gateway: None,
        // The leader check asks each server for its role (SPEC 4.4).
        operator_ports: vec![ZK_CLIENT, ZK_ADMIN],
        services: both_services(c, owner),
    };
    security::objects(mesh, &target, owner, ctx)
}

/// Bookies and, unless switched off, the auto-recovery pods (no Service, so
/// no DestinationRule; their HTTP/metrics port is 8000 like the bookies').
pub fn bookkeeper(res: &BookKeeperCluster, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let Some(mesh) = enabled(res.spec.istio.as_ref()) else {
        return Vec::new();
    };
    let c = Component::BookKeeper;
    let bookies = Target {
        component: c,
        ports: vec![BOOKIE, BOOKIE_HTTP],
        metrics_port: BOOKIE_HTTP,
        // BookKeeper's HTTP server: metrics and the bookie admin API.
        metrics_is_admin: true,
        gateway: None,
        operator_ports: vec![],
        services: both_services(c, owner),
    };
    let mut out = security::objects(mesh, &bookies, owner, ctx);
    let recovery_replicas = res.spec.auto_recovery.as_ref().and_then(|a| a.replicas).unwrap_or(1);
    if recovery_replicas > 0 {
        let recovery = Target {
            component: Component::AutoRecovery,
            ports: vec![BOOKIE_HTTP],
            metrics_port: BOOKIE_HTTP,
            metrics_is_admin: true,
            gateway: None,
            operator_ports: vec![],
            services: vec![],
        };
        out.extend(security::objects(mesh, &recovery, owner, ctx));
    }
    out
}

pub fn broker(valid: &ValidBroker, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let (res, listeners) = (valid.resource, &valid.listeners);
    let Some(mesh) = enabled(res.spec.istio.as_ref()) else {
        return Vec::new();
    };
    let c = Component::Broker;
    let gateway_ports = listeners.routes().iter().map(|r| r.target.port).collect();
    let target = Target {
        component: c,
        ports: listeners.container_ports().iter().map(|p| p.port).collect(),
        metrics_port: HTTP,
        // Pulsar's web service: metrics and the admin REST API.
        metrics_is_admin: true,
        gateway: listeners.external.as_ref().map(|e| (identity(e.gateway, c, owner), gateway_ports)),
        operator_ports: vec![],
        services: both_services(c, owner),
    };
    let mut out = security::objects(mesh, &target, owner, ctx);
    out.extend(routing::broker(res, listeners, owner, ctx));
    out
}

pub fn proxy(valid: &ValidProxy, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let (res, listeners) = (valid.resource, &valid.listeners);
    let Some(mesh) = enabled(res.spec.istio.as_ref()) else {
        return Vec::new();
    };
    let gateway = listeners.gateway();
    let gateway_ports = gateway.map(|_| listeners.routes().iter().map(|r| r.target.port).collect());
    let target = Target {
        component: Component::Proxy,
        ports: listeners.ports().iter().map(|p| p.port).collect(),
        metrics_port: HTTP,
        // The proxy's web service: metrics and the proxied admin REST API.
        metrics_is_admin: true,
        gateway: gateway.map(|g| identity(g, Component::Proxy, owner)).zip(gateway_ports),
        operator_ports: vec![],
        // The proxy has no headless Service.
        services: vec![Component::Proxy.object_name(&owner.name)],
    };
    let mut out = security::objects(mesh, &target, owner, ctx);
    out.extend(routing::proxy(listeners, owner, ctx));
    out
}

#[cfg(test)]
mod tests;
