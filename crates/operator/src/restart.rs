//! ZooKeeper restarts in leader order (SPEC 4.4).
//!
//! ZooKeeper's StatefulSet has `updateStrategy: OnDelete`: the StatefulSet
//! controller recreates a deleted pod with the new template but replaces
//! nothing by itself. When a pod's `controller-revision-hash` differs from the
//! StatefulSet's `updateRevision`, the operator deletes the outdated pods one
//! at a time, each after the previous replacement is Ready: followers first
//! (highest ordinal first), the leader last. The role comes from the `srvr`
//! four-letter word on port 2181 (`Mode: leader|follower|standalone`).
//!
//! With the annotation `cloud.streamnative.io/ignore-leader-check: "true"`
//! the roles are not asked and pods restart in reverse ordinal order. When a
//! role cannot be read (the operator outside the mesh, ZooKeeper STRICT), no
//! pod is restarted and the status names the annotation as the fix.
//!
//! [`step`] and [`restart_order`] are the pure decisions; [`roll`] runs them
//! against the cluster.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use kube::runtime::events::EventType;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use magnetar_api::labels::IGNORE_LEADER_CHECK;
use magnetar_desired::names::{self, Component};
use magnetar_desired::ports::ZK_CLIENT;

use crate::context::Context;
use crate::error::Error;
use crate::events;

/// Label the StatefulSet controller puts on each pod: its template revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Condition reason when the leader check fails.
pub const REASON_LEADER_CHECK_FAILED: &str = "LeaderCheckFailed";
/// How long one `srvr` question may take.
pub const SRVR_TIMEOUT: Duration = Duration::from_secs(2);

/// A ZooKeeper server's role, from `srvr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Observer,
    Standalone,
    ReadOnly,
}

/// Each role and its name in `srvr`'s `Mode:` line.
const ROLES: [(Role, &str); 5] = [
    (Role::Leader, "leader"),
    (Role::Follower, "follower"),
    (Role::Observer, "observer"),
    (Role::Standalone, "standalone"),
    (Role::ReadOnly, "read-only"),
];

impl Role {
    pub fn name(self) -> &'static str {
        ROLES.iter().find(|(r, _)| *r == self).map_or("", |(_, n)| n)
    }
}

/// The role in a `srvr` answer (its `Mode:` line).
pub fn parse_srvr(answer: &str) -> Result<Role, String> {
    let mode = answer.lines().find_map(|l| l.trim().strip_prefix("Mode:")).map(str::trim);
    match mode {
        Some(mode) => ROLES
            .iter()
            .find(|(_, n)| *n == mode)
            .map(|(r, _)| *r)
            .ok_or_else(|| format!("unknown mode {mode:?} in the srvr answer")),
        None if answer.trim().is_empty() => Err("the connection closed without an answer to srvr".into()),
        None => {
            let first = answer.lines().next().unwrap_or_default().trim();
            Err(format!("no Mode line in the srvr answer ({first:?})"))
        }
    }
}

/// Sends ZooKeeper's four-letter word `word` to the server at `addr`
/// (`ip:port` or `host:port`) and returns its answer (at most 64 KiB).
pub async fn four_letter_word(addr: &str, word: &str, timeout: Duration) -> Result<String, String> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("cannot connect: {e}"))?;
        stream.write_all(word.as_bytes()).await.map_err(|e| format!("cannot send {word}: {e}"))?;
        let mut answer = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut answer).await.map_err(|e| format!("reading the answer: {e}"))?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(timeout, ask).await.map_err(|_| format!("no answer within {}s", timeout.as_secs_f32()))?
}

/// Asks the server at `addr` (`ip:port` or `host:port`) for its role.
pub async fn ask_role(addr: &str, timeout: Duration) -> Result<Role, String> {
    parse_srvr(&four_letter_word(addr, "srvr", timeout).await?)
}

/// A ZooKeeper pod as the roll sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZkPod {
    pub name: String,
    pub uid: String,
    pub ordinal: i32,
    /// Its `controller-revision-hash`.
    pub revision: Option<String>,
    pub ready: bool,
    pub terminating: bool,
    /// Where its client port is: `<ip>:2181`, or its headless DNS name.
    pub address: String,
}

