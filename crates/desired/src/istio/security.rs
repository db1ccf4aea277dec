//! Security objects of one component (SPEC 3.5, 4.5): PeerAuthentication,
//! AuthorizationPolicy and the sidecar-only DestinationRules.

use magnetar_api::istio::{DataplaneMode, MeshSettings, MtlsMode};

use super::types::*;
use crate::names::{self, Component};
use crate::{BuildContext, Object, Owner};

/// The pods one set of policies covers, and who may reach which port.
#[derive(Clone, Debug)]
pub struct Target {
    pub component: Component,
    /// Container ports: every peer of the Pulsar cluster may reach them.
    pub ports: Vec<i32>,
    /// Where Prometheus scrapes (see [`metrics_permissive_port`]).
    pub metrics_port: i32,
    /// The metrics port also serves an admin API (broker and proxy 8080,
    /// bookie and auto-recovery 8000): never open it to unnamed callers.
    pub metrics_is_admin: bool,
    /// The ingress gateway's namespace and ServiceAccount
    /// ([`crate::gateway_api::gateway_identity`]) and the target ports it
    /// routes to.
    pub gateway: Option<((String, String), Vec<i32>)>,
    /// Ports the operator reaches (ZooKeeper's leader check); empty otherwise.
    pub operator_ports: Vec<i32>,
    /// Services the DestinationRules cover (none for auto-recovery).
    pub services: Vec<String>,
}

/// PeerAuthentication, AuthorizationPolicy (not with mtls none) and
/// DestinationRules (sidecar mode only) of `target`.
pub fn objects<M: MeshSettings>(mesh: &M, target: &Target, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let mut out = vec![peer_authentication(mesh, target, owner, ctx)];
    out.extend(authorization_policy(mesh, target, owner, ctx));
    out.extend(destination_rules(mesh, target, owner, ctx));
    out
}

fn selector(target: &Target, owner: &Owner) -> WorkloadSelector {
    WorkloadSelector { match_labels: names::selector(target.component, &owner.name) }
}

/// Ambient pods have no sidecar to merge metrics, so a Prometheus outside
/// the mesh scrapes the metrics port directly, in plaintext: the port must
/// then accept plaintext. That is only worth doing where someone plaintext
/// may pass the AuthorizationPolicy: the `allowFrom` callers, or anyone on a
/// port that serves metrics only (ZooKeeper's). A port that is also an
/// admin API without `allowFrom` stays STRICT.
fn metrics_permissive_port<M: MeshSettings>(mesh: &M, target: &Target) -> bool {
    mesh.dataplane_mode() == DataplaneMode::Ambient
        && mesh.metrics_permissive()
        && (!mesh.metrics_allow_from().is_empty() || !target.metrics_is_admin)
}

/// Who may scrape the metrics port besides the cluster's peers: the
/// `allowFrom` callers (both modes: an in-mesh Prometheus scraping
/// directly); with none, anyone, but only on a metrics-only port in ambient
/// mode with `permissive` (what a Prometheus outside the mesh needs there).
fn metrics_rule<M: MeshSettings>(mesh: &M, target: &Target) -> Option<Rule> {
    let to = vec![to_ports(&[target.metrics_port])];
    let allow_from = mesh.metrics_allow_from();
    if !allow_from.is_empty() {
        return Some(Rule { from: allow_from.iter().map(rule_from).collect(), to });
    }
    metrics_permissive_port(mesh, target).then_some(Rule { from: vec![], to })
}

/// The component-wide mode. While the component moves between sidecar and
/// ambient, half-migrated traffic arrives plaintext or as legacy mTLS, so
/// PERMISSIVE until every pod is enrolled the new way (SPEC 4.5).
fn peer_mode<M: MeshSettings>(mesh: &M, ctx: &BuildContext) -> PeerMtlsMode {
    if ctx.migrating {
        return PeerMtlsMode::Permissive;
    }
    match mesh.mtls_mode() {
        MtlsMode::Strict => PeerMtlsMode::Strict,
        MtlsMode::Permissive => PeerMtlsMode::Permissive,
        MtlsMode::None => PeerMtlsMode::Disable,
    }
}

pub fn peer_authentication<M: MeshSettings>(mesh: &M, target: &Target, owner: &Owner, ctx: &BuildContext) -> Object {
    let mut spec = PeerAuthenticationSpec {
        selector: Some(selector(target, owner)),
        mtls: Some(PeerMtls { mode: peer_mode(mesh, ctx) }),
        ..Default::default()
    };
    if metrics_permissive_port(mesh, target) {
        spec.port_level_mtls.insert(target.metrics_port.to_string(), PeerMtls { mode: PeerMtlsMode::Permissive });
    }
    let name = target.component.object_name(&owner.name);
    PeerAuthentication::object(owner, name, target.component, spec)
}

