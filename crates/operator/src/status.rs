//! Status computation (SPEC 2): pure functions from what was observed to
//! the status a component or coordinator reports. Conditions keep their
//! lastTransitionTime while their status does not change, so a reconcile that
//! observes nothing new computes an identical status (and writes nothing).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use magnetar_api::status::{
    ComponentStatus, CoordinatorStatus, DEGRADED, EDGE_AUTHENTICATION, EXTERNAL_ACCESS, GATEWAY_ROUTES,
    MESH_CONFIGURED, MONITORING, ManagedComponent, MeshStatus, PROGRESSING, READY, ServiceEndpoints,
};
use magnetar_desired::gateway_api::RouteReport;
use magnetar_desired::mesh::Enrolment;
use magnetar_desired::security;

use crate::migration::{PodView, mode_of};

pub const REASON_MIGRATING: &str = "DataplaneMigration";

/// A workload (StatefulSet or Deployment) as the API server reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub desired: i32,
    pub generation: i64,
    pub observed_generation: i64,
    pub replicas: i32,
    pub ready: i32,
    pub updated: i32,
}

impl Workload {
    /// Reads a live StatefulSet or Deployment as its typed form; an object
    /// that does not parse as one reads as a workload with nothing ready.
    pub fn from_value(v: &Value) -> Self {
        let parsed = match v["kind"].as_str() {
            Some("Deployment") => Deployment::deserialize(v).map(|d| Self::of_deployment(&d)),
            _ => StatefulSet::deserialize(v).map(|s| Self::of_stateful_set(&s)),
        };
        parsed.unwrap_or_else(|_| Workload {
            kind: v["kind"].as_str().unwrap_or_default().to_string(),
            name: v["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            desired: 1,
            generation: 0,
            observed_generation: 0,
            replicas: 0,
            ready: 0,
            updated: 0,
        })
    }

    pub fn of_stateful_set(sts: &StatefulSet) -> Self {
        let status = sts.status.clone().unwrap_or_default();
        Workload {
            kind: "StatefulSet".into(),
            name: sts.metadata.name.clone().unwrap_or_default(),
            desired: sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            generation: sts.metadata.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            replicas: status.replicas,
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
        }
    }

    pub fn of_deployment(deployment: &Deployment) -> Self {
        let status = deployment.status.clone().unwrap_or_default();
        Workload {
            kind: "Deployment".into(),
            name: deployment.metadata.name.clone().unwrap_or_default(),
            desired: deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            generation: deployment.metadata.generation.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            replicas: status.replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
        }
    }

    /// Every replica exists, is Ready and runs the current template.
    pub fn settled(&self) -> bool {
        self.observed_generation >= self.generation
            && self.replicas == self.desired
            && self.ready >= self.desired
            && self.updated >= self.desired
    }

    fn describe(&self) -> String {
        format!(
            "{} {}: {}/{} ready, {}/{} updated{}",
            self.kind,
            self.name,
            self.ready,
            self.desired,
            self.updated,
            self.desired,
            if self.observed_generation < self.generation { ", roll-out not yet observed" } else { "" }
        )
    }
}

/// Why a reconcile did not bring the cluster to the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The spec (or the world it refers to) is invalid; nothing was touched.
    Invalid(String),
    /// Applying or deleting failed; retried with back-off.
    ApplyFailed(String),
}

/// Ready, Progressing and Degraded for a resource that has a problem;
/// `cond` makes one condition (type, status, reason, message).
fn problem_conditions(problem: &Problem, cond: impl Fn(&str, bool, &str, String) -> Condition) -> [Condition; 3] {
    match problem {
        Problem::Invalid(msg) => [
            cond(READY, false, "InvalidSpec", format!("{msg} (nothing was changed in the cluster)")),
            cond(PROGRESSING, false, "InvalidSpec", "waiting for a valid spec".into()),
            cond(DEGRADED, true, "InvalidSpec", msg.clone()),
        ],
        Problem::ApplyFailed(msg) => [
            cond(READY, false, "ApplyFailed", msg.clone()),
            cond(PROGRESSING, true, "Retrying", "retrying with exponential back-off".into()),
            cond(DEGRADED, true, "ApplyFailed", msg.clone()),
        ],
    }
}

