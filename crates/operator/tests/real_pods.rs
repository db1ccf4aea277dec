//! The pods magnetar renders, run for real: the quick start's ZooKeeper and
//! BookKeeper on the test environment's real node (magnetar-testenv's
//! `real_node`: the containers' commands unchanged, real ZooKeeper 3.9 and
//! BookKeeper 4.17 from the JVM toolkit, the declared probes run as
//! declared). kwok fakes everything else.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use magnetar_api::{BookKeeperCluster, ZooKeeperCluster};
use magnetar_operator::restart::{Role, ask_role, four_letter_word};
use magnetar_testenv::ControlPlane;
use magnetar_testenv::real_node::{REAL_NODE, REAL_NODE_LABEL, REAL_NODE_TAINT};

use common::*;

/// Real JVMs on two cores: start-up takes longer than kwok's instant Ready.
const REAL: Duration = Duration::from_secs(300);

async fn real_env() -> &'static ControlPlane {
    let options = env_options().with_real_node().label("real-pods");
    magnetar_testenv::shared(options).await.expect("control plane with the real node")
}

/// Pod settings that put a component's pods on the real node.
fn on_the_real_node() -> Value {
    json!({
        "nodeSelector": {REAL_NODE_LABEL.0: REAL_NODE_LABEL.1},
        "tolerations": [{"key": REAL_NODE_TAINT.0, "operator": "Equal", "value": REAL_NODE_TAINT.1, "effect": "NoSchedule"}],
    })
}

/// The quick start's ZooKeeper and BookKeeper, unchanged but for the node
/// they run on and, for ZooKeeper, without `ignore-leader-check` (the
/// leader check is what these tests exercise); with StreamNative's storage
/// layout fields, so that real servers judge them: ZooKeeper's transaction
/// log on a volume of its own (`persistence.dataLog`), two journal and two
/// ledger directories per bookie volume (`numDirsPerVolume`).
fn zk_and_bk(ns: &str) -> Vec<Value> {
    let mut docs: Vec<Value> = quick_start(ns)
        .into_iter()
        .filter(|d| d["kind"] == "ZooKeeperCluster" || d["kind"] == "BookKeeperCluster")
        .collect();
    for d in &mut docs {
        d["metadata"].as_object_mut().unwrap().remove("annotations");
        d["metadata"].as_object_mut().unwrap().remove("labels");
        merge(&mut d["spec"]["pod"], &on_the_real_node());
        if d["kind"] == "BookKeeperCluster" {
            merge(&mut d["spec"]["autoRecovery"]["pod"], &on_the_real_node());
            let two = json!({"numDirsPerVolume": 2});
            merge(&mut d["spec"]["storage"], &json!({"journal": two, "ledger": two}));
        } else {
            merge(&mut d["spec"]["persistence"], &json!({"dataLog": {}}));
        }
    }
    docs
}

fn merge(target: &mut Value, extra: &Value) {
    if !target.is_object() {
        *target = json!({});
    }
    for (k, v) in extra.as_object().unwrap() {
        target[k] = v.clone();
    }
}

/// One real-JVM scenario at a time: each runs up to seven JVMs, and two at
/// once on two cores starve each other's ZooKeeper sessions.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test's namespace on the real node's control plane, and its turn
/// (held to the end of the test).
async fn setup_real(ns: &str) -> (Client, tokio::sync::MutexGuard<'static, ()>) {
    let turn = ONE_AT_A_TIME.lock().await;
    let env = real_env().await;
    eprintln!("container logs: {}", env.pod_logs().map(|p| p.display().to_string()).unwrap_or_default());
    (setup_on(env, ns).await, turn)
}

/// `(name, uid, pod IP)` of the running pods of a component on the real node.
async fn real_pods(client: &Client, ns: &str, component: &str) -> Vec<(String, String, String)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/component={component}"));
    let mut out: Vec<_> = pods
        .list(&lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone())?;
            assert_eq!(node, REAL_NODE, "{} runs on the real node", p.name_any());
            let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone())?;
            Some((p.name_any(), p.uid().unwrap_or_default(), ip))
        })
        .collect();
    out.sort();
    out
}

/// Every ZooKeeper server's role, by pod name, from `srvr` on its pod IP.
async fn roles(client: &Client, ns: &str) -> Option<BTreeMap<String, Role>> {
    let mut out = BTreeMap::new();
    for (name, _, ip) in real_pods(client, ns, "zookeeper").await {
        let role = ask_role(&format!("{ip}:2181"), Duration::from_secs(2)).await.ok()?;
        out.insert(name, role);
    }
    Some(out)
}

