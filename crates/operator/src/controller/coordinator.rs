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

use magnetar_api::PulsarCoordinator;
use magnetar_api::status::{ComponentStatus, ManagedComponent, READY};
use magnetar_desired::BuildContext;
use magnetar_desired::cluster::{ClusterKey, Inventory};
use magnetar_desired::propagate;

use super::{Kind, Pass, patch_status};
use crate::apply::{self, Outcome};
use crate::context::{Context, Live};
use crate::controller::component::{ComponentResource, workloads};
use crate::error::Error;
use crate::events;
use crate::kinds::{MainKind, is_istio_group};
use crate::rollout::{self, Decision, Member};
use crate::status::{self, Problem, Workload};

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
    fn of<K: ComponentResource>(obj: &K) -> Option<Self> {
        Some(Linked {
            kind: K::MAIN,
            resource: ApiResource::erase::<K>(&()),
            name: obj.name_any(),
            value: serde_json::to_value(obj).ok()?,
            status: obj.current_status().cloned(),
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
    let mine = |m: &kube::core::ObjectMeta| m.namespace.as_deref() == Some(namespace) && &ClusterKey::of(m) == key;
    fn of<K: ComponentResource>(list: &[K], mine: impl Fn(&kube::core::ObjectMeta) -> bool) -> Vec<Linked> {
        list.iter().filter(|o| mine(o.meta())).filter_map(Linked::of).collect()
    }
    let mut out = of(&inventory.zookeepers, mine);
    out.extend(of(&inventory.bookkeepers, mine));
    out.extend(of(&inventory.brokers, mine));
    out.extend(of(&inventory.proxies, mine));
    out
}

/// What the rolling order decided for each linked component.
struct Propagation {
    members: Vec<Linked>,
    decisions: Vec<Decision>,
    /// `Kind name` of each component the coordinator's fields were written to.
    propagated: Vec<String>,
    /// `Kind name` of each component whose rolling change waits its turn.
    held: Vec<String>,
}

/// Writes the coordinator's fields into its components, one kind at a time
/// for changes that roll pods (SPEC 4.3). Stops at the first failed write.
async fn propagate(ctx: &Context, coord: &PulsarCoordinator, members: Vec<Linked>) -> (Propagation, Result<(), Error>) {
    let ns = coord.namespace().unwrap_or_default();
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
    let (mut propagated, mut held) = (Vec::new(), Vec::new());
    let mut result = Ok(());
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
                        result = Err(Error::Propagate { object: id, source });
                        break;
                    }
                }
            }
        }
    }
    (Propagation { members, decisions, propagated, held }, result)
}

/// Builds and applies the toolset; `Ok(None)` when the spec is invalid
/// (recorded in `pass`).
async fn toolset(
    ctx: &Context,
    coord: &PulsarCoordinator,
    inventory: &Inventory,
    cluster: &ClusterKey,
    live: &[Live],
    pass: &mut Pass,
) -> Option<Outcome> {
    let ns = coord.namespace().unwrap_or_default();
    let bctx = BuildContext {
        peers: inventory.peers(&ns, cluster),
        operator: ctx.identity.clone(),
        migrating: false,
        cluster_domain: ctx.cluster_domain.clone(),
    };
    match magnetar_desired::build_coordinator(coord, &inventory.brokers_of(&ns, cluster), &bctx) {
        Err(invalid) => {
            pass.problem = Some(Problem::Invalid(invalid.to_string()));
            None
        }
        Ok(mut desired) => {
            let istio = ctx.istio_available();
            desired.retain(|o| istio || !is_istio_group(o.group()));
            pass.record(apply::sync(ctx, &ns, &desired, live).await)
        }
    }
}

/// Reconciles one coordinator: propagate → build and apply the toolset →
/// report over its components.
pub async fn reconcile(coord: Arc<PulsarCoordinator>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let queued = format!("{}/{}", coord.namespace().unwrap_or_default(), coord.name_any());
    ctx.metrics.picked_up(PulsarCoordinator::MAIN.kind(), queued);
    if coord.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let coord = coord.as_ref();
    let ns = coord.namespace().unwrap_or_default();
    let name = coord.name_any();
    let cluster = ClusterKey::Coordinator(name.clone());
    let inventory = ctx.inventory(&ns);
    let live = ctx.owned(&ns, &name, &coord.uid().unwrap_or_default());

    let (propagation, propagated) = propagate(&ctx, coord, linked(&inventory, &ns, &cluster)).await;
    let mut pass = Pass::new(None);
    let outcome = match pass.record(propagated) {
        Some(()) => toolset(&ctx, coord, &inventory, &cluster, &live, &mut pass).await,
        None => None,
    };
    report(&ctx, coord, &propagation, &live, outcome.as_ref(), &mut pass).await;
    pass.finish(&ctx, coord, started).await?;
    Ok(Action::requeue(ctx.resync))
}

/// Status over each component and the toolset's workloads, then the Events.
async fn report(
    ctx: &Context,
    coord: &PulsarCoordinator,
    p: &Propagation,
    live: &[Live],
    outcome: Option<&Outcome>,
    pass: &mut Pass,
) {
    let mut views: Vec<ManagedComponent> = p
        .members
        .iter()
        .zip(&p.decisions)
        .map(|(m, d)| ManagedComponent {
            kind: m.kind.kind().into(),
            name: m.name.clone(),
            ready: m.settled() && *d != Decision::Apply,
            message: m.message(),
        })
        .collect();
    for w in workloads(live, outcome).iter().map(Workload::from_value) {
        views.push(ManagedComponent { kind: w.kind.clone(), name: w.name.clone(), ready: w.settled(), message: None });
    }
    let previous = coord.status.as_ref();
    let new_status = status::coordinator_status(
        previous,
        coord.meta().generation,
        views,
        &p.held,
        pass.problem.as_ref(),
        Timestamp::now(),
    );
    let written = pass.status(patch_status(ctx, coord, previous, &new_status).await);
    if !p.propagated.is_empty() {
        let note = format!("wrote the coordinator's image and mesh settings into {}", events::list(&p.propagated));
        events::publish(ctx, coord, EventType::Normal, "Propagated", "Propagate", note).await;
    }
    if !p.held.is_empty() && written {
        let note = format!(
            "holding back a rolling change of {} until the earlier components are Ready with every replica updated (order: ZooKeeper, BookKeeper, brokers, proxies)",
            events::list(&p.held)
        );
        events::publish(ctx, coord, EventType::Normal, "RolloutHeld", "Propagate", note).await;
    }
    if let Some(o) = outcome {
        events::publish_outcome(ctx, coord, o).await;
    }
}
