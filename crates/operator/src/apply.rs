//! Server-side apply of the desired objects and deletion of the ones no
//! longer desired, in one pass (SPEC 4.1).
//!
//! Order: ServiceAccounts, ConfigMaps, Services, PDBs and the Istio security
//! objects are applied first; then the stale objects of those kinds are
//! deleted (so a DestinationRule is gone before a pod moves to ambient,
//! SPEC 4.5); then workloads and routing are applied and the remaining stale
//! objects deleted. Objects of one apply rank go out concurrently. An object
//! that is already as desired is not sent at all (see [`crate::drift`]).

use futures::future::try_join_all;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::DynamicObject;
use serde_json::Value;

use magnetar_desired::Object;

use crate::context::{Context, Live};
use crate::drift::{self, Applied};
use crate::error::Error;
use crate::kinds::{self, Phase};

/// The phase of a desired object's kind (an unknown kind fails in
/// [`apply_one`] before anything is sent in its phase).
fn phase_of(kind: &str) -> Phase {
    kinds::all().find(|c| c.kind == kind).map_or(Phase::Workloads, |c| c.phase())
}

/// The one field manager of every object the operator applies.
pub const FIELD_MANAGER: &str = "magnetar";

/// What one pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `Kind/name` of each object sent.
    pub applied: Vec<String>,
    /// `Kind/name` of each object deleted.
    pub deleted: Vec<String>,
    /// The API server's answers to the applies.
    pub responses: Vec<Value>,
}

fn memory_key(group: &str, kind: &str, namespace: &str, name: &str) -> String {
    format!("{group}/{kind}/{namespace}/{name}")
}

fn is_desired(desired: &[Object], live: &Live) -> bool {
    desired.iter().any(|d| d.group() == live.kind.group && d.kind == live.kind.kind && d.name == live.name)
}

/// Applies `desired` and deletes the objects in `live` (objects the same
/// resource owns) that are not desired.
pub async fn sync(ctx: &Context, namespace: &str, desired: &[Object], live: &[Live]) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let stale: Vec<&Live> = live.iter().filter(|l| !is_desired(desired, l) && !l.deleting()).collect();
    let mut ranks: Vec<(Phase, u8)> = desired.iter().map(|o| (phase_of(&o.kind), o.apply_rank())).collect();
    ranks.sort_unstable();
    ranks.dedup();
    for phase in [Phase::Foundation, Phase::Workloads] {
        for (_, rank) in ranks.iter().filter(|(p, _)| *p == phase) {
            let batch = desired.iter().filter(|o| o.apply_rank() == *rank);
            let results = try_join_all(batch.map(|o| apply_one(ctx, o, live))).await?;
            for (o, response) in results.into_iter().flatten() {
                outcome.applied.push(o);
                outcome.responses.push(response);
            }
        }
        let mut doomed: Vec<&&Live> = stale.iter().filter(|l| l.kind.phase() == phase).collect();
        doomed.sort_by_key(|l| std::cmp::Reverse(l.kind.rank));
        let deleted = try_join_all(doomed.into_iter().map(|l| delete_one(ctx, namespace, l))).await?;
        outcome.deleted.extend(deleted);
    }
    ctx.metrics.add_applied(outcome.applied.len());
    ctx.metrics.add_deleted(outcome.deleted.len());
    Ok(outcome)
}