fn one_leader(roles: &BTreeMap<String, Role>) -> Option<String> {
    let leaders: Vec<&String> = roles.iter().filter(|(_, r)| **r == Role::Leader).map(|(n, _)| n).collect();
    let followers = roles.values().filter(|r| **r == Role::Follower).count();
    (roles.len() == 3 && leaders.len() == 1 && followers == 2).then(|| leaders[0].clone())
}

/// The last `n` lines of a container's log on the real node, for failure
/// messages.
async fn log_tail(pod: &str, n: usize) -> String {
    let Some(dir) = real_env().await.pod_logs() else { return String::new() };
    let Ok(entries) = std::fs::read_dir(&dir) else { return String::new() };
    let mut out = String::new();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if file.contains(&format!("_{pod}_")) {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("== {file}\n{}\n", lines[lines.len().saturating_sub(n)..].join("\n")));
        }
    }
    out
}

/// `GET path` (HTTP/1.0: the server closes the connection after its answer).
async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut body)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text))
}

/// The quick start's ensemble forms a quorum of real servers; the bookies
/// register with it and pass their own probes; auto-recovery starts.
#[tokio::test]
async fn zookeeper_and_bookkeeper_start_from_the_rendered_pods() {
    let ns = "real-zk-bk";
    let (client, _turn) = setup_real(ns).await;
    let op = start_operator(&client, ns).await;
    apply_all(&client, &zk_and_bk(ns)).await;

    // Ready comes from the real probes: ZooKeeper's TCP check on 2181, the
    // bookies' /api/v1/bookie/is_ready and /api/v1/bookie/state.
    wait_for("ZooKeeper Ready on real servers", REAL, || {
        let client = client.clone();
        async move { get_json::<ZooKeeperCluster>(&client, ns, NAME).await.filter(is_ready) }
    })
    .await;
    let roles = wait_for("one leader and two followers answering srvr", REAL, || {
        let client = client.clone();
        async move { roles(&client, ns).await.filter(|r| one_leader(r).is_some()) }
    })
    .await;
    eprintln!("ZooKeeper roles: {roles:?}");
    // The transaction log went to its own volume: ZooKeeper's `conf` names
    // the directory it really writes the log to.
    for (name, _, ip) in real_pods(&client, ns, "zookeeper").await {
        let conf = four_letter_word(&format!("{ip}:2181"), "conf", Duration::from_secs(5)).await.unwrap_or_default();
        assert!(conf.contains("dataLogDir=/pulsar/datalog/zookeeper/version-2"), "{name} conf: {conf}");
        assert!(conf.contains("dataDir=/pulsar/data/zookeeper/version-2"), "{name} conf: {conf}");
    }

    wait_for("BookKeeper Ready on real bookies", REAL, || {
        let client = client.clone();
        async move { get_json::<BookKeeperCluster>(&client, ns, NAME).await.filter(is_ready) }
    })
    .await;
    let bookies = real_pods(&client, ns, "bookie").await;
    assert_eq!(bookies.len(), 3, "{bookies:?}");
    for (name, _, ip) in &bookies {
        let (code, body) = http_get(&format!("{ip}:8000"), "/api/v1/bookie/state").await.expect("bookie HTTP");
        assert_eq!(code, 200, "{name} /api/v1/bookie/state: {body}");
        assert!(body.contains("\"running\" : true") || body.contains("\"running\":true"), "{name}: {body}");
        // The bookie runs on two journal and two ledger directories of its
        // volumes (it created them itself at start).
        let (code, conf) = http_get(&format!("{ip}:8000"), "/api/v1/config/server_config").await.expect("bookie HTTP");
        assert_eq!(code, 200, "{name} /api/v1/config/server_config: {conf}");
        for dir in ["journal/0", "journal/1", "ledgers/0", "ledgers/1"] {
            assert!(conf.contains(&format!("/pulsar/data/bookkeeper/{dir}")), "{name} lacks {dir}: {conf}");
        }
    }
    // Each bookie registered in ZooKeeper, read-write, under its pod DNS
    // name (useHostNameAsBookieID): the registry as each bookie's own
    // BookKeeper client sees it, asked of each bookie in turn.
    let ids: Vec<String> = bookies
        .iter()
        .map(|(name, _, _)| format!("{name}.private-cloud-bk-headless.{ns}.svc.cluster.local:3181"))
        .collect();
    let registered = |body: &str| ids.iter().all(|id| body.contains(&format!("\"{id}\"")));
    let start = std::time::Instant::now();
    let mut answers: BTreeMap<String, String> = BTreeMap::new();
    let (_, _, ip) = &bookies[0];
    for turn in 0.. {
        let (name, _, ip) = &bookies[turn % bookies.len()];
        let rw = http_get(&format!("{ip}:8000"), "/api/v1/bookie/list_bookies?type=rw").await;
        if rw.as_ref().is_some_and(|(code, body)| *code == 200 && registered(body)) {
            break;
        }
        if start.elapsed() > REAL {
            let ro = http_get(&format!("{ip}:8000"), "/api/v1/bookie/list_bookies?type=ro").await;
            for (name, ..) in &bookies {
                answers.insert(format!("{name} log"), log_tail(name, 30).await);
            }
            panic!(
                "timed out after {REAL:?} waiting for {ids:?} read-write in the registry; rw from {name}: {rw:?}; ro: {ro:?}; {answers:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Auto-recovery: its pod is Ready (its own probe) and one worker won the
    // auditor election in ZooKeeper.
    wait_for("the auto-recovery pod Ready", REAL, || {
        let client = client.clone();
        async move {
            let pods: Api<Pod> = Api::namespaced(client, ns);
            let lp = ListParams::default().labels("app.kubernetes.io/component=autorecovery");
            let l = pods.list(&lp).await.ok()?;
            l.items
                .iter()
                .any(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .then_some(())
        }
    })
    .await;
    let auditor = wait_for("an auditor elected", REAL, || {
        let ip = ip.clone();
        async move {
            let (code, body) = http_get(&format!("{ip}:8000"), "/api/v1/autorecovery/who_is_auditor").await?;
            (code == 200 && body.contains("Auditor")).then_some(body)
        }
    })
    .await;
    eprintln!("auditor: {}", auditor.lines().last().unwrap_or_default());
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// SPEC 4.4 against a real ensemble: a pod-template change restarts the
/// followers first and the real leader last, each after the previous
/// replacement is Ready.
#[tokio::test]
async fn zookeeper_restart_follows_the_real_leader() {
    let ns = "real-zk-roll";
    let (client, _turn) = setup_real(ns).await;
    let op = start_operator(&client, ns).await;
    let zk = zk_and_bk(ns).into_iter().find(|d| d["kind"] == "ZooKeeperCluster").unwrap();
    apply_all(&client, &[zk]).await;
    wait_for("ZooKeeper Ready on real servers", REAL, || {
        let client = client.clone();
        async move { get_json::<ZooKeeperCluster>(&client, ns, NAME).await.filter(is_ready) }
    })
    .await;
    let before = wait_for("one leader and two followers", REAL, || {
        let client = client.clone();
        async move { roles(&client, ns).await.filter(|r| one_leader(r).is_some()) }
    })
    .await;
    let leader = one_leader(&before).unwrap();
    let pods_before = real_pods(&client, ns, "zookeeper").await;
    eprintln!("before the roll: {before:?}");

    // Watch the replacements as they happen: for each replaced pod, the
    // role its server last reported before it went.
    let p = json!({"spec": {"config": {"custom": {"maxClientCnxns": "100"}}}});
    patch::<ZooKeeperCluster>(&client, ns, NAME, p).await;
    let mut replaced: Vec<(String, Option<Role>)> = Vec::new();
    let mut last_roles = before.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        for (name, _, ip) in real_pods(&client, ns, "zookeeper").await {
            if let Ok(role) = ask_role(&format!("{ip}:2181"), Duration::from_secs(1)).await {
                last_roles.insert(name, role);
            }
        }
        let now = real_pods(&client, ns, "zookeeper").await;
        for (name, uid, _) in &pods_before {
            let gone = !now.iter().any(|(n, u, _)| n == name && u == uid);
            if gone && !replaced.iter().any(|(n, _)| n == name) {
                replaced.push((name.clone(), last_roles.get(name).copied()));
            }
        }
        let all_new = replaced.len() == 3 && now.len() == 3;
        if all_new && get_json::<ZooKeeperCluster>(&client, ns, NAME).await.as_ref().is_some_and(is_ready) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the roll did not finish: replaced {replaced:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("replaced in order (role just before): {replaced:?}");
    let order: Vec<&str> = replaced.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order.len(), 3, "{replaced:?}");
    assert_eq!(order[2], leader, "the leader ({leader}) goes last: {replaced:?}");
    assert_eq!(replaced[2].1, Some(Role::Leader), "the last one was still the leader when it went: {replaced:?}");
    assert!(replaced[..2].iter().all(|(_, r)| *r == Some(Role::Follower)), "followers first: {replaced:?}");
    // The ensemble has a leader again, among the restarted servers.
    let after = wait_for("a leader after the roll", REAL, || {
        let client = client.clone();
        async move { roles(&client, ns).await.filter(|r| one_leader(r).is_some()) }
    })
    .await;
    eprintln!("after the roll: {after:?}");
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}
