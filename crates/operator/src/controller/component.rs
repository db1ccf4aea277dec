//! The component controller (ZooKeeper, BookKeeper, brokers, proxies):
//! dereference → validate and build → check against the cluster → apply and
//! prune → status.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use magnetar_api::istio::GatewaySpec;
use magnetar_api::status::{ComponentStatus, EDGE_AUTHENTICATION, EXTERNAL_ACCESS, PROGRESSING, ServiceEndpoints};
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarProxy, ZooKeeperCluster};
use magnetar_desired::mesh::Enrolment;
use magnetar_desired::names::{self, Component};
use magnetar_desired::{BuildContext, FieldError, Invalid, Object, security, validate};

use super::{Kind, Pass, patch_status};
use crate::apply::{self, Outcome};
use crate::checks;
use crate::context::{Context, Live, template_labels};
use crate::discovery;
use crate::error::Error;
use crate::events;
use crate::kinds::{GATEWAY_API, MONITORING, is_istio_group};
use crate::migration::{self, mode_of};
use crate::prerequisites::{self, Missing};
use crate::restart;
use crate::status::{self, ExternalAccess, Observed, Problem, REASON_MIGRATING, Workload};

/// What the controller needs from a component kind.
pub trait ComponentResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Kind
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The component whose StatefulSet is the primary workload.
    const COMPONENT: Component;
    fn store(ctx: &Context) -> &Store<Self>;
    /// Validates, then builds: the objects, and the gateway the validated
    /// view routes through (decided once, with the listeners).
    fn build(&self, ctx: &BuildContext) -> Result<Desired<'_>, Invalid>;
    fn current_status(&self) -> Option<&ComponentStatus>;
    fn enrolment(&self) -> Enrolment;
    /// `(field path, zkServers)` to check.
    fn zk_servers(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }
    fn endpoints(&self, _istio_available: bool, _cluster_domain: &str) -> Option<ServiceEndpoints> {
        None
    }
}

/// The items every component kind states alike: its component, its store,
/// its status and its mesh enrolment.
macro_rules! component_basics {
    ($component:ident, $store:ident) => {
        const COMPONENT: Component = Component::$component;
        fn store(ctx: &Context) -> &Store<Self> {
            &ctx.stores.$store
        }
        fn current_status(&self) -> Option<&ComponentStatus> {
            self.status.as_ref()
        }
        fn enrolment(&self) -> Enrolment {
            Enrolment::of(self.spec.istio.as_ref())
        }
    };
}

impl ComponentResource for ZooKeeperCluster {
    component_basics!(ZooKeeper, zookeepers);
    fn build(&self, ctx: &BuildContext) -> Result<Desired<'_>, Invalid> {
        Ok(Desired::internal(magnetar_desired::zookeeper_objects(&validate::zookeeper(self)?, ctx)))
    }
}

impl ComponentResource for BookKeeperCluster {
    component_basics!(BookKeeper, bookkeepers);
    fn build(&self, ctx: &BuildContext) -> Result<Desired<'_>, Invalid> {
        Ok(Desired::internal(magnetar_desired::bookkeeper_objects(&validate::bookkeeper(self)?, ctx)))
    }
    fn zk_servers(&self) -> Vec<(&'static str, &str)> {
        // Absent when metadataServiceUri names another store (Oxia).
        let ar = self.spec.auto_recovery.as_ref().and_then(|a| a.conf.as_ref()).and_then(|c| c.zk_servers.as_deref());
        [("spec.zkServers", self.spec.zk_servers.as_deref()), ("spec.autoRecovery.conf.zkServers", ar)]
            .into_iter()
            .filter_map(|(path, zk)| zk.filter(|z| !z.is_empty()).map(|z| (path, z)))
            .collect()
    }
}

impl ComponentResource for PulsarBroker {
    component_basics!(Broker, brokers);
    fn build(&self, ctx: &BuildContext) -> Result<Desired<'_>, Invalid> {
        let valid = validate::broker(self)?;
        let unauthenticated = valid.exposed_without_authentication();
        Ok(Desired {
            objects: magnetar_desired::broker_objects(&valid, ctx),
            gateway: valid.gateway(),
            unauthenticated,
        })
    }
    fn zk_servers(&self) -> Vec<(&'static str, &str)> {
        // With metadataStoreUrl the brokers do not use zkServers at all.
        let explicit = self.spec.metadata_store_url.as_deref().is_some_and(|u| !u.trim().is_empty());
        let zk = self.spec.zk_servers.as_deref().filter(|z| !z.is_empty() && !explicit);
        zk.map(|z| ("spec.zkServers", z)).into_iter().collect()
    }
    fn endpoints(&self, istio_available: bool, cluster_domain: &str) -> Option<ServiceEndpoints> {
        // Every broker the autoscaler may add has its host (and route).
        let brokers = magnetar_desired::components::broker::max_brokers(self);
        Some(magnetar_desired::endpoints::broker_endpoints(self, brokers, istio_available, cluster_domain))
    }
}