/// The ordinal of a StatefulSet pod (`<sts>-<i>`).
pub fn ordinal(pod: &str) -> Option<i32> {
    pod.rsplit_once('-')?.1.parse().ok()
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Every pod runs the update revision: nothing to restart.
    UpToDate,
    /// A restart is under way, or the StatefulSet has not caught up: wait.
    Wait(String),
    /// Restart this outdated pod without asking roles: it is not Ready, so
    /// it serves nothing (and a broken old template may be why).
    Restart(ZkPod),
    /// Ask these outdated, Ready pods for their role, then restart the first
    /// of [`restart_order`].
    AskRoles(Vec<ZkPod>),
}

/// The StatefulSet as the roll sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StsView {
    pub replicas: i32,
    pub update_revision: Option<String>,
    /// `status.observedGeneration >= metadata.generation`.
    pub observed: bool,
}

impl StsView {
    /// Reads a live StatefulSet as its typed form; one that does not parse
    /// reads as not yet observed.
    pub fn from_value(sts: &Value) -> Self {
        StatefulSet::deserialize(sts).map(|s| Self::of(&s)).unwrap_or_default()
    }

    pub fn of(sts: &StatefulSet) -> Self {
        let status = sts.status.as_ref();
        let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
        StsView {
            replicas: sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            update_revision: status.and_then(|s| s.update_revision.clone()),
            observed: observed >= sts.metadata.generation.unwrap_or(0),
        }
    }
}

/// The next step of a roll (pure).
pub fn step(sts: &StsView, pods: &[ZkPod]) -> Step {
    let Some(update) = sts.update_revision.as_deref().filter(|_| sts.observed) else {
        return Step::Wait("the StatefulSet controller has not yet observed the new template".into());
    };
    // Pods above the desired count are going away (scale-down): not ours.
    let pods: Vec<&ZkPod> = pods.iter().filter(|p| p.ordinal < sts.replicas).collect();
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return Step::Wait(format!("pod {} is terminating", p.name));
    }
    let running = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    if running < sts.replicas {
        return Step::Wait(format!("{running} of {} pods exist", sts.replicas));
    }
    let (updated, outdated): (Vec<&ZkPod>, Vec<&ZkPod>) =
        pods.iter().partition(|p| p.revision.as_deref() == Some(update));
    if outdated.is_empty() {
        return Step::UpToDate;
    }
    if let Some(p) = updated.iter().find(|p| !p.ready) {
        return Step::Wait(format!("pod {} (new template) is not Ready yet", p.name));
    }
    if let Some(p) = outdated.iter().filter(|p| !p.ready).max_by_key(|p| p.ordinal) {
        return Step::Restart((*p).clone());
    }
    Step::AskRoles(outdated.into_iter().cloned().collect())
}

/// The order in which to restart `outdated` pods (pure): with roles,
/// everything but the leader first (highest ordinal first), the leader last;
/// without roles (`ignore-leader-check`), reverse ordinal order.
pub fn restart_order(outdated: &[ZkPod], roles: Option<&BTreeMap<String, Role>>) -> Vec<String> {
    let mut pods: Vec<&ZkPod> = outdated.iter().collect();
    pods.sort_by(|a, b| b.ordinal.cmp(&a.ordinal).then_with(|| a.name.cmp(&b.name)));
    if let Some(roles) = roles {
        // Stable: followers keep their reverse ordinal order.
        pods.sort_by_key(|p| roles.get(&p.name) == Some(&Role::Leader));
    }
    pods.into_iter().map(|p| p.name.clone()).collect()
}

/// The fix-naming message of a failed leader check.
pub fn check_failed_message(failures: &[(String, String, String)]) -> String {
    let what =
        failures.iter().map(|(pod, addr, err)| format!("pod {pod} ({addr}): {err}")).collect::<Vec<_>>().join("; ");
    format!(
        "the new pod template is not rolled out: the ZooKeeper leader check (srvr on port {ZK_CLIENT}) failed for {what}, \
         so no pod was restarted. If the operator runs outside the mesh and ZooKeeper requires STRICT mTLS it cannot \
         reach ZooKeeper: set the annotation {IGNORE_LEADER_CHECK}: \"true\" on the ZooKeeperCluster to restart the \
         pods in reverse ordinal order without the check"
    )
}

