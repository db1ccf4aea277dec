//! The coordinator controller: propagates its settings into the components
//! linked to it (server-side apply with its own field manager), one kind at a
//! time for changes that roll pods (SPEC 4.3), runs the toolset, and reports
//! Ready over its components.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::Value;

use magnetar_api::status::{ComponentStatus, READY};
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};
use magnetar_desired::BuildContext;
use magnetar_desired::cluster::{ClusterKey, Inventory};
use magnetar_desired::propagate;

use super::{Kind, key, patch_status};
use crate::Error;
use crate::apply;
use crate::context::Context;
use crate::controller::component::workloads;
use crate::events;
use crate::kinds::{MainKind, is_istio_group};
use crate::rollout::{self, Decision, Member};
use crate::status::{self, MemberView, Problem, Workload};

/// A component linked to the coordinator.
struct Linked {
    kind: MainKind,
    resource: ApiResource,
    name: String,
    value: Value,
    status: Option<ComponentStatus>,
    generation: Option<i64>,
}

impl Linked {
    fn of<K: Resource<DynamicType = ()> + Kind + serde::Serialize>(
        obj: &K,
        status: Option<&ComponentStatus>,
    ) -> Option<Self> {
        Some(Linked {
            kind: K::MAIN,
            resource: ApiResource::erase::<K>(&()),
            name: obj.name_any(),
            value: serde_json::to_value(obj).ok()?,
            status: status.cloned(),
            generation: obj.meta().generation,
        })
    }

    /// Ready for the current generation: every replica Ready and updated.
    fn settled(&self) -> bool {
        let Some(s) = &self.status else { return false };
        s.observed_generation == self.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == READY && c.status == "True" && c.observed_generation == self.generation)
    }

    fn running(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.replicas > 0)
    }

    fn message(&self) -> Option<String> {
        let s = self.status.as_ref()?;
        s.conditions.iter().find(|c| c.type_ == READY && c.status != "True").map(|c| c.message.clone())
    }
}

fn linked(inventory: &Inventory, namespace: &str, key: &ClusterKey) -> Vec<Linked> {
    fn mine<K: Resource>(o: &K, namespace: &str, key: &ClusterKey) -> bool {
        o.meta().namespace.as_deref() == Some(namespace) && &ClusterKey::of(o.meta()) == key
    }
    let mut out = Vec::new();
    out.extend(
        inventory
            .zookeepers
            .iter()
            .filter(|o| mine(*o, namespace, key))
            .filter_map(|o: &ZooKeeperCluster| Linked::of(o, o.status.as_ref())),
    );
    out.extend(
        inventory
            .bookkeepers
            .iter()
            .filter(|o| mine(*o, namespace, key))
            .filter_map(|o: &BookKeeperCluster| Linked::of(o, o.status.as_ref())),
    );
    out.extend(
        inventory
            .brokers
            .iter()
            .filter(|o| mine(*o, namespace, key))
            .filter_map(|o: &PulsarBroker| Linked::of(o, o.status.as_ref())),
    );
    out.extend(
        inventory
            .proxies
            .iter()
            .filter(|o| mine(*o, namespace, key))
            .filter_map(|o: &PulsarProxy| Linked::of(o, o.status.as_ref())),
    );
    out
}

