//! Fault injection against the real control plane (magnetar-testenv):
//!
//! - the in-process operator killed (its task aborted, like SIGKILL) at
//!   seeded random points, 50 times while the quick start converges and 50
//!   times during a 5 → 2 broker scale-down; the end state must be exactly a
//!   clean run's (same objects, same content, one controller each);
//! - kube-apiserver restarted while the operator is in the middle of its
//!   first pass (on a control plane of this test's own);
//! - a second field manager force-applying another value of a field magnetar
//!   owns, for 30 s: magnetar's value stands at the end and its writes stay
//!   bounded by the fighter's.
//!
//! The seed of the kill points is printed; `MAGNETAR_FAULT_SEED=<n>` replays
//! a run.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, ZooKeeperCluster};
use magnetar_operator::kinds;
use magnetar_operator::{Metrics, Operator};

use common::*;

const KILLS: usize = 50;

/// splitmix64: a small seeded generator (the kill points are the test's
/// input; the same seed gives the same delays).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max)`.
    fn delay(&mut self, max: Duration) -> Duration {
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX).max(1);
        Duration::from_micros(self.next() % micros)
    }
}

fn seed() -> u64 {
    std::env::var("MAGNETAR_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6d61_676e_6574_6172)
}

/// Waits until the operator has written nothing for a second.
async fn quiesce(op: &Operator) {
    let mut last = op.writes();
    let mut stable_since = Instant::now();
    wait_for("the operator to go quiet", DEADLINE, || {
        let now = op.writes();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        let quiet = stable_since.elapsed() > Duration::from_secs(1);
        async move { quiet.then_some(()) }
    })
    .await;
}

/// Samples an operator's write counter every 5 ms until stopped: when each
/// write happened, relative to the start.
struct Timeline {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(Duration, u64)>>,
}

impl Timeline {
    fn start(metrics: Arc<Metrics>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let t0 = Instant::now();
            let base = metrics.writes();
            let mut last = base;
            let mut out = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let w = metrics.writes();
                if w != last {
                    out.push((t0.elapsed(), w - base));
                    last = w;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            out
        });
        Timeline { stop, task }
    }

    async fn finish(self) -> Vec<(Duration, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// The first burst of writes: from the start until the first pause of
/// `gap` without a write. Returns (end of the burst, writes in it).
fn first_burst(timeline: &[(Duration, u64)], gap: Duration) -> (Duration, u64) {
    let mut end = (Duration::ZERO, 0);
    for &(t, w) in timeline {
        if !end.0.is_zero() && t - end.0 > gap {
            break;
        }
        end = (t, w);
    }
    end
}

fn summary(timeline: &[(Duration, u64)]) -> String {
    let pick: Vec<String> = timeline
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0 || *i + 1 == timeline.len())
        .map(|(_, (t, w))| format!("{w}@{}ms", t.as_millis()))
        .collect();
    pick.join(" ")
}

/// What one kill did.
struct Kill {
    /// How long the instance ran after its first write.
    delay: Duration,
    /// Writes the killed instance made.
    writes: u64,
}

/// How long an operator may stay without writing, once its caches synced,
/// before it is taken to have nothing left to do.
const IDLE: Duration = Duration::from_secs(2);

/// Kill rounds on one namespace: operators are started one after another
/// and each is killed at a random delay after its first write, so that
/// every kill lands while the operator is working (in the middle of an
/// apply pass, or right after it). An operator that writes nothing within
/// [`IDLE`] has nothing left to do: it is stopped, not counted, and the
/// next round makes the work anew.
struct Rounds {
    kills: Vec<Kill>,
    idle: usize,
    rounds: usize,
}

async fn kill_while_working(client: &Client, ns: &str, rng: &mut Rng, max: Duration) -> Option<Kill> {
    let op = Operator::start(client.clone(), operator_options(ns));
    assert!(op.wait_ready(DEADLINE).await, "operator caches did not sync");
    let synced = Instant::now();
    while op.writes() == 0 {
        if synced.elapsed() > IDLE {
            op.stop().await.unwrap();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let delay = rng.delay(max);
    tokio::time::sleep(delay).await;
    let writes = op.writes();
    op.kill().await;
    Some(Kill { delay, writes })
}

fn report(what: &str, r: &Rounds, max: Duration, took: Duration) {
    let total: u64 = r.kills.iter().map(|k| k.writes).sum();
    let delays: Vec<String> = r.kills.iter().map(|k| format!("{}ms/{}w", k.delay.as_millis(), k.writes)).collect();
    eprintln!(
        "{what}: {} kills in {} rounds ({:.1}s), each at a delay in [0, {}ms) after the instance's first write; \
         {total} writes by killed instances; {} idle instances ended rounds; delay/writes: {}",
        r.kills.len(),
        r.rounds,
        took.as_secs_f64(),
        max.as_millis(),
        r.idle,
        delays.join(" ")
    );
}

/// Deletes the quick start's resources and waits until their objects and
/// pods are gone (no operator runs: the garbage collector does it).
async fn delete_quick_start(client: &Client, ns: &str) {
    let dp = kube::api::DeleteParams::background();
    let _ = Api::<PulsarCoordinator>::namespaced(client.clone(), ns).delete(NAME, &dp).await;
    let _ = Api::<ZooKeeperCluster>::namespaced(client.clone(), ns).delete(NAME, &dp).await;
    let _ = Api::<BookKeeperCluster>::namespaced(client.clone(), ns).delete(NAME, &dp).await;
    let _ = Api::<PulsarBroker>::namespaced(client.clone(), ns).delete(NAME, &dp).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    wait_for("the quick start's objects and pods gone", DEADLINE, || {
        let (client, pods) = (client.clone(), pods.clone());
        async move {
            let gone = get_json::<PulsarBroker>(&client, ns, NAME).await.is_none()
                && get_json::<ZooKeeperCluster>(&client, ns, NAME).await.is_none()
                && get_json::<BookKeeperCluster>(&client, ns, NAME).await.is_none()
                && get_json::<PulsarCoordinator>(&client, ns, NAME).await.is_none()
                && live_set(&client, ns).await.is_empty()
                && pods.list_metadata(&ListParams::default()).await.ok()?.items.is_empty();
            gone.then_some(())
        }
    })
    .await;
}

/// The controller owner (kind, name, uid) of every managed object of `ns`,
/// as a list (so that a duplicate would show).
async fn owners(client: &Client, ns: &str) -> Vec<((String, String), Vec<(String, String, String)>)> {
    let mut out = Vec::new();
    for kind in kinds::all() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource(None));
        let list = api.list(&ListParams::default().labels("app.kubernetes.io/managed-by=magnetar")).await.unwrap();
        for o in list.items.into_iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
            let refs = o
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.controller == Some(true))
                .map(|r| (r.kind.clone(), r.name.clone(), r.uid.clone()))
                .collect();
            out.push(((kind.kind.to_string(), o.name_any()), refs));
        }
    }
    out
}