impl ComponentResource for PulsarProxy {
    component_basics!(Proxy, proxies);
    fn build(&self, ctx: &BuildContext) -> Result<Desired<'_>, Invalid> {
        let valid = validate::proxy(self)?;
        let unauthenticated = valid.exposed_without_authentication();
        Ok(Desired { objects: magnetar_desired::proxy_objects(&valid, ctx), gateway: valid.gateway(), unauthenticated })
    }
}

/// What a component implies, from its validated view.
pub struct Desired<'a> {
    pub objects: Vec<Object>,
    /// The gateway its external access routes through, if it has any.
    pub gateway: Option<&'a GatewaySpec>,
    /// Reachable through that gateway with Pulsar's authentication off.
    pub unauthenticated: bool,
}

impl Desired<'_> {
    /// The objects of a component without external access.
    fn internal(objects: Vec<Object>) -> Self {
        Desired { objects, gateway: None, unauthenticated: false }
    }
}

/// Checks the schema cannot do, against the cluster. Empty when all pass.
async fn check<K: ComponentResource>(obj: &K, ctx: &Context, zookeepers: &[String]) -> Result<Vec<FieldError>, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut errors = Vec::new();
    for (path, zk) in obj.zk_servers() {
        errors.extend(checks::zk_servers(&ctx.client, path, zk, &ns, zookeepers).await.map_err(Error::Check)?);
    }
    Ok(errors)
}

/// Path of the gateway settings in a broker's or proxy's spec.
const GATEWAY_PATH: &str = "spec.istio.gateway";

/// The prerequisites of external access that are missing; each is watched
/// until it appears (its sighting queues this resource again).
async fn missing_prerequisites<K: ComponentResource>(
    obj: &K,
    gateway: Option<&GatewaySpec>,
    ctx: &Context,
) -> Result<Vec<Missing>, Error> {
    let Some(gw) = gateway.filter(|_| ctx.istio_available()) else { return Ok(Vec::new()) };
    let missing = checks::gateway(&ctx.client, gw, &obj.namespace().unwrap_or_default()).await.map_err(Error::Check)?;
    let who = (K::MAIN, obj.namespace().unwrap_or_default(), obj.name_any());
    for m in &missing {
        ctx.prerequisites.wait(&ctx.client, &ctx.triggers, m, who.clone());
    }
    Ok(missing)
}

/// Workloads after a pass: the live ones, refreshed by the apply responses,
/// without the deleted ones.
pub fn workloads(live: &[Live], outcome: Option<&Outcome>) -> Vec<Value> {
    let is_workload = |k: &str| k == "StatefulSet" || k == "Deployment";
    let mut out: Vec<Value> = live.iter().filter(|l| is_workload(l.kind.kind)).map(|l| l.value.clone()).collect();
    if let Some(o) = outcome {
        let id = |v: &Value| {
            format!("{}/{}", v["kind"].as_str().unwrap_or_default(), v["metadata"]["name"].as_str().unwrap_or_default())
        };
        out.retain(|v| !o.deleted.contains(&id(v)));
        for r in o.responses.iter().filter(|r| is_workload(r["kind"].as_str().unwrap_or_default())) {
            match out.iter_mut().find(|v| v["metadata"]["name"] == r["metadata"]["name"] && v["kind"] == r["kind"]) {
                Some(v) => *v = r.clone(),
                None => out.push(r.clone()),
            }
        }
    }
    out
}

/// What runs now: the first step of a pass.
struct Seen {
    ns: String,
    name: String,
    istio: bool,
    gateway_api: bool,
    monitoring: bool,
    inventory: magnetar_desired::cluster::Inventory,
    enrolment: Enrolment,
    /// The objects this resource owns.
    live: Vec<Live>,
    pods: Vec<crate::migration::PodView>,
    /// `<n>-<suffix>`, the primary StatefulSet.
    primary_name: String,
    /// Mid sidecar ↔ ambient migration (SPEC 4.5).
    migrating: bool,
}