/// Reconciles one coordinator.
pub async fn reconcile(coord: Arc<PulsarCoordinator>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let queued = format!("{}/{}", coord.namespace().unwrap_or_default(), coord.name_any());
    ctx.metrics.picked_up(PulsarCoordinator::MAIN.kind(), queued);
    if coord.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = coord.namespace().unwrap_or_default();
    let name = coord.name_any();
    let uid = coord.uid().unwrap_or_default();
    let cluster = ClusterKey::Coordinator(name.clone());
    let inventory = ctx.inventory(&ns);
    let members = linked(&inventory, &ns, &cluster);

    // Propagation, gated by the rolling order.
    let fields: Vec<_> =
        members.iter().map(|m| propagate::fields(&coord.spec, &m.value, rollout::owned(&m.value))).collect();
    let plan: Vec<Member> = members
        .iter()
        .zip(&fields)
        .map(|(m, f)| Member {
            rank: m.kind.rank(),
            change: rollout::change(&m.value, f),
            settled: m.settled(),
            running: m.running(),
        })
        .collect();
    let decisions = rollout::plan(&plan);
    let mut propagated = Vec::new();
    let mut held = Vec::new();
    let mut failure = None;
    for ((m, f), d) in members.iter().zip(fields).zip(&decisions) {
        let id = format!("{} {}", m.kind.kind(), m.name);
        match d {
            Decision::Nothing => {}
            Decision::Hold => held.push(id),
            Decision::Apply => {
                let body = propagate::apply_body(&m.value, f);
                let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &m.resource);
                let params = PatchParams::apply(propagate::FIELD_MANAGER).force();
                match api.patch(&m.name, &params, &Patch::Apply(&body)).await {
                    Ok(_) => propagated.push(id),
                    Err(source) => {
                        failure = Some(Error::Propagate { object: id, source });
                        break;
                    }
                }
            }
        }
    }

    // The toolset.
    let brokers = inventory.brokers_of(&ns, &cluster);
    let bctx = BuildContext {
        peers: inventory.peers(&ns, &cluster),
        operator: ctx.identity.clone(),
        migrating: false,
        cluster_domain: ctx.cluster_domain.clone(),
    };
    let live = ctx.owned(&ns, &name, &uid);
    let mut problem = failure.as_ref().map(|e| Problem::ApplyFailed(e.to_string()));
    let mut outcome = None;
    if failure.is_none() {
        match magnetar_desired::build_coordinator(&coord, &brokers, &bctx) {
            Err(invalid) => problem = Some(Problem::Invalid(invalid.to_string())),
            Ok(mut desired) => {
                let istio = ctx.istio_available();
                desired.retain(|o| istio || !is_istio_group(o.group()));
                match apply::sync(&ctx, &ns, &desired, &live).await {
                    Ok(o) => outcome = Some(o),
                    Err(e) => {
                        problem = Some(Problem::ApplyFailed(e.to_string()));
                        failure = Some(e);
                    }
                }
            }
        }
    }

    // Status: each component, and the toolset's workloads.
    let mut views: Vec<MemberView> = members
        .iter()
        .zip(&decisions)
        .map(|(m, d)| MemberView {
            kind: m.kind.kind().into(),
            name: m.name.clone(),
            ready: m.settled() && *d != Decision::Apply,
            message: m.message(),
        })
        .collect();
    for w in workloads(&live, outcome.as_ref()).iter().map(Workload::from_value) {
        views.push(MemberView { kind: w.kind.clone(), name: w.name.clone(), ready: w.settled(), message: None });
    }
    let previous = coord.status.as_ref();
    let new_status =
        status::coordinator_status(previous, coord.meta().generation, views, &held, problem.as_ref(), Timestamp::now());
    let written = match patch_status(&ctx, coord.as_ref(), previous, &new_status).await {
        Ok(w) => w,
        Err(e) => {
            failure.get_or_insert(e);
            false
        }
    };

    // Events.
    if !propagated.is_empty() {
        let note = format!("wrote the coordinator's image and mesh settings into {}", events::list(&propagated));
        events::publish(&ctx, coord.as_ref(), EventType::Normal, "Propagated", "Propagate", note).await;
    }
    if !held.is_empty() && written {
        let note = format!(
            "holding back a rolling change of {} until the earlier components are Ready with every replica updated (order: ZooKeeper, BookKeeper, brokers, proxies)",
            events::list(&held)
        );
        events::publish(&ctx, coord.as_ref(), EventType::Normal, "RolloutHeld", "Propagate", note).await;
    }
    if let Some(o) = &outcome {
        events::publish_outcome(&ctx, coord.as_ref(), o).await;
    }
    match &problem {
        Some(Problem::Invalid(msg)) if written => {
            ctx.metrics.invalid(PulsarCoordinator::MAIN.kind());
            events::publish(&ctx, coord.as_ref(), EventType::Warning, "InvalidSpec", "Validate", msg.clone()).await;
        }
        Some(Problem::ApplyFailed(msg)) => {
            events::publish(&ctx, coord.as_ref(), EventType::Warning, "ApplyFailed", "Apply", msg.clone()).await;
        }
        _ => {}
    }
    ctx.metrics.reconciled(PulsarCoordinator::MAIN.kind(), started.elapsed());
    if let Some(e) = failure {
        return Err(e);
    }
    ctx.backoff.reset(&key(coord.as_ref()));
    Ok(Action::requeue(ctx.resync))
}
