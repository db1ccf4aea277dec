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

use magnetar_api::istio::{GatewaySpec, MeshSettings};
use magnetar_api::status::{ComponentStatus, EXTERNAL_ACCESS, PROGRESSING, ServiceEndpoints};
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarProxy, ZooKeeperCluster};
use magnetar_desired::mesh::Enrolment;
use magnetar_desired::names::{self, Component};
use magnetar_desired::{BuildContext, FieldError, Invalid, Object};

use super::{Kind, key, patch_status};
use crate::Error;
use crate::apply::{self, Outcome};
use crate::checks;
use crate::context::{Context, Live, template_labels};
use crate::discovery;
use crate::events;
use crate::kinds::is_istio_group;
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
    fn build(&self, ctx: &BuildContext) -> Result<Vec<Object>, Invalid>;
    fn current_status(&self) -> Option<&ComponentStatus>;
    fn enrolment(&self) -> Enrolment;
    /// `(field path, zkServers)` to check.
    fn zk_servers(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }
    /// The gateway, when Istio is enabled and magnetar routes through it.
    fn gateway(&self) -> Option<&GatewaySpec> {
        None
    }
    fn endpoints(&self, _istio_available: bool, _cluster_domain: &str) -> Option<ServiceEndpoints> {
        None
    }
}

impl ComponentResource for ZooKeeperCluster {
    const COMPONENT: Component = Component::ZooKeeper;
    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.stores.zookeepers
    }
    fn build(&self, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
        magnetar_desired::build_zookeeper(self, ctx)
    }
    fn current_status(&self) -> Option<&ComponentStatus> {
        self.status.as_ref()
    }
    fn enrolment(&self) -> Enrolment {
        Enrolment::of(self.spec.istio.as_ref())
    }
}

impl ComponentResource for BookKeeperCluster {
    const COMPONENT: Component = Component::BookKeeper;
    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.stores.bookkeepers
    }
    fn build(&self, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
        magnetar_desired::build_bookkeeper(self, ctx)
    }
    fn current_status(&self) -> Option<&ComponentStatus> {
        self.status.as_ref()
    }
    fn enrolment(&self) -> Enrolment {
        Enrolment::of(self.spec.istio.as_ref())
    }
    fn zk_servers(&self) -> Vec<(&'static str, &str)> {
        // Absent when metadataServiceUri names another store (Oxia).
        let mut v: Vec<_> = self
            .spec
            .zk_servers
            .as_deref()
            .filter(|z| !z.is_empty())
            .map(|z| ("spec.zkServers", z))
            .into_iter()
            .collect();
        let ar = self.spec.auto_recovery.as_ref().and_then(|a| a.conf.as_ref()).and_then(|c| c.zk_servers.as_deref());
        if let Some(zk) = ar.filter(|z| !z.is_empty()) {
            v.push(("spec.autoRecovery.conf.zkServers", zk));
        }
        v
    }
}

fn gateway_of(istio: Option<&magnetar_api::istio::GatewayIstioSpec>) -> Option<&GatewaySpec> {
    istio.filter(|i| i.enabled()).and_then(|i| i.gateway.as_ref())
}

impl ComponentResource for PulsarBroker {
    const COMPONENT: Component = Component::Broker;
    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.stores.brokers
    }
    fn build(&self, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
        magnetar_desired::build_broker(self, ctx)
    }
    fn current_status(&self) -> Option<&ComponentStatus> {
        self.status.as_ref()
    }
    fn enrolment(&self) -> Enrolment {
        Enrolment::of(self.spec.istio.as_ref())
    }
    fn zk_servers(&self) -> Vec<(&'static str, &str)> {
        // With metadataStoreUrl the brokers do not use zkServers at all.
        let explicit = self.spec.metadata_store_url.as_deref().is_some_and(|u| !u.trim().is_empty());
        let zk = self.spec.zk_servers.as_deref().filter(|z| !z.is_empty() && !explicit);
        zk.map(|z| ("spec.zkServers", z)).into_iter().collect()
    }
    fn gateway(&self) -> Option<&GatewaySpec> {
        let domain = self.spec.config.as_ref().and_then(|c| c.advertised_domain.as_deref()).filter(|d| !d.is_empty());
        domain.and(gateway_of(self.spec.istio.as_ref()))
    }
    fn endpoints(&self, istio_available: bool, cluster_domain: &str) -> Option<ServiceEndpoints> {
        // Every broker the autoscaler may add has its host (and route).
        let brokers = magnetar_desired::components::broker::max_brokers(self);
        Some(status::broker_endpoints(self, brokers, istio_available, cluster_domain))
    }
}