fn observe<K: ComponentResource>(obj: &K, ctx: &Context) -> Seen {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let live = ctx.owned(&ns, &name, &obj.uid().unwrap_or_default());
    let primary_name = K::COMPONENT.object_name(&name);
    let pods = ctx.pods_of(&ns, K::COMPONENT, &name);
    let enrolment = obj.enrolment();
    let live_sts = live.iter().find(|l| l.kind.kind == "StatefulSet" && l.name == primary_name);
    let labels = live_sts.map(|s| template_labels(&s.value));
    let was_migrating = obj
        .current_status()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == PROGRESSING))
        .is_some_and(|c| c.reason == REASON_MIGRATING);
    let migrating = migration::migrating(&migration::Observed {
        desired: mode_of(&enrolment),
        template_labels: labels.as_ref(),
        settled: live_sts.is_some_and(|s| Workload::from_value(&s.value).settled()),
        pods: &pods,
        was_migrating,
    });
    Seen {
        inventory: ctx.inventory(&ns),
        istio: ctx.istio_available(),
        gateway_api: ctx.gateway_api_available(),
        monitoring: ctx.monitoring_available(),
        ns,
        name,
        enrolment,
        live,
        pods,
        primary_name,
        migrating,
    }
}

/// The desired objects, or why there are none; and the external access.
#[derive(Default)]
struct Planned {
    desired: Vec<Object>,
    problem: Option<Problem>,
    /// Prerequisites of external access not there yet (each now watched).
    missing: Vec<Missing>,
    external: Option<ExternalAccess>,
    /// The warning when the gateway exposes it without Pulsar authentication.
    unauthenticated: Option<String>,
    /// `spec.monitoring` is on: whether its PodMonitor could be applied
    /// (prometheus-operator's CRDs are served).
    monitoring: Option<bool>,
}

/// Builds the desired objects, then checks what the schema cannot.
async fn build_and_check<K: ComponentResource>(obj: &K, ctx: &Context, seen: &Seen) -> Result<Planned, Error> {
    let mut bctx = seen.inventory.context_for(obj.meta(), &ctx.identity);
    bctx.migrating = seen.migrating;
    bctx.cluster_domain = ctx.cluster_domain.clone();
    let invalid = |why: String| Planned { problem: Some(Problem::Invalid(why)), ..Default::default() };
    let Desired { objects: mut desired, gateway, unauthenticated } = match obj.build(&bctx) {
        Ok(built) => built,
        Err(e) => return Ok(invalid(e.to_string())),
    };
    let zookeepers: Vec<String> = seen.inventory.zookeepers.iter().map(|z| z.name_any()).collect();
    let errors = check(obj, ctx, &zookeepers).await?;
    if !errors.is_empty() {
        return Ok(invalid(Invalid(errors).to_string()));
    }
    let wants_gateway_api = desired.iter().any(|o| o.group() == GATEWAY_API);
    let wants_monitoring = desired.iter().any(|o| o.group() == MONITORING);
    desired.retain(|o| {
        (seen.istio || !is_istio_group(o.group()))
            && (seen.gateway_api || o.group() != GATEWAY_API)
            && (seen.monitoring || o.group() != MONITORING)
    });
    let monitoring = wants_monitoring.then_some(seen.monitoring);
    let mut missing = missing_prerequisites(obj, gateway, ctx).await?;
    // Not watched like the others: the discovery loop re-queues everything
    // when the CRDs appear.
    if wants_gateway_api && !seen.gateway_api {
        missing.insert(0, Missing::GatewayApiCrds);
    }
    let external = gateway.filter(|_| seen.istio).map(|_| match missing.first() {
        None => ExternalAccess::Routed,
        Some(first) => ExternalAccess::Waiting(first.reason(), prerequisites::summary(&missing, GATEWAY_PATH)),
    });
    let unauthenticated =
        (external.is_some() && unauthenticated).then(|| security::unauthenticated_exposure(K::MAIN.kind()));
    Ok(Planned { desired, problem: None, missing, external, unauthenticated, monitoring })
}