/// The outcome of one roll pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to restart.
    Idle,
    /// Waiting for the StatefulSet or a replacement pod.
    Waiting,
    /// A pod was deleted (its replacement comes with the new template).
    Restarted,
    /// The leader check failed: nothing restarted; the message names the fix.
    CheckFailed(String),
}

impl Outcome {
    /// A roll is under way or blocked: worth a look again soon.
    pub fn rolling(&self) -> bool {
        !matches!(self, Outcome::Idle)
    }
}

fn pod_view(p: &Pod, headless_host: &str) -> ZkPod {
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let ip = status.and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse::<IpAddr>().ok());
    let address = match ip {
        Some(ip) => SocketAddr::new(ip, ZK_CLIENT as u16).to_string(),
        None => format!("{name}.{headless_host}:{ZK_CLIENT}"),
    };
    ZkPod {
        ordinal: ordinal(&name).unwrap_or(-1),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        revision: p.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).cloned(),
        ready,
        terminating: p.metadata.deletion_timestamp.is_some(),
        address,
        name,
    }
}

/// Does the cached pod metadata say every pod runs `update`? (Saves a pod
/// list on every reconcile of a settled cluster.)
fn cache_up_to_date(ctx: &Context, namespace: &str, instance: &str, sts: &StsView) -> bool {
    let Some(update) = sts.update_revision.as_deref().filter(|_| sts.observed) else { return false };
    let pods = ctx.pods_of(namespace, Component::ZooKeeper, instance);
    i32::try_from(pods.len()).ok() == Some(sts.replicas)
        && pods.iter().all(|p| p.labels.get(REVISION_LABEL).map(String::as_str) == Some(update))
}

/// Asks every pod for its role; on any failure, the fix-naming message.
async fn ask_roles(pods: &[ZkPod]) -> Result<BTreeMap<String, Role>, String> {
    let answers = futures::future::join_all(pods.iter().map(|p| ask_role(&p.address, SRVR_TIMEOUT))).await;
    let mut roles = BTreeMap::new();
    let mut failures = Vec::new();
    for (p, answer) in pods.iter().zip(answers) {
        match answer {
            Ok(role) => {
                roles.insert(p.name.clone(), role);
            }
            Err(e) => failures.push((p.name.clone(), p.address.clone(), e)),
        }
    }
    if !failures.is_empty() {
        failures.sort();
        return Err(check_failed_message(&failures));
    }
    let described: Vec<String> = roles.iter().map(|(n, r)| format!("{n}={}", r.name())).collect();
    tracing::info!(roles = %described.join(","), "ZooKeeper roles");
    Ok(roles)
}