impl ComponentResource for PulsarProxy {
    const COMPONENT: Component = Component::Proxy;
    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.stores.proxies
    }
    fn build(&self, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
        magnetar_desired::build_proxy(self, ctx)
    }
    fn current_status(&self) -> Option<&ComponentStatus> {
        self.status.as_ref()
    }
    fn enrolment(&self) -> Enrolment {
        Enrolment::of(self.spec.istio.as_ref())
    }
    fn gateway(&self) -> Option<&GatewaySpec> {
        gateway_of(self.spec.istio.as_ref())
    }
}

/// Checks the schema cannot do, against the cluster. Empty when all pass.
async fn check<K: ComponentResource>(obj: &K, ctx: &Context, zookeepers: &[String]) -> Result<Vec<FieldError>, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut errors = Vec::new();
    for (path, zk) in obj.zk_servers() {
        if let Some(e) = checks::zk_servers(&ctx.client, path, zk, &ns, zookeepers).await.map_err(Error::Check)? {
            errors.push(e);
        }
    }
    Ok(errors)
}

/// Path of the gateway settings in a broker's or proxy's spec.
const GATEWAY_PATH: &str = "spec.istio.gateway";

/// The prerequisites of external access that are missing; each is watched
/// until it appears (its sighting queues this resource again).
async fn missing_prerequisites<K: ComponentResource>(obj: &K, ctx: &Context) -> Result<Vec<Missing>, Error> {
    let Some(gw) = obj.gateway().filter(|_| ctx.istio_available()) else { return Ok(Vec::new()) };
    let missing = checks::gateway(&ctx.client, gw).await.map_err(Error::Check)?;
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

/// Reconciles one component.
pub async fn reconcile<K: ComponentResource>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.picked_up(K::MAIN.kind(), format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()));
    if obj.meta().deletion_timestamp.is_some() {
        // Children go with the CR through their ownerReferences.
        return Ok(Action::await_change());
    }
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let uid = obj.uid().unwrap_or_default();
    let istio = ctx.istio_available();
    let inventory = ctx.inventory(&ns);
    let enrolment = obj.enrolment();
    let previous = obj.current_status();

    // What runs now.
    let live = ctx.owned(&ns, &name, &uid);
    let primary_name = K::COMPONENT.object_name(&name);
    let live_sts = live.iter().find(|l| l.kind.kind == "StatefulSet" && l.name == primary_name);
    let pods = ctx.pods_of(&ns, K::COMPONENT, &name);
    let labels = live_sts.map(|s| template_labels(&s.value));
    let was_migrating = previous
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == PROGRESSING))
        .is_some_and(|c| c.reason == REASON_MIGRATING);
    let migrating = migration::migrating(&migration::Observed {
        desired: mode_of(&enrolment),
        template_labels: labels.as_ref(),
        settled: live_sts.is_some_and(|s| Workload::from_value(&s.value).settled()),
        pods: &pods,
        was_migrating,
    });

    // Build, then check what the schema cannot.
    let mut bctx = inventory.context_for(obj.meta(), &ctx.identity);
    bctx.migrating = migrating;
    bctx.cluster_domain = ctx.cluster_domain.clone();
    let mut problem = None;
    let mut desired = Vec::new();
    match obj.build(&bctx) {
        Ok(objects) => desired = objects,
        Err(invalid) => problem = Some(Problem::Invalid(invalid.to_string())),
    }
    if problem.is_none() {
        let zookeepers: Vec<String> = inventory.zookeepers.iter().map(|z| z.name_any()).collect();
        let errors = check(obj.as_ref(), &ctx, &zookeepers).await?;
        if !errors.is_empty() {
            problem = Some(Problem::Invalid(Invalid(errors).to_string()));
        }
    }
    let missing = if problem.is_none() { missing_prerequisites(obj.as_ref(), &ctx).await? } else { Vec::new() };
    let external = obj.gateway().filter(|_| istio).map(|_| match missing.is_empty() {
        true => ExternalAccess::Routed,
        false => ExternalAccess::Waiting(
            missing.first().map_or("", Missing::reason),
            prerequisites::summary(&missing, GATEWAY_PATH),
        ),
    });

    // Apply and prune, unless invalid: then nothing is touched. While a
    // prerequisite is missing, the Gateway and VirtualServices are neither
    // applied nor deleted; everything else is.
    let mut outcome = None;
    let mut failure = None;
    if problem.is_none() {
        desired.retain(|o| istio || !is_istio_group(o.group()));
        let held: Vec<Live>;
        let live_to_sync = if missing.is_empty() {
            &live
        } else {
            desired.retain(|o| !prerequisites::object_is_external_access(o));
            held = live.iter().filter(|l| !prerequisites::live_is_external_access(l)).cloned().collect();
            &held
        };
        match apply::sync(&ctx, &ns, &desired, live_to_sync).await {
            Ok(o) => outcome = Some(o),
            Err(e) => {
                problem = Some(Problem::ApplyFailed(e.to_string()));
                failure = Some(e);
            }
        }
    }

    // ZooKeeper: pods on an old template are restarted by the operator,
    // followers first and the leader last (SPEC 4.4).
    let workloads = workloads(&live, outcome.as_ref());
    let mut roll = restart::Outcome::Idle;
    if K::COMPONENT == Component::ZooKeeper && problem.is_none() {
        let sts =
            workloads.iter().find(|w| w["kind"] == "StatefulSet" && w["metadata"]["name"] == primary_name.as_str());
        if let Some(sts) = sts {
            match restart::roll(&ctx, obj.as_ref(), sts).await {
                Ok(o) => roll = o,
                Err(e) => {
                    problem = Some(Problem::ApplyFailed(e.to_string()));
                    failure = Some(e);
                }
            }
        }
    }
    let blocked = match &roll {
        restart::Outcome::CheckFailed(msg) => Some((restart::REASON_LEADER_CHECK_FAILED, msg.clone())),
        _ => None,
    };
    let mesh_warning = istio
        .then(|| {
            let service_entries = desired.iter().any(|o| o.kind == "ServiceEntry");
            let sidecar = matches!(enrolment, Enrolment::Sidecar { .. });
            discovery::dns_warning(service_entries, sidecar, &ctx.mesh_dns())
        })
        .flatten();

    // Status.
    let (primary, others): (Vec<Workload>, Vec<Workload>) =
        workloads.iter().map(Workload::from_value).partition(|w| w.kind == "StatefulSet" && w.name == primary_name);
    let new_status = status::component_status(&Observed {
        generation: obj.meta().generation,
        label_selector: names::selector_string(K::COMPONENT, &name),
        primary: primary.into_iter().next(),
        others,
        primary_name: primary_name.clone(),
        enrolment,
        pods: &pods,
        istio_available: istio,
        migrating,
        problem: problem.clone(),
        endpoints: obj.endpoints(istio && missing.is_empty(), &ctx.cluster_domain),
        external: external.clone(),
        blocked: blocked.clone(),
        mesh_warning,
        previous,
        now: Timestamp::now(),
    });
    let status_written = match patch_status(&ctx, obj.as_ref(), previous, &new_status).await {
        Ok(w) => w,
        Err(e) if failure.is_none() => {
            failure = Some(e);
            false
        }
        Err(_) => false,
    };

    // Events.
    if let Some(o) = &outcome {
        events::publish_outcome(&ctx, obj.as_ref(), o).await;
    }
    if let Some((reason, msg)) = blocked.as_ref().filter(|_| status_written) {
        let before = previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == PROGRESSING));
        if before.is_none_or(|c| c.reason != *reason || c.message != *msg) {
            events::publish(&ctx, obj.as_ref(), EventType::Warning, reason, "Restart", msg.clone()).await;
        }
    }
    if let Some(ExternalAccess::Waiting(reason, msg)) = external.as_ref().filter(|_| status_written) {
        let before = previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == EXTERNAL_ACCESS));
        if before.is_none_or(|c| c.reason != *reason || c.message != *msg) {
            events::publish(&ctx, obj.as_ref(), EventType::Warning, reason, "ExternalAccess", msg.clone()).await;
        }
    }
    match &problem {
        Some(Problem::Invalid(msg)) => {
            ctx.metrics.invalid(K::MAIN.kind());
            if status_written {
                let note =
                    format!("{msg}. Nothing was applied or deleted; fix the spec (or create what it refers to).");
                events::publish(&ctx, obj.as_ref(), EventType::Warning, "InvalidSpec", "Validate", note).await;
            }
        }
        Some(Problem::ApplyFailed(msg)) => {
            events::publish(&ctx, obj.as_ref(), EventType::Warning, "ApplyFailed", "Apply", msg.clone()).await;
        }
        None => {}
    }
    ctx.metrics.reconciled(K::MAIN.kind(), started.elapsed());

    if let Some(e) = failure {
        return Err(e);
    }
    ctx.backoff.reset(&key(obj.as_ref()));
    Ok(match problem {
        // The cluster may fix an invalid spec (a Service or Secret created).
        Some(_) => Action::requeue(Duration::from_secs(30)),
        // Look again at a blocked roll (the mesh may have been fixed).
        None if blocked.is_some() => Action::requeue(Duration::from_secs(30)),
        // The prerequisites' watches bring the next pass; this is a safety
        // net for a watch the operator may not make (RBAC).
        None if !missing.is_empty() => Action::requeue(Duration::from_secs(120)),
        // Watches of the pods and the StatefulSet bring the next step; this
        // is a safety net.
        None if roll.rolling() => Action::requeue(Duration::from_secs(5)),
        None => Action::requeue(ctx.resync),
    })
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