/// None with mtls none: principals need mTLS, and an ALLOW policy that can
/// never match would deny everything.
pub fn authorization_policy<M: MeshSettings>(
    mesh: &M,
    target: &Target,
    owner: &Owner,
    ctx: &BuildContext,
) -> Option<Object> {
    if mesh.mtls_mode() == MtlsMode::None {
        return None;
    }
    let spec = AuthorizationPolicySpec {
        selector: Some(selector(target, owner)),
        action: AuthorizationAction::Allow,
        rules: rules(mesh, target, owner, ctx),
    };
    let name = target.component.object_name(&owner.name);
    Some(AuthorizationPolicy::object(owner, name, target.component, spec))
}

/// L4 rules only (principals and ports), so ztunnel enforces them in ambient
/// mode too: peers, the gateway, the operator, open metrics, then authRules.
fn rules<M: MeshSettings>(mesh: &M, target: &Target, owner: &Owner, ctx: &BuildContext) -> Vec<Rule> {
    let td = mesh.trust_domain();
    let mut v = Vec::new();
    v.extend(principals_to(ctx.peer_principals(td, &owner.namespace), &target.ports));
    if let Some(((namespace, service_account), ports)) = &target.gateway {
        let gw = names::principal(td, namespace, service_account);
        v.extend(principals_to(vec![gw], ports));
    }
    v.extend(principals_to(vec![ctx.operator_principal(td)], &target.operator_ports));
    v.extend(metrics_rule(mesh, target));
    v.extend(mesh.auth_rules().iter().filter_map(user_rule));
    v
}

/// A rule letting `principals` reach `ports`; none if either is empty (a
/// rule without `from` or `to` would match any caller or any port).
fn principals_to(principals: Vec<String>, ports: &[i32]) -> Option<Rule> {
    if principals.is_empty() || ports.is_empty() {
        return None;
    }
    Some(Rule {
        from: vec![RuleFrom { source: Source { principals, ..Default::default() } }],
        to: vec![to_ports(ports)],
    })
}

fn to_ports(ports: &[i32]) -> RuleTo {
    let mut seen = Vec::new();
    for p in ports.iter().map(i32::to_string) {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    RuleTo { operation: Operation { ports: seen } }
}

/// An `authRules` entry. A fully empty entry is dropped: as an Istio rule it
/// would allow every caller on every port, which no one writes on purpose.
fn user_rule(rule: &magnetar_api::istio::AuthRule) -> Option<Rule> {
    if rule.from_source.is_empty() && rule.to_operation.is_empty() {
        return None;
    }
    let from = rule.from_source.iter().map(rule_from).collect();
    let to = rule.to_operation.iter().map(|o| RuleTo { operation: Operation { ports: o.ports.clone() } }).collect();
    Some(Rule { from, to })
}

fn rule_from(s: &magnetar_api::istio::AuthSource) -> RuleFrom {
    RuleFrom {
        source: Source {
            principals: s.principals.clone(),
            namespaces: s.namespaces.clone(),
            ip_blocks: s.ip_blocks.clone(),
        },
    }
}

/// ISTIO_MUTUAL to the component's Services, sidecar mode only: in ambient
/// mode (and while moving to it) such a rule makes the gateway and sidecars
/// send legacy mTLS instead of HBONE, which STRICT ztunnel pods reject on
/// Istio 1.24.x (istio/istio#53526).
pub fn destination_rules<M: MeshSettings>(mesh: &M, target: &Target, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let sidecar = mesh.dataplane_mode() == DataplaneMode::Sidecar;
    if !sidecar || ctx.migrating || mesh.mtls_mode() == MtlsMode::None {
        return Vec::new();
    }
    target.services.iter().map(|svc| destination_rule(svc, target.component, owner, ctx)).collect()
}

fn destination_rule(service: &str, component: Component, owner: &Owner, ctx: &BuildContext) -> Object {
    let spec = DestinationRuleSpec {
        host: ctx.service_host(service, &owner.namespace),
        traffic_policy: Some(TrafficPolicy { tls: ClientTls { mode: ClientTlsMode::IstioMutual } }),
    };
    DestinationRule::object(owner, service, component, spec)
}