/// One pass of the roll of a ZooKeeperCluster whose live StatefulSet is `sts`.
pub async fn roll<K: Resource<DynamicType = ()>>(ctx: &Context, zk: &K, sts: &Value) -> Result<Outcome, Error> {
    let meta = zk.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let instance = meta.name.clone().unwrap_or_default();
    let view = StsView::from_value(sts);
    if cache_up_to_date(ctx, &namespace, &instance, &view) {
        return Ok(Outcome::Idle);
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let selector = names::selector_string(Component::ZooKeeper, &instance);
    let list = api.list(&ListParams::default().labels(&selector)).await.map_err(Error::Check)?;
    let headless = Component::ZooKeeper.headless_name(&instance);
    let headless_host = magnetar_desired::names::service_host(&headless, &namespace, &ctx.cluster_domain);
    let pods: Vec<ZkPod> = list.items.iter().map(|p| pod_view(p, &headless_host)).collect();

    let (pod, why) = match step(&view, &pods) {
        Step::UpToDate => return Ok(Outcome::Idle),
        Step::Wait(why) => {
            tracing::debug!(zookeeper = %instance, %why, "ZooKeeper roll waits");
            return Ok(Outcome::Waiting);
        }
        Step::Restart(p) => (p, "it is not Ready".to_string()),
        Step::AskRoles(outdated) => {
            let ignore =
                meta.annotations.as_ref().and_then(|a| a.get(IGNORE_LEADER_CHECK)).map(String::as_str) == Some("true");
            let (order, roles) = if ignore {
                (restart_order(&outdated, None), None)
            } else {
                match ask_roles(&outdated).await {
                    Ok(roles) => (restart_order(&outdated, Some(&roles)), Some(roles)),
                    Err(message) => return Ok(Outcome::CheckFailed(message)),
                }
            };
            let first = order.first().cloned().unwrap_or_default();
            let pod = outdated.iter().find(|p| p.name == first).cloned().unwrap_or_default();
            let why = match roles.as_ref().and_then(|r| r.get(&first)) {
                None => format!("reverse ordinal order ({IGNORE_LEADER_CHECK} is \"true\")"),
                Some(Role::Leader) => "it is the leader, restarted last".to_string(),
                Some(role) => format!("it is a {}: followers first, the leader last", role.name()),
            };
            (pod, why)
        }
    };
    let dp = DeleteParams {
        preconditions: Some(Preconditions { uid: Some(pod.uid.clone()), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(&pod.name, &dp).await {
        Ok(_) => {}
        // Gone or replaced meanwhile: the next pass sees the new state.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(Outcome::Waiting),
        Err(e) => return Err(Error::Delete { object: format!("Pod/{}", pod.name), source: e }),
    }
    let note = format!("restarted pod {} to apply the new pod template: {why}", pod.name);
    tracing::info!(zookeeper = %instance, pod = %pod.name, %why, "restarting a ZooKeeper pod");
    let related = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(pod.name.clone()),
        namespace: Some(namespace),
        uid: Some(pod.uid.clone()),
        ..ObjectReference::default()
    };
    events::publish_related(ctx, zk, Some(related), EventType::Normal, "RestartedPod", "Restart", note).await;
    Ok(Outcome::Restarted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(i: i32, rev: &str, ready: bool) -> ZkPod {
        ZkPod {
            name: format!("pc-zk-{i}"),
            uid: format!("u{i}"),
            ordinal: i,
            revision: Some(rev.into()),
            ready,
            terminating: false,
            address: format!("10.0.0.{i}:2181"),
        }
    }

    fn sts(replicas: i32) -> StsView {
        StsView { replicas, update_revision: Some("new".into()), observed: true }
    }

    #[test]
    fn srvr_answers() {
        let answer = "Zookeeper version: 3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023, built on 2024-02-12 20:59 UTC\n\
            Latency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x100000002\n\
            Mode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n";
        assert_eq!(parse_srvr(answer), Ok(Role::Leader));
        assert_eq!(parse_srvr("Mode: follower\n"), Ok(Role::Follower));
        assert_eq!(parse_srvr("Mode: standalone\r\n"), Ok(Role::Standalone));
        assert!(parse_srvr("").unwrap_err().contains("without an answer"));
        let e = parse_srvr("srvr is not executed because it is not in the whitelist.\n").unwrap_err();
        assert!(e.contains("whitelist"), "{e}");
        assert!(parse_srvr("Mode: weird\n").is_err());
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal("private-cloud-zk-12"), Some(12));
        assert_eq!(ordinal("zk"), None);
    }

    #[test]
    fn nothing_to_do_when_every_pod_is_updated() {
        let pods = [pod(0, "new", true), pod(1, "new", true), pod(2, "new", true)];
        assert_eq!(step(&sts(3), &pods), Step::UpToDate);
        // Not observed yet: the update revision may be stale.
        let stale = StsView { observed: false, ..sts(3) };
        assert!(matches!(step(&stale, &pods), Step::Wait(_)));
        assert!(matches!(step(&StsView { update_revision: None, ..sts(3) }, &pods), Step::Wait(_)));
    }

    #[test]
    fn one_at_a_time_waiting_for_the_replacement() {
        // A deleted pod not yet recreated, or terminating, or recreated and
        // not Ready: wait.
        let missing = [pod(0, "old", true), pod(1, "old", true)];
        assert!(matches!(step(&sts(3), &missing), Step::Wait(m) if m.contains("2 of 3")));
        let mut terminating = [pod(0, "old", true), pod(1, "old", true), pod(2, "old", true)];
        terminating[2].terminating = true;
        assert!(matches!(step(&sts(3), &terminating), Step::Wait(m) if m.contains("pc-zk-2")));
        let starting = [pod(0, "old", true), pod(1, "old", true), pod(2, "new", false)];
        assert!(matches!(step(&sts(3), &starting), Step::Wait(m) if m.contains("pc-zk-2")));
        // Replacement Ready: ask the remaining outdated pods.
        let next = [pod(0, "old", true), pod(1, "old", true), pod(2, "new", true)];
        let Step::AskRoles(outdated) = step(&sts(3), &next) else { panic!() };
        assert_eq!(outdated.iter().map(|p| p.ordinal).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn an_outdated_pod_that_is_not_ready_goes_first_without_asking() {
        let pods = [pod(0, "old", false), pod(1, "old", true), pod(2, "old", true)];
        assert_eq!(step(&sts(3), &pods), Step::Restart(pod(0, "old", false)));
    }

    #[test]
    fn pods_beyond_the_replica_count_are_ignored() {
        let pods = [pod(0, "new", true), pod(1, "new", true), pod(2, "old", true)];
        assert_eq!(step(&sts(2), &pods), Step::UpToDate);
    }

    #[test]
    fn followers_first_leader_last() {
        let pods = [pod(0, "old", true), pod(1, "old", true), pod(2, "old", true)];
        let roles = |leader: &str| {
            pods.iter()
                .map(|p| (p.name.clone(), if p.name == leader { Role::Leader } else { Role::Follower }))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(restart_order(&pods, Some(&roles("pc-zk-2"))), ["pc-zk-1", "pc-zk-0", "pc-zk-2"]);
        assert_eq!(restart_order(&pods, Some(&roles("pc-zk-0"))), ["pc-zk-2", "pc-zk-1", "pc-zk-0"]);
        assert_eq!(restart_order(&pods, Some(&roles("pc-zk-1"))), ["pc-zk-2", "pc-zk-0", "pc-zk-1"]);
        // The leader already restarted: only followers are left.
        assert_eq!(restart_order(&pods[..2], Some(&roles("pc-zk-2"))), ["pc-zk-1", "pc-zk-0"]);
        // A single standalone server.
        let one = BTreeMap::from([("pc-zk-0".to_string(), Role::Standalone)]);
        assert_eq!(restart_order(&pods[..1], Some(&one)), ["pc-zk-0"]);
    }

    #[test]
    fn ignore_leader_check_is_reverse_ordinal() {
        let pods = [pod(1, "old", true), pod(10, "old", true), pod(2, "old", true)];
        assert_eq!(restart_order(&pods, None), ["pc-zk-10", "pc-zk-2", "pc-zk-1"]);
    }

    #[test]
    fn a_failed_check_names_the_annotation() {
        let m = check_failed_message(&[("pc-zk-0".into(), "10.0.0.1:2181".into(), "no answer within 2s".into())]);
        assert!(m.contains("pc-zk-0") && m.contains("no answer within 2s"), "{m}");
        assert!(m.contains("cloud.streamnative.io/ignore-leader-check: \"true\""), "{m}");
        assert!(m.contains("no pod was restarted"), "{m}");
    }

    #[test]
    fn sts_view_reads_the_status() {
        use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let sts = StatefulSet {
            metadata: ObjectMeta { generation: Some(4), ..Default::default() },
            spec: Some(StatefulSetSpec { replicas: Some(3), ..Default::default() }),
            status: Some(StatefulSetStatus {
                observed_generation: Some(4),
                update_revision: Some("pc-zk-abc".into()),
                ..Default::default()
            }),
        };
        let v = serde_json::to_value(&sts).unwrap();
        assert_eq!(
            StsView::from_value(&v),
            StsView { replicas: 3, update_revision: Some("pc-zk-abc".into()), observed: true }
        );
    }

    /// A fake ZooKeeper answering `srvr` once with `answer`.
    async fn fake_server(answer: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut cmd = [0u8; 4];
            s.read_exact(&mut cmd).await.unwrap();
            assert_eq!(&cmd, b"srvr");
            s.write_all(answer.as_bytes()).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn asks_a_server_for_its_role() {
        let addr = fake_server("Zookeeper version: 3.9.2\nMode: follower\nNode count: 5\n").await;
        assert_eq!(ask_role(&addr, SRVR_TIMEOUT).await, Ok(Role::Follower));
        // A sidecar under STRICT mTLS closes plaintext connections.
        let addr = fake_server("").await;
        assert!(ask_role(&addr, SRVR_TIMEOUT).await.unwrap_err().contains("without an answer"));
        // Nothing listening.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert!(ask_role(&closed, SRVR_TIMEOUT).await.unwrap_err().contains("cannot connect"));
    }
}