async fn apply_one(ctx: &Context, o: &Object, live: &[Live]) -> Result<Option<(String, Value)>, Error> {
    let id = format!("{}/{}", o.kind, o.name);
    let child =
        kinds::child(o.group(), &o.kind).ok_or_else(|| Error::UnknownKind(o.api_version.clone(), o.kind.clone()))?;
    let mut value = o.value.clone();
    let hash = drift::desired_hash(&value);
    drift::annotate(&mut value, &hash);
    let key = memory_key(o.group(), &o.kind, &o.namespace, &o.name);
    let current = live.iter().find(|l| l.kind == child && l.name == o.name).map(|l| &l.value);
    if drift::up_to_date(&value, &hash, current, ctx.remembered(&key).as_ref()) {
        return Ok(None);
    }
    if let Some(live) = current {
        let why = drift::first_difference(&value, live).unwrap_or_else(|| "desired object changed".into());
        tracing::debug!(object = %id, namespace = %o.namespace, differs = %why, "live object differs");
        tracing::trace!(object = %id, desired = %value["spec"], live = %live["spec"], "live object differs");
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &o.namespace, &child.resource(Some(o.version())));
    if let Some(replicas) = current.and_then(|live| replicas_to_hand_over(&value, live)) {
        hand_over_replicas(&api, o, replicas).await?;
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let response = api
        .patch(&o.name, &params, &Patch::Apply(&value))
        .await
        .map_err(|source| Error::Apply { object: id.clone(), source })?;
    let response = serde_json::to_value(&response)?;
    ctx.remember(key, Applied { hash, fingerprint: drift::fingerprint(&value, &response) });
    tracing::debug!(object = %id, namespace = %o.namespace, "applied");
    Ok(Some((id, response)))
}

/// Field manager that holds a StatefulSet's replicas for the autoscaler.
pub const HANDOVER_MANAGER: &str = "magnetar-autoscaler-handover";

/// The live replica count when the desired StatefulSet leaves `replicas` to
/// a HorizontalPodAutoscaler but magnetar's apply still owns the field. Left
/// out of an apply, a field only magnetar owns is removed, and the
/// StatefulSet would drop to its default of one pod before the autoscaler
/// acts; so ownership is handed over first (Kubernetes' documented way to
/// transfer a field to an autoscaler).
pub fn replicas_to_hand_over(desired: &Value, live: &Value) -> Option<i64> {
    if desired["kind"] != "StatefulSet" || desired["spec"].get("replicas").is_some() {
        return None;
    }
    let replicas = live["spec"]["replicas"].as_i64()?;
    let entries = live["metadata"]["managedFields"].as_array()?;
    let ours = entries.iter().any(|m| {
        m["manager"] == FIELD_MANAGER
            && m["operation"] == "Apply"
            && m["fieldsV1"]["f:spec"].get("f:replicas").is_some()
    });
    ours.then_some(replicas)
}

/// Applies only `spec.replicas` (the live value, so nothing changes) under
/// [`HANDOVER_MANAGER`]: magnetar's next apply, without the field, then
/// releases it instead of deleting it, and the autoscaler takes it over
/// with its first scale.
async fn hand_over_replicas(api: &Api<DynamicObject>, o: &Object, replicas: i64) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": o.api_version,
        "kind": o.kind,
        "metadata": {"name": o.name, "namespace": o.namespace},
        "spec": {"replicas": replicas},
    });
    let params = PatchParams::apply(HANDOVER_MANAGER).force();
    api.patch(&o.name, &params, &Patch::Apply(&patch))
        .await
        .map_err(|source| Error::Apply { object: format!("{}/{}", o.kind, o.name), source })?;
    tracing::info!(object = %o.name, namespace = %o.namespace, replicas, "replicas handed over to the autoscaler");
    Ok(())
}

async fn delete_one(ctx: &Context, namespace: &str, l: &Live) -> Result<String, Error> {
    let id = format!("{}/{}", l.kind.kind, l.name);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &l.resource);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions { uid: Some(l.uid.clone()), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(&l.name, &params).await {
        Ok(_) => {}
        // Already gone, or replaced by another object of the same name.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(source) => return Err(Error::Delete { object: id, source }),
    }
    ctx.forget(&memory_key(l.kind.group, l.kind.kind, namespace, &l.name));
    tracing::debug!(object = %id, %namespace, "deleted");
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(manager: &str, fields: Value) -> Value {
        json!({"spec": {"replicas": 3}, "metadata": {"managedFields": [
            {"manager": manager, "operation": "Apply", "fieldsV1": {"f:spec": fields}}
        ]}})
    }

    #[test]
    fn replicas_are_handed_over_once_when_an_autoscaler_takes_them() {
        let autoscaled = json!({"kind": "StatefulSet", "spec": {"serviceName": "x"}});
        let fixed = json!({"kind": "StatefulSet", "spec": {"replicas": 2}});
        let owned = live(FIELD_MANAGER, json!({"f:replicas": {}, "f:serviceName": {}}));
        assert_eq!(replicas_to_hand_over(&autoscaled, &owned), Some(3));
        assert_eq!(replicas_to_hand_over(&fixed, &owned), None, "magnetar still sets replicas");
        let released = live(FIELD_MANAGER, json!({"f:serviceName": {}}));
        assert_eq!(replicas_to_hand_over(&autoscaled, &released), None, "already handed over");
        let deployment = json!({"kind": "Deployment", "spec": {}});
        assert_eq!(replicas_to_hand_over(&deployment, &owned), None);
    }
}