/// The managed objects are exactly what the build step says, none twice,
/// each with exactly one controller: the resource of `ns` it names, by UID.
async fn assert_exact_and_owned(client: &Client, ns: &str) {
    let mut uids = BTreeMap::new();
    for v in [
        get_json::<PulsarCoordinator>(client, ns, NAME).await,
        get_json::<ZooKeeperCluster>(client, ns, NAME).await,
        get_json::<BookKeeperCluster>(client, ns, NAME).await,
        get_json::<PulsarBroker>(client, ns, NAME).await,
    ] {
        let v = v.expect("every resource of the quick start");
        uids.insert(
            (v["kind"].as_str().unwrap().to_string(), v["metadata"]["name"].as_str().unwrap().to_string()),
            v["metadata"]["uid"].as_str().unwrap().to_string(),
        );
    }
    let owned = owners(client, ns).await;
    let mut seen = std::collections::BTreeSet::new();
    for ((kind, name), refs) in &owned {
        assert!(seen.insert((kind.clone(), name.clone())), "{kind}/{name} listed twice");
        assert_eq!(refs.len(), 1, "{kind}/{name} has {} controllers: {refs:?}", refs.len());
        let (okind, oname, ouid) = &refs[0];
        let want = uids.get(&(okind.clone(), oname.clone()));
        assert_eq!(want, Some(ouid), "{kind}/{name} is controlled by {okind}/{oname} {ouid}, not a live resource");
    }
    let desired = desired_set(client, ns).await;
    assert_eq!(seen, desired, "managed objects of {ns} differ from the build");
}