/// Applies and prunes, unless invalid: then nothing is touched. While a
/// prerequisite is missing, the Gateway and VirtualServices are neither
/// applied nor deleted; everything else is.
async fn apply(ctx: &Context, seen: &Seen, plan: &Planned) -> Result<Outcome, Error> {
    if plan.missing.is_empty() {
        return apply::sync(ctx, &seen.ns, &plan.desired, &seen.live).await;
    }
    let held_back = prerequisites::is_external_access;
    let desired: Vec<Object> = plan.desired.iter().filter(|o| !held_back(o.group(), &o.kind)).cloned().collect();
    let live: Vec<Live> = seen.live.iter().filter(|l| !held_back(l.kind.group, l.kind.kind)).cloned().collect();
    apply::sync(ctx, &seen.ns, &desired, &live).await
}

/// ZooKeeper: pods on an old template are restarted by the operator,
/// followers first and the leader last (SPEC 4.4). Nothing to do for the
/// other components.
async fn roll<K: ComponentResource>(
    ctx: &Context,
    obj: &K,
    seen: &Seen,
    workloads: &[Value],
) -> Result<restart::Outcome, Error> {
    if K::COMPONENT != Component::ZooKeeper {
        return Ok(restart::Outcome::Idle);
    }
    let primary = seen.primary_name.as_str();
    match workloads.iter().find(|w| w["kind"] == "StatefulSet" && w["metadata"]["name"] == primary) {
        Some(sts) => restart::roll(ctx, obj, sts).await,
        None => Ok(restart::Outcome::Idle),
    }
}

/// Reconciles one component: observe → build and check → apply → roll →
/// report. A step that fails records the problem and skips the steps that
/// change the cluster; the report always runs.
pub async fn reconcile<K: ComponentResource>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.picked_up(K::MAIN.kind(), format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()));
    if obj.meta().deletion_timestamp.is_some() {
        // Children go with the CR through their ownerReferences.
        return Ok(Action::await_change());
    }
    let obj = obj.as_ref();
    let seen = observe(obj, &ctx);
    let plan = build_and_check(obj, &ctx, &seen).await?;
    let mut pass = Pass::new(plan.problem.clone());
    let outcome = match pass.ok() {
        true => pass.record(apply(&ctx, &seen, &plan).await),
        false => None,
    };
    let workloads = workloads(&seen.live, outcome.as_ref());
    let roll = match pass.ok() {
        true => pass.record(roll(&ctx, obj, &seen, &workloads).await).unwrap_or(restart::Outcome::Idle),
        false => restart::Outcome::Idle,
    };
    let blocked = match &roll {
        restart::Outcome::CheckFailed(msg) => Some((restart::REASON_LEADER_CHECK_FAILED, msg.clone())),
        _ => None,
    };
    let report_of =
        Report { seen: &seen, plan: &plan, outcome: outcome.as_ref(), workloads: &workloads, blocked: &blocked };
    report(&ctx, obj, report_of, &mut pass).await;
    let problem = pass.problem.is_some();
    pass.finish(&ctx, obj, started).await?;
    Ok(if problem || blocked.is_some() {
        // The cluster may fix an invalid spec (a Service or Secret created)
        // or a blocked roll (the mesh may have been fixed).
        Action::requeue(Duration::from_secs(30))
    } else if !plan.missing.is_empty() {
        // The prerequisites' watches bring the next pass; this is a safety
        // net for a watch the operator may not make (RBAC).
        Action::requeue(Duration::from_secs(120))
    } else if roll.rolling() {
        // Watches of the pods and the StatefulSet bring the next step; this
        // is a safety net.
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(ctx.resync)
    })
}

/// What the Gateway API implementation reports of the routes, when the
/// component routes through the Gateway API and they are applied.
fn route_report(seen: &Seen, plan: &Planned) -> Option<magnetar_desired::gateway_api::RouteReport> {
    let is_route = |kind: &str| kind == "TLSRoute" || kind == "HTTPRoute";
    let wanted = plan.desired.iter().any(|o| o.group() == GATEWAY_API && is_route(&o.kind));
    if !wanted || !plan.missing.is_empty() {
        return None;
    }
    let routes: Vec<Value> = seen
        .live
        .iter()
        .filter(|l| l.kind.is_gateway_api() && is_route(l.kind.kind))
        .map(|l| l.value.clone())
        .collect();
    Some(magnetar_desired::gateway_api::route_report(&routes))
}

/// What the report step reads.
struct Report<'a> {
    seen: &'a Seen,
    plan: &'a Planned,
    outcome: Option<&'a Outcome>,
    workloads: &'a [Value],
    blocked: &'a Option<(&'static str, String)>,
}