/// External access of a broker or proxy with a gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalAccess {
    /// Every prerequisite is there; the Gateway and VirtualServices are applied.
    Routed,
    /// A prerequisite is missing: `(reason, message naming the fix)`.
    Waiting(&'static str, String),
}

/// What a component's status is computed from.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    pub generation: Option<i64>,
    pub label_selector: String,
    /// The component's main StatefulSet (`<n>-<suffix>`), if it exists.
    pub primary: Option<Workload>,
    /// Every other workload the component runs (BookKeeper auto-recovery).
    pub others: Vec<Workload>,
    /// Name of the primary StatefulSet (for messages when it is missing).
    pub primary_name: String,
    pub enrolment: Enrolment,
    pub pods: &'a [PodView],
    pub istio_available: bool,
    pub migrating: bool,
    pub problem: Option<Problem>,
    pub endpoints: Option<ServiceEndpoints>,
    /// A roll-out that cannot go on (ZooKeeper's leader check failed):
    /// `(reason, message naming the fix)`; Progressing and Degraded say so.
    pub blocked: Option<(&'static str, String)>,
    /// A mesh configuration that works but needs attention (DNS capture off):
    /// `(reason, message naming the fix)`; MeshConfigured stays True.
    pub mesh_warning: Option<(&'static str, String)>,
    /// Brokers and proxies with a gateway (None without one).
    pub external: Option<ExternalAccess>,
    /// Exposed through the gateway with Pulsar's authentication off: the
    /// warning naming the fix (`magnetar_desired::security`).
    pub unauthenticated: Option<String>,
    /// Routed through the Gateway API: what its implementation reports of
    /// the routes (None otherwise).
    pub routes: Option<RouteReport>,
    /// `spec.monitoring` on: whether its PodMonitor could be applied.
    pub monitoring: Option<bool>,
    pub previous: Option<&'a ComponentStatus>,
    pub now: Timestamp,
}

/// A condition; keeps the previous lastTransitionTime when status is unchanged.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(truncate(now)));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: last,
        observed_generation: generation,
    }
}