/// Every managed object of `ns`, reduced to what must be the same in two
/// namespaces converged from the same spec: labels, annotations (but the
/// applied hash, which covers the namespace and owner UIDs, and the
/// Deployment controller's revision), the controller's kind and name, and
/// the body (spec, data, ...) without status and the Service IPs the API
/// server allocates; the namespace's name replaced by `<ns>`.
async fn snapshot(client: &Client, ns: &str) -> BTreeMap<(String, String), Value> {
    fn replace_ns(v: &mut Value, ns: &str) {
        match v {
            Value::String(s) => *s = s.replace(ns, "<ns>"),
            Value::Array(a) => a.iter_mut().for_each(|v| replace_ns(v, ns)),
            Value::Object(o) => o.values_mut().for_each(|v| replace_ns(v, ns)),
            _ => {}
        }
    }
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ns);
    let config_maps: BTreeMap<String, BTreeMap<String, String>> = cms
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=magnetar"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| (c.name_any(), c.data.unwrap_or_default()))
        .collect();
    let mut out = BTreeMap::new();
    for kind in kinds::all() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource(None));
        let list = api.list(&ListParams::default().labels("app.kubernetes.io/managed-by=magnetar")).await.unwrap();
        for o in list.items.into_iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
            let name = o.name_any();
            let meta = &o.metadata;
            let mut annotations = meta.annotations.clone().unwrap_or_default();
            let hash = annotations.remove(magnetar_operator::drift::APPLIED_HASH);
            assert!(hash.is_some(), "{}/{name} in {ns} has no applied-hash annotation", kind.kind);
            annotations.remove("deployment.kubernetes.io/revision");
            let owner: Vec<(String, String)> = meta
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.controller == Some(true))
                .map(|r| (r.kind.clone(), r.name.clone()))
                .collect();
            let mut body = o.data.clone();
            if let Some(b) = body.as_object_mut() {
                b.remove("status");
            }
            if kind.kind == "Service"
                && let Some(spec) = body["spec"].as_object_mut()
            {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            check_config_hash(&mut body, &config_maps, &format!("{}/{name} in {ns}", kind.kind));
            let mut v = json!({
                "labels": meta.labels,
                "annotations": annotations,
                "controller": owner,
                "body": body,
            });
            replace_ns(&mut v, ns);
            out.insert((kind.kind.to_string(), name), v);
        }
    }
    out
}

/// A pod template's config hash covers its ConfigMap, whose text names the
/// namespace: it must be the hash of a ConfigMap the template mounts, as
/// that ConfigMap is now; it is then replaced by the ConfigMap's name.
fn check_config_hash(body: &mut Value, config_maps: &BTreeMap<String, BTreeMap<String, String>>, what: &str) {
    use magnetar_desired::components::config_files::config_hash;
    use magnetar_desired::components::workload::CONFIG_HASH_ANNOTATION;
    let template = &mut body["spec"]["template"];
    let Some(hash) = template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION].as_str().map(str::to_string) else {
        return;
    };
    let mounted: Vec<String> = template["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["configMap"]["name"].as_str().map(str::to_string))
        .collect();
    let of = mounted.iter().find(|cm| config_maps.get(*cm).is_some_and(|data| config_hash(data) == hash));
    let Some(of) = of else {
        panic!("{what}: config hash {hash} is not the hash of any ConfigMap it mounts ({mounted:?})");
    };
    template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] = json!(format!("<hash of {of}>"));
}