/// Status, then the Events: what was applied, and what goes with a changed
/// status.
async fn report<K: ComponentResource>(ctx: &Context, obj: &K, r: Report<'_>, pass: &mut Pass) {
    let Report { seen, plan, outcome, workloads, blocked } = r;
    let previous = obj.current_status();
    let istio = seen.istio;
    let mesh_warning = istio
        .then(|| {
            let service_entries = plan.desired.iter().any(|o| o.kind == "ServiceEntry");
            let sidecar = matches!(seen.enrolment, Enrolment::Sidecar { .. });
            discovery::dns_warning(service_entries, sidecar, &ctx.mesh_dns())
        })
        .flatten();
    let (primary, others): (Vec<Workload>, Vec<Workload>) = workloads
        .iter()
        .map(Workload::from_value)
        .partition(|w| w.kind == "StatefulSet" && w.name == seen.primary_name);
    let new_status = status::component_status(&Observed {
        generation: obj.meta().generation,
        label_selector: names::selector_string(K::COMPONENT, &seen.name),
        primary: primary.into_iter().next(),
        others,
        primary_name: seen.primary_name.clone(),
        enrolment: seen.enrolment.clone(),
        pods: &seen.pods,
        istio_available: istio,
        migrating: seen.migrating,
        problem: pass.problem.clone(),
        endpoints: obj.endpoints(istio && plan.missing.is_empty(), &ctx.cluster_domain),
        external: plan.external.clone(),
        unauthenticated: plan.unauthenticated.clone(),
        routes: route_report(seen, plan),
        monitoring: plan.monitoring,
        blocked: blocked.clone(),
        mesh_warning,
        previous,
        now: Timestamp::now(),
    });
    let written = pass.status(patch_status(ctx, obj, previous, &new_status).await);
    if let Some(o) = outcome {
        events::publish_outcome(ctx, obj, o).await;
    }
    // A Warning when the condition's reason or message changed.
    let changed = |type_: &str, reason: &str, msg: &str| {
        let before = previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_));
        written && before.is_none_or(|c| c.reason != reason || c.message != msg)
    };
    // (condition, reason, action, message) of each warning that may apply.
    let waiting = match &plan.external {
        Some(ExternalAccess::Waiting(reason, msg)) => Some((EXTERNAL_ACCESS, *reason, "ExternalAccess", msg)),
        _ => None,
    };
    let warnings = [
        blocked.as_ref().map(|(reason, msg)| (PROGRESSING, *reason, "Restart", msg)),
        waiting,
        plan.unauthenticated
            .as_ref()
            .map(|msg| (EDGE_AUTHENTICATION, security::REASON_UNAUTHENTICATED, "EdgeAuthentication", msg)),
    ];
    for (condition, reason, action, msg) in warnings.into_iter().flatten() {
        if changed(condition, reason, msg) {
            events::publish(ctx, obj, EventType::Warning, reason, action, msg.clone()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::CORE;
    use serde_json::json;

    #[test]
    fn workloads_follow_the_pass() {
        let sts =
            |name: &str, gen_: i64| json!({"kind": "StatefulSet", "metadata": {"name": name, "generation": gen_}});
        let live = vec![
            Live {
                kind: CORE[4],
                resource: CORE[4].resource(None),
                name: "a".into(),
                uid: "1".into(),
                value: sts("a", 1),
            },
            Live {
                kind: CORE[4],
                resource: CORE[4].resource(None),
                name: "b".into(),
                uid: "2".into(),
                value: sts("b", 1),
            },
            Live {
                kind: CORE[2],
                resource: CORE[2].resource(None),
                name: "s".into(),
                uid: "3".into(),
                value: json!({"kind": "Service"}),
            },
        ];
        let outcome = Outcome {
            applied: vec![],
            deleted: vec!["StatefulSet/b".into()],
            responses: vec![sts("a", 2), sts("c", 1)],
        };
        let w = workloads(&live, Some(&outcome));
        let gens: Vec<(String, i64)> = w
            .iter()
            .map(|v| {
                (v["metadata"]["name"].as_str().unwrap().to_string(), v["metadata"]["generation"].as_i64().unwrap())
            })
            .collect();
        assert_eq!(gens, [("a".to_string(), 2), ("c".to_string(), 1)]);
    }
}