/// Whole seconds: what survives the round trip through the API server.
fn truncate(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// The status of a ZooKeeper, BookKeeper, broker or proxy.
pub fn component_status(o: &Observed) -> ComponentStatus {
    let prev_conditions: &[Condition] = o.previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let generation = o.generation;
    let cond = |t: &str, ok: bool, reason: &str, msg: String| {
        condition(prev_conditions, t, ok, reason, msg, generation, o.now)
    };

    let primary = o.primary.as_ref();
    let (replicas, ready, updated) = primary.map_or((0, 0, 0), |w| (w.replicas, w.ready, w.updated));
    let mode = mode_of(&o.enrolment);
    let on_mesh = i32::try_from(o.pods.iter().filter(|p| p.enrolled(mode)).count()).unwrap_or(i32::MAX);
    let revision = match &o.enrolment {
        Enrolment::Sidecar { revision } => o
            .pods
            .iter()
            .find_map(PodView::injected_revision)
            .or_else(|| Some(revision.clone().unwrap_or_else(|| "default".into()))),
        _ => None,
    };
    let mesh = MeshStatus { dataplane_mode: o.enrolment.mode_name().into(), revision, on_mesh_replicas: on_mesh };

    let workloads: Vec<&Workload> = primary.into_iter().chain(o.others.iter()).collect();
    let all_settled = primary.is_some() && workloads.iter().all(|w| w.settled());
    let waiting: Vec<String> = workloads.iter().filter(|w| !w.settled()).map(|w| w.describe()).collect();

    let mut conditions = Vec::new();
    match &o.problem {
        Some(p) => conditions.extend(problem_conditions(p, cond)),
        None => {
            if all_settled {
                let msg = workloads.iter().map(|w| w.describe()).collect::<Vec<_>>().join("; ");
                conditions.push(cond(READY, true, "AllReplicasReady", msg));
            } else if primary.is_none() {
                conditions.push(cond(
                    READY,
                    false,
                    "WorkloadMissing",
                    format!("StatefulSet {} does not exist yet", o.primary_name),
                ));
            } else {
                conditions.push(cond(READY, false, "ReplicasNotReady", format!("waiting for {}", waiting.join("; "))));
            }
            if let Some((reason, msg)) = &o.blocked {
                conditions.push(cond(PROGRESSING, true, reason, msg.clone()));
            } else if o.migrating {
                conditions.push(cond(
                    PROGRESSING,
                    true,
                    REASON_MIGRATING,
                    format!(
                        "moving pods to {} mode: PeerAuthentication is PERMISSIVE and there are no DestinationRules until every pod is enrolled the new way",
                        o.enrolment.mode_name()
                    ),
                ));
            } else if !all_settled {
                conditions.push(cond(PROGRESSING, true, "RollingOut", format!("waiting for {}", waiting.join("; "))));
            } else {
                conditions.push(cond(PROGRESSING, false, "Stable", "every replica runs the current spec".into()));
            }
            conditions.push(match &o.blocked {
                Some((reason, msg)) => cond(DEGRADED, true, reason, msg.clone()),
                None => cond(DEGRADED, false, "AsExpected", "the cluster matches the spec".into()),
            });
        }
    }
    if o.enrolment.enabled() {
        conditions.push(if !o.istio_available {
            cond(
                MESH_CONFIGURED,
                false,
                "IstioNotInstalled",
                "the API server does not serve security.istio.io and networking.istio.io: the Pulsar workloads run, but no Istio object was created; install Istio (its CRDs) and magnetar configures the mesh without a restart".into(),
            )
        } else if matches!(o.problem, Some(Problem::Invalid(_))) {
            cond(MESH_CONFIGURED, false, "InvalidSpec", "Istio objects left as they were until the spec is valid".into())
        } else if matches!(o.problem, Some(Problem::ApplyFailed(_))) {
            cond(MESH_CONFIGURED, false, "ApplyFailed", "some Istio objects could not be applied; see Degraded".into())
        } else {
            let enrolled = format!("{} mode; {} of {} pods enrolled", o.enrolment.mode_name(), on_mesh, o.pods.len());
            match &o.mesh_warning {
                Some((reason, msg)) => cond(MESH_CONFIGURED, true, reason, format!("{enrolled}; {msg}")),
                None => cond(MESH_CONFIGURED, true, "IstioObjectsApplied", enrolled),
            }
        });
    }

    if let Some(external) = &o.external {
        conditions.push(match (&o.problem, external) {
            (Some(Problem::Invalid(_)), _) => {
                cond(EXTERNAL_ACCESS, false, "InvalidSpec", "the gateway objects wait for a valid spec".into())
            }
            (Some(Problem::ApplyFailed(_)), _) => {
                cond(EXTERNAL_ACCESS, false, "ApplyFailed", "some objects could not be applied; see Degraded".into())
            }
            (None, ExternalAccess::Waiting(reason, msg)) => cond(EXTERNAL_ACCESS, false, reason, msg.clone()),
            (None, ExternalAccess::Routed) => cond(
                EXTERNAL_ACCESS,
                true,
                "GatewayRoutesApplied",
                "the gateway's pods and TLS secret are there; the Gateway and VirtualServices are applied".into(),
            ),
        });
    }

    if o.external.is_some() {
        conditions.push(match &o.unauthenticated {
            Some(msg) => cond(EDGE_AUTHENTICATION, false, security::REASON_UNAUTHENTICATED, msg.clone()),
            None => cond(
                EDGE_AUTHENTICATION,
                true,
                security::REASON_AUTHENTICATED,
                "Pulsar's own authentication guards what the gateway exposes".into(),
            ),
        });
    }

    if let Some(r) = &o.routes {
        conditions.push(cond(GATEWAY_ROUTES, r.ok, r.reason, r.message.clone()));
    }
    match o.monitoring {
        Some(true) => conditions.push(cond(
            MONITORING,
            true,
            "PodMonitorApplied",
            "the PodMonitor is applied; a Prometheus that selects it scrapes the pods".into(),
        )),
        Some(false) => conditions.push(cond(
            MONITORING,
            false,
            "PodMonitorCRDMissing",
            "spec.monitoring is on but the cluster does not serve prometheus-operator's PodMonitor (monitoring.coreos.com/v1): install prometheus-operator's CRDs; the PodMonitor follows when they appear".into(),
        )),
        None => {}
    }

    ComponentStatus {
        replicas,
        ready_replicas: ready,
        updated_replicas: updated,
        observed_generation: generation,
        label_selector: Some(o.label_selector.clone()),
        mesh: Some(mesh),
        service_endpoints: o.endpoints.clone(),
        conditions,
    }
}

/// The coordinator's status: its components and Ready over all of them.
pub fn coordinator_status(
    previous: Option<&CoordinatorStatus>,
    generation: Option<i64>,
    members: Vec<ManagedComponent>,
    held: &[String],
    problem: Option<&Problem>,
    now: Timestamp,
) -> CoordinatorStatus {
    let prev: &[Condition] = previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let cond = |t: &str, ok: bool, reason: &str, msg: String| condition(prev, t, ok, reason, msg, generation, now);
    let not_ready: Vec<String> =
        members.iter().filter(|m| !m.ready).map(|m| format!("{} {}", m.kind, m.name)).collect();
    let mut conditions = Vec::new();
    match problem {
        Some(p) => conditions.extend(problem_conditions(p, cond)),
        None => {
            if members.is_empty() {
                // Not vacuously Ready: `kubectl wait` right after applying a
                // cluster must not return before its components are seen.
                let msg = "no component carries the label k8s.streamnative.io/coordinator-name with this coordinator's name: label the ZooKeeperCluster, BookKeeperCluster, PulsarBroker and PulsarProxy to manage";
                conditions.push(cond(READY, false, "NoComponents", msg.to_string()));
            } else if not_ready.is_empty() && held.is_empty() {
                let msg = format!("all {} managed components are Ready", members.len());
                conditions.push(cond(READY, true, "AllComponentsReady", msg));
            } else {
                let mut parts = Vec::new();
                if !not_ready.is_empty() {
                    parts.push(format!("not Ready: {}", not_ready.join(", ")));
                }
                if !held.is_empty() {
                    parts.push(format!("waiting to roll: {}", held.join(", ")));
                }
                conditions.push(cond(READY, false, "ComponentsNotReady", parts.join("; ")));
            }
            if held.is_empty() && not_ready.is_empty() {
                conditions.push(cond(
                    PROGRESSING,
                    false,
                    "Stable",
                    "every component runs the coordinator's settings".into(),
                ));
            } else if held.is_empty() {
                conditions.push(cond(PROGRESSING, true, "RollingOut", format!("waiting for {}", not_ready.join(", "))));
            } else {
                conditions.push(cond(
                    PROGRESSING,
                    true,
                    "RollingInOrder",
                    format!(
                        "rolling one kind at a time (ZooKeeper, BookKeeper, brokers, proxies); waiting to roll {}",
                        held.join(", ")
                    ),
                ));
            }
            conditions.push(cond(DEGRADED, false, "AsExpected", "the components match the coordinator".into()));
        }
    }
    CoordinatorStatus { observed_generation: generation, components: members, conditions }
}

/// A merge patch that turns `old` into `new`: `new` with explicit nulls for
/// keys `old` has and `new` lacks (objects only; arrays are replaced).
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = serde_json::Map::new();
            for (k, nv) in n {
                out.insert(k.clone(), merge_patch(o.get(k).unwrap_or(&Value::Null), nv));
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        (_, n) => n.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts(desired: i32, ready: i32, updated: i32, gen_: i64, observed: i64) -> Workload {
        use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let sts = StatefulSet {
            metadata: ObjectMeta { name: Some("pc-zk".into()), generation: Some(gen_), ..Default::default() },
            spec: Some(StatefulSetSpec { replicas: Some(desired), ..Default::default() }),
            status: Some(StatefulSetStatus {
                replicas: desired,
                ready_replicas: Some(ready),
                updated_replicas: Some(updated),
                observed_generation: Some(observed),
                ..Default::default()
            }),
        };
        // Through its JSON, as the operator reads it from the cache.
        Workload::from_value(&serde_json::to_value(&sts).unwrap())
    }

    fn observed<'a>(primary: Option<Workload>, previous: Option<&'a ComponentStatus>) -> Observed<'a> {
        Observed {
            generation: Some(3),
            label_selector: "a=b".into(),
            primary,
            others: vec![],
            primary_name: "pc-zk".into(),
            enrolment: Enrolment::Sidecar { revision: None },
            pods: &[],
            istio_available: true,
            migrating: false,
            problem: None,
            endpoints: None,
            blocked: None,
            mesh_warning: None,
            external: None,
            unauthenticated: None,
            routes: None,
            monitoring: None,
            previous,
            now: Timestamp::from_second(1_700_000_000).unwrap(),
        }
    }

    fn get<'a>(s: &'a ComponentStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn ready_when_every_replica_is_ready_and_updated() {
        let s = component_status(&observed(Some(sts(3, 3, 3, 2, 2)), None));
        assert_eq!(get(&s, READY).status, "True");
        assert_eq!(get(&s, PROGRESSING).status, "False");
        assert_eq!(get(&s, DEGRADED).status, "False");
        assert_eq!(get(&s, MESH_CONFIGURED).status, "True");
        assert_eq!((s.replicas, s.ready_replicas, s.updated_replicas), (3, 3, 3));
        assert_eq!(s.mesh.as_ref().unwrap().dataplane_mode, "sidecar");
        assert_eq!(s.mesh.as_ref().unwrap().revision.as_deref(), Some("default"));
        assert_eq!(s.observed_generation, Some(3));
        for (desired, ready, updated, g, og) in [(3, 2, 3, 2, 2), (3, 3, 2, 2, 2), (3, 3, 3, 3, 2)] {
            let s = component_status(&observed(Some(sts(desired, ready, updated, g, og)), None));
            assert_eq!(get(&s, READY).status, "False");
            assert_eq!(get(&s, PROGRESSING).status, "True");
        }
        let s = component_status(&observed(None, None));
        assert_eq!(get(&s, READY).reason, "WorkloadMissing");
    }

    #[test]
    fn unchanged_observation_gives_an_identical_status() {
        let first = component_status(&observed(Some(sts(3, 3, 3, 2, 2)), None));
        let mut later = observed(Some(sts(3, 3, 3, 2, 2)), Some(&first));
        later.now = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(component_status(&later), first);
        // A transition gets a new time.
        let changed = component_status(&Observed { primary: Some(sts(3, 1, 3, 2, 2)), ..later });
        assert_ne!(get(&changed, READY).last_transition_time, get(&first, READY).last_transition_time);
    }

    #[test]
    fn invalid_spec_and_missing_istio_are_reported_with_a_fix() {
        let mut o = observed(Some(sts(3, 3, 3, 2, 2)), None);
        o.problem = Some(Problem::Invalid("spec.zkServers: no Service x".into()));
        o.istio_available = false;
        let s = component_status(&o);
        assert_eq!(get(&s, READY).reason, "InvalidSpec");
        assert_eq!(get(&s, DEGRADED).status, "True");
        assert!(get(&s, DEGRADED).message.contains("zkServers"));
        assert_eq!(get(&s, MESH_CONFIGURED).reason, "IstioNotInstalled");
        o.enrolment = Enrolment::Disabled;
        let s = component_status(&o);
        assert!(s.conditions.iter().all(|c| c.type_ != MESH_CONFIGURED));
        assert_eq!(s.mesh.unwrap().dataplane_mode, "none");
    }

    #[test]
    fn a_blocked_roll_is_progressing_and_degraded_with_the_fix() {
        let mut o = observed(Some(sts(3, 3, 0, 2, 2)), None);
        o.blocked = Some(("LeaderCheckFailed", "set cloud.streamnative.io/ignore-leader-check".into()));
        let s = component_status(&o);
        assert_eq!(get(&s, PROGRESSING).status, "True");
        assert_eq!(get(&s, PROGRESSING).reason, "LeaderCheckFailed");
        assert!(get(&s, PROGRESSING).message.contains("ignore-leader-check"));
        assert_eq!(get(&s, DEGRADED).status, "True");
        assert_eq!(get(&s, DEGRADED).reason, "LeaderCheckFailed");
        assert_eq!(get(&s, READY).status, "False");
    }

    /// A broker the gateway exposes says whether Pulsar authenticates its
    /// clients; without a gateway there is no such condition.
    #[test]
    fn exposure_without_authentication_is_a_false_edge_condition() {
        let sts = Some(sts(3, 3, 3, 3, 3));
        let exposed = Observed {
            external: Some(ExternalAccess::Routed),
            unauthenticated: Some("turn it on".into()),
            ..observed(sts.clone(), None)
        };
        let c = get(&component_status(&exposed), EDGE_AUTHENTICATION).clone();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            ("False", "ExposedWithoutAuthentication", "turn it on")
        );
        let guarded = Observed { unauthenticated: None, ..exposed.clone() };
        assert_eq!(get(&component_status(&guarded), EDGE_AUTHENTICATION).status, "True");
        let inside = component_status(&observed(sts, None));
        assert!(inside.conditions.iter().all(|c| c.type_ != EDGE_AUTHENTICATION));
    }

    #[test]
    fn a_mesh_warning_keeps_mesh_configured_true() {
        let mut o = observed(Some(sts(2, 2, 2, 1, 1)), None);
        o.mesh_warning = Some(("DNSCaptureOff", "set ISTIO_META_DNS_CAPTURE".into()));
        let s = component_status(&o);
        let m = get(&s, MESH_CONFIGURED);
        assert_eq!((m.status.as_str(), m.reason.as_str()), ("True", "DNSCaptureOff"));
        assert!(m.message.contains("sidecar mode") && m.message.contains("ISTIO_META_DNS_CAPTURE"), "{}", m.message);
        assert_eq!(get(&s, READY).status, "True");
    }

    #[test]
    fn migration_is_progress() {
        let mut o = observed(Some(sts(3, 3, 3, 2, 2)), None);
        o.migrating = true;
        o.enrolment = Enrolment::Ambient;
        let s = component_status(&o);
        assert_eq!(get(&s, PROGRESSING).reason, REASON_MIGRATING);
        assert_eq!(get(&s, READY).status, "True");
        assert_eq!(s.mesh.unwrap().revision, None);
    }

    #[test]
    fn onmesh_counts_enrolled_pods_only() {
        let mut a = std::collections::BTreeMap::new();
        a.insert(magnetar_api::labels::SIDECAR_STATUS.to_string(), r#"{"revision":"canary"}"#.to_string());
        let pods = [PodView { annotations: a, ..Default::default() }, PodView::default()];
        let mut o = observed(Some(sts(2, 2, 2, 1, 1)), None);
        o.pods = &pods;
        let s = component_status(&o);
        let mesh = s.mesh.unwrap();
        assert_eq!(mesh.on_mesh_replicas, 1);
        assert_eq!(mesh.revision.as_deref(), Some("canary"));
    }

    #[test]
    fn coordinator_ready_over_its_components() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let m = |ready| ManagedComponent { kind: "ZooKeeperCluster".into(), name: "pc".into(), ready, message: None };
        let s = coordinator_status(None, Some(1), vec![m(true)], &[], None, now);
        assert_eq!(s.conditions[0].status, "True");
        let s = coordinator_status(None, Some(1), vec![m(false)], &[], None, now);
        assert_eq!(s.conditions[0].status, "False");
        assert!(s.conditions[0].message.contains("ZooKeeperCluster pc"));
        let s = coordinator_status(None, Some(1), vec![m(true)], &["PulsarBroker pc".into()], None, now);
        assert_eq!(s.conditions[1].reason, "RollingInOrder");
        let s = coordinator_status(None, Some(1), vec![], &[], None, now);
        assert_eq!((s.conditions[0].status.as_str(), s.conditions[0].reason.as_str()), ("False", "NoComponents"));
    }

    #[test]
    fn merge_patch_removes_vanished_fields() {
        let old = json!({"a": 1, "b": {"c": 1, "d": 2}, "e": [1]});
        let new = json!({"b": {"c": 2}, "e": []});
        assert_eq!(merge_patch(&old, &new), json!({"a": null, "b": {"c": 2, "d": null}, "e": []}));
    }
}