/// The first path where two JSON values differ (for the failure message).
fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                difference(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (a, b))| difference(a, b, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

fn assert_same_content(clean: &BTreeMap<(String, String), Value>, faulted: &BTreeMap<(String, String), Value>) {
    let missing: Vec<_> = clean.keys().filter(|k| !faulted.contains_key(*k)).collect();
    let extra: Vec<_> = faulted.keys().filter(|k| !clean.contains_key(*k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "vs the clean run: missing {missing:?}, extra {extra:?}");
    let differing: Vec<String> = clean
        .iter()
        .filter_map(|(k, v)| difference(v, &faulted[k], "").map(|d| format!("{}/{}: {d}", k.0, k.1)))
        .collect();
    assert!(differing.is_empty(), "objects differ from the clean run's:\n{}", differing.join("\n"));
}

/// A fresh operator (no memory) on a converged namespace finds every object
/// as it would apply it (its applied-hash annotation and content) and writes
/// nothing.
async fn assert_fresh_operator_writes_nothing(client: &Client, ns: &str) {
    let op = start_operator(client, ns).await;
    let kinds = ["PulsarCoordinator", "ZooKeeperCluster", "BookKeeperCluster", "PulsarBroker"];
    wait_for("a fresh operator to reconcile every kind", DEADLINE, || {
        let m = op.metrics().clone();
        async move { kinds.iter().all(|k| m.reconciles(k) > 0).then_some(()) }
    })
    .await;
    quiesce(&op).await;
    assert_eq!(op.writes(), 0, "a fresh operator rewrote the converged namespace {ns}");
    op.stop().await.unwrap();
}

async fn wait_brokers(client: &Client, ns: &str, n: usize) {
    wait_for(&format!("{n} brokers Ready"), DEADLINE, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (is_ready(&pb)
                && pb["status"]["readyReplicas"] == n
                && pb["status"]["serviceEndpoints"]["brokers"].as_array()?.len() == n)
                .then_some(())
        }
    })
    .await;
}

fn replicas(n: usize) -> Value {
    json!({"spec": {"replicas": n}})
}

#[tokio::test]
async fn killed_fifty_times_in_quick_start_and_scale_down_ends_exactly_as_a_clean_run() {
    let started = Instant::now();
    let seed = seed();
    eprintln!("kill points: seed {seed} (MAGNETAR_FAULT_SEED={seed} replays them)");
    let mut rng = Rng(seed);

    // A clean run, measured: how long the operator's first pass takes.
    let clean = "fault-clean";
    let client = setup(clean).await;
    apply_all(&client, &quick_start(clean)).await;
    let op = start_operator(&client, clean).await;
    let timeline = Timeline::start(op.metrics().clone());
    wait_all_ready(&client, clean).await;
    wait_exact(&client, clean).await;
    let qs = timeline.finish().await;
    let (qs_pass, qs_writes) = first_burst(&qs, Duration::from_millis(300));
    eprintln!(
        "clean quick start: first pass {qs_writes} writes in {}ms after cache sync; {} writes until converged; {}",
        qs_pass.as_millis(),
        qs.last().map_or(0, |l| l.1),
        summary(&qs)
    );
    quiesce(&op).await;
    let clean_quick_start = snapshot(&client, clean).await;
    patch::<PulsarBroker>(&client, clean, NAME, replicas(5)).await;
    wait_brokers(&client, clean, 5).await;
    wait_exact(&client, clean).await;
    quiesce(&op).await;
    let timeline = Timeline::start(op.metrics().clone());
    patch::<PulsarBroker>(&client, clean, NAME, replicas(2)).await;
    wait_all_ready(&client, clean).await;
    wait_exact(&client, clean).await;
    quiesce(&op).await;
    let sd = timeline.finish().await;
    let (sd_pass, sd_writes) = first_burst(&sd, Duration::from_millis(300));
    eprintln!(
        "clean scale-down 5 → 2: first pass {sd_writes} writes in {}ms after the patch; {} writes in all; {}",
        sd_pass.as_millis(),
        sd.last().map_or(0, |l| l.1),
        summary(&sd)
    );
    op.stop().await.unwrap();
    let clean_scaled = snapshot(&client, clean).await;
    let clean_time = started.elapsed();

    // Kill points: a few per pass (the pass's length over 5), so that the
    // kills of one round land at different points of it.
    let qs_max = (qs_pass / 5).clamp(Duration::from_millis(20), Duration::from_secs(2));
    let sd_max = (sd_pass / 3).clamp(Duration::from_millis(20), Duration::from_secs(2));

    // The quick start: each round applies it to an empty namespace.
    let ns = "fault-kill";
    let _ = setup(ns).await;
    let t0 = Instant::now();
    let mut r = Rounds { kills: Vec::new(), idle: 0, rounds: 0 };
    while r.kills.len() < KILLS {
        assert!(r.rounds < 3 * KILLS, "too many rounds");
        if r.rounds > 0 {
            delete_quick_start(&client, ns).await;
        }
        apply_all(&client, &quick_start(ns)).await;
        r.rounds += 1;
        while r.kills.len() < KILLS {
            match kill_while_working(&client, ns, &mut rng, qs_max).await {
                Some(k) => r.kills.push(k),
                None => {
                    r.idle += 1;
                    break;
                }
            }
        }
    }
    report("quick start", &r, qs_max, t0.elapsed());
    let op = start_operator(&client, ns).await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    quiesce(&op).await;
    assert_exact_and_owned(&client, ns).await;
    assert_same_content(&clean_quick_start, &snapshot(&client, ns).await);

    // The scale-down: each round scales to 5 (with an operator left alone)
    // and back to 2 (with the kills).
    let t1 = Instant::now();
    let mut r = Rounds { kills: Vec::new(), idle: 0, rounds: 0 };
    let mut op = Some(op);
    while r.kills.len() < KILLS {
        assert!(r.rounds < 3 * KILLS, "too many rounds");
        let scaler = match op.take() {
            Some(op) => op,
            None => start_operator(&client, ns).await,
        };
        patch::<PulsarBroker>(&client, ns, NAME, replicas(5)).await;
        wait_brokers(&client, ns, 5).await;
        wait_exact(&client, ns).await;
        quiesce(&scaler).await;
        scaler.stop().await.unwrap();
        patch::<PulsarBroker>(&client, ns, NAME, replicas(2)).await;
        r.rounds += 1;
        while r.kills.len() < KILLS {
            match kill_while_working(&client, ns, &mut rng, sd_max).await {
                Some(k) => r.kills.push(k),
                None => {
                    r.idle += 1;
                    break;
                }
            }
        }
    }
    report("scale-down 5 → 2", &r, sd_max, t1.elapsed());
    let op = start_operator(&client, ns).await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    quiesce(&op).await;
    op.stop().await.unwrap();

    assert_exact_and_owned(&client, ns).await;
    let faulted = snapshot(&client, ns).await;
    assert_same_content(&clean_scaled, &faulted);
    assert_fresh_operator_writes_nothing(&client, ns).await;
    eprintln!(
        "{} objects identical to the clean run's after {} kills; clean run {:.1}s, total {:.1}s",
        faulted.len(),
        2 * KILLS,
        clean_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    cleanup(&client, clean).await;
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn api_server_restarted_mid_reconcile_then_the_operator_converges() {
    // A control plane of this test's own: the shared one serves the others.
    let env = magnetar_testenv::start_detached(env_options().label("faults-restart")).await.expect("control plane");
    let ns = "fault-restart";
    let client = setup_on(&env, ns).await;
    let op = start_operator(&client, ns).await;
    apply_all(&client, &quick_start(ns)).await;
    wait_for("the operator in the middle of its first pass", DEADLINE, || {
        let w = op.writes();
        async move { (w >= 8).then_some(()) }
    })
    .await;
    let at = op.writes();
    let away = env.restart_apiserver().await.expect("kube-apiserver restarts");
    let t0 = Instant::now();
    assert!(!all_ready(&client, ns).await, "the restart came after convergence");
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    let converged = t0.elapsed();
    assert_exact_and_owned(&client, ns).await;
    let failures = op.metrics().render();
    let errors: Vec<&str> = failures.lines().filter(|l| l.starts_with("magnetar_reconcile_errors_total{")).collect();
    eprintln!(
        "kube-apiserver restarted after {at} operator writes, away (stop, start, /readyz) {:.1}s; \
         converged {:.1}s after it was back; {} writes in all; {errors:?}",
        away.as_secs_f64(),
        converged.as_secs_f64(),
        op.writes()
    );
    quiesce(&op).await;
    op.stop().await.unwrap();
    assert_fresh_operator_writes_nothing(&client, ns).await;
    env.shutdown();
}

fn counter(metrics: &Metrics, name: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

#[tokio::test]
async fn a_second_field_manager_fighting_over_a_managed_field_loses_without_a_hot_loop() {
    const FIGHT: Duration = Duration::from_secs(30);
    const PACE: Duration = Duration::from_millis(100);
    const STS: &str = "private-cloud-broker";
    const LABEL: &str = "app.kubernetes.io/name";
    let ns = "fault-fight";
    let (client, op) = converged_quick_start(ns).await;
    quiesce(&op).await;
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let label = |s: &StatefulSet| s.labels().get(LABEL).cloned().unwrap_or_default();
    let ours = label(&sts.get(STS).await.unwrap());
    assert_eq!(ours, "pulsar-broker");

    // The fighter: another field manager force-applying its own value of a
    // label magnetar sets on the broker StatefulSet, every 100 ms for 30 s.
    let fighter = PatchParams::apply("fighter").force();
    let body = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": STS, "labels": {LABEL: "fighter"}}
    });
    let (writes0, applied0, events0) =
        (op.writes(), counter(op.metrics(), "magnetar_objects_applied_total"), event_count(&client, ns).await);
    let mut fights = 0u64;
    let mut restored_seen = 0u64;
    let end = Instant::now() + FIGHT;
    while Instant::now() < end {
        let before = sts.get(STS).await.unwrap();
        if label(&before) == ours {
            restored_seen += 1;
        }
        sts.patch(STS, &fighter, &Patch::Apply(&body)).await.unwrap();
        fights += 1;
        tokio::time::sleep(PACE).await;
    }
    let during = op.writes() - writes0;

    // Once the fighter stops, magnetar's value stands.
    let t = Instant::now();
    wait_for("magnetar's value restored", Duration::from_secs(30), || {
        let sts = sts.clone();
        let ours = ours.clone();
        async move { (label(&sts.get(STS).await.ok()?) == ours).then_some(()) }
    })
    .await;
    let restored_in = t.elapsed();
    quiesce(&op).await;
    let last = sts.get(STS).await.unwrap();
    assert_eq!(label(&last), ours, "magnetar's value stands after the fight");
    let fighter_owns = last.managed_fields().iter().any(|m| {
        m.manager.as_deref() == Some("fighter")
            && m.fields_v1.as_ref().is_some_and(|f| serde_json::to_string(&f.0).unwrap().contains(LABEL))
    });
    assert!(!fighter_owns, "the fighter still owns {LABEL}");
    let writes = op.writes() - writes0;
    let applied = counter(op.metrics(), "magnetar_objects_applied_total") - applied0;
    let events = event_count(&client, ns).await - events0;
    eprintln!(
        "fight over {STS} {LABEL} for {FIGHT:?}: fighter {fights} writes; magnetar's value seen {restored_seen} times \
         before a fighter write; operator {writes} writes ({during} during the fight), {applied} objects applied, \
         {events} new Events; restored {restored_in:?} after the fighter stopped"
    );
    assert!(
        applied <= fights + 3,
        "the operator applied {applied} objects against {fights} fighter writes: a hot loop"
    );
    // Each re-apply is reported by an Event (a write of its own).
    assert!(writes <= 2 * fights + 10, "the operator wrote {writes} times against {fights} fighter writes: a hot loop");
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// Events in `ns`, counting a series' repetitions.
async fn event_count(client: &Client, ns: &str) -> u64 {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.series.as_ref().map_or(1, |s| u64::try_from(s.count).unwrap_or(1)))
        .sum()
}
