//! Failover: two `magnetar run` processes with leader election against the
//! test control plane. Only the Lease holder reconciles (the other's write
//! counter stays 0 and every Event names the holder); the leader is killed
//! with SIGKILL, a managed object is deleted by hand, and the other must
//! hold the Lease and have recreated the object within the bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use magnetar_testenv::apply::ensure_namespace;
use magnetar_testenv::{ControlPlane, Options, shared};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(120);

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, response))
}

/// A sample of one instance's `/metrics`.
fn metric(addr: &str, name: &str) -> Option<u64> {
    let (_, body) = get(addr, "/metrics")?;
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// One `magnetar run` process; killed (SIGKILL) when dropped.
struct Instance {
    name: String,
    addr: String,
    child: Child,
}

impl Instance {
    fn start(env: &ControlPlane, name: &str, lease_ns: &str, watch_ns: &str, lease: Option<u64>) -> Instance {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let log = std::fs::File::create(env.log_dir().join(format!("{name}.log"))).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_magnetar"));
        cmd.args(["run", "--metrics-addr", &addr, "--namespace", lease_ns, "--pod-name", name])
            .args(["--watch-namespace", watch_ns])
            .env("KUBECONFIG", env.kubeconfig())
            .env("RUST_LOG", "info,kube_runtime=warn")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(seconds) = lease {
            cmd.args(["--lease-duration", &seconds.to_string()]);
        }
        let child = cmd.spawn().unwrap();
        Instance { name: name.to_string(), addr, child }
    }

    fn writes(&self) -> Option<u64> {
        metric(&self.addr, "magnetar_write_requests_total")
    }

    fn leader(&self) -> Option<u64> {
        metric(&self.addr, "magnetar_leader")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases.get_opt("magnetar-leader").await.ok().flatten()?.spec?.holder_identity
}

async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The quick start's ZooKeeperCluster in `ns` (no prerequisites: no gateway
/// pod, no TLS secret), applied as `kubectl apply --server-side` would.
async fn apply_zookeeper(client: &Client, ns: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/compat/streamnative-quick-start-istio.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = magnetar_testenv::crds::yaml_documents(&text).unwrap();
    let mut zk: Value = docs.into_iter().find(|d| d["kind"] == "ZooKeeperCluster").unwrap();
    zk["metadata"]["namespace"] = Value::String(ns.to_string());
    let api: Api<magnetar_api::ZooKeeperCluster> = Api::namespaced(client.clone(), ns);
    let name = zk["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &PatchParams::apply("kubectl").force(), &Patch::Apply(&zk)).await.unwrap();
}

/// `reportingInstance` of every Event magnetar published in `ns`.
async fn reporters(client: &Client, ns: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("magnetar"))
        .map(|e| e.reporting_instance.unwrap_or_default())
        .collect()
}

/// The whole failover; returns (time to the Lease, time to the reconcile).
async fn failover(label: &str, lease: Option<u64>) -> (Duration, Duration) {
    let env = shared(Options::default().label("failover")).await.unwrap();
    let client = env.client().await.unwrap();
    let (lease_ns, ns) = (format!("{label}-system"), format!("{label}-watched"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for n in [&lease_ns, &ns] {
        if namespaces.get_opt(n).await.unwrap().is_some() {
            let _ = namespaces.delete(n, &DeleteParams::default()).await;
            wait_for("an old namespace to go", DEADLINE, || {
                let namespaces = namespaces.clone();
                async move { namespaces.get_opt(n).await.ok()?.is_none().then_some(()) }
            })
            .await;
        }
        ensure_namespace(&client, n).await.unwrap();
    }
    apply_zookeeper(&client, &ns).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &lease_ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);

    // The first instance takes the Lease and reconciles.
    let a = Instance::start(env, &format!("{label}-a"), &lease_ns, &ns, lease);
    wait_for("the first instance leading and ready", DEADLINE, || {
        let leases = leases.clone();
        let ready = get(&a.addr, "/readyz").is_some_and(|(code, _)| code == 200);
        let name = a.name.clone();
        async move { (ready && holder(&leases).await.as_deref() == Some(name.as_str())).then_some(()) }
    })
    .await;
    // The second waits: not leader, not ready, no write.
    let b = Instance::start(env, &format!("{label}-b"), &lease_ns, &ns, lease);
    wait_for("the second instance serving /metrics", DEADLINE, || async { b.writes() }).await;
    let zk_service = "private-cloud-zk";
    let old = wait_for("ZooKeeper's objects applied by the leader", DEADLINE, || {
        let services = services.clone();
        async move { services.get_opt(zk_service).await.ok()? }
    })
    .await;
    // A while of both running: the leader done with its pass (quiet), the
    // standby still without a single write.
    let mut last = a.writes();
    let mut stable = Instant::now();
    wait_for("the leader to go quiet", DEADLINE, || {
        let now = a.writes();
        if now != last {
            last = now;
            stable = Instant::now();
        }
        assert_eq!(b.writes(), Some(0), "the standby wrote while another held the Lease");
        assert_eq!(b.leader(), Some(0), "two leaders");
        // Ready to take over (a Deployment of two is fully ready), but not
        // running its controllers.
        assert_eq!(get(&b.addr, "/readyz").map(|(c, _)| c), Some(200), "the standby is not ready to take over");
        assert_eq!(metric(&b.addr, "magnetar_ready"), Some(0), "the standby runs its controllers");
        let quiet = stable.elapsed() > Duration::from_secs(2);
        async move { quiet.then_some(()) }
    })
    .await;
    let leader_writes = a.writes().unwrap();
    assert!(leader_writes > 0, "the leader wrote nothing");
    let before = reporters(&client, &ns).await;
    assert!(!before.is_empty(), "the leader published Events");
    assert!(before.iter().all(|r| *r == a.name), "Events before the kill come from the leader only: {before:?}");
    let transitions = leases.get("magnetar-leader").await.unwrap().spec.unwrap().lease_transitions.unwrap_or(0);

    // SIGKILL: no release of the Lease. Then a change only a reconcile repairs.
    let mut a = a;
    let t0 = Instant::now();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    services.delete(zk_service, &DeleteParams::default()).await.unwrap();
    let old_uid = old.uid().unwrap();
    let mut to_lease = None;
    let to_reconcile = loop {
        assert!(t0.elapsed() < DEADLINE, "the standby never took over and recreated the Service");
        if to_lease.is_none() && holder(&leases).await.as_deref() == Some(b.name.as_str()) {
            to_lease = Some(t0.elapsed());
        }
        let recreated =
            services.get_opt(zk_service).await.ok().flatten().is_some_and(|s| {
                s.uid().as_deref() != Some(old_uid.as_str()) && s.metadata.deletion_timestamp.is_none()
            });
        if to_lease.is_some() && recreated {
            break t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let to_lease = to_lease.unwrap();
    assert_eq!(b.leader(), Some(1), "the survivor leads");
    let b_writes = b.writes().unwrap();
    assert!(b_writes > 0, "the survivor recreated the Service, so it wrote");
    let lease_now = leases.get("magnetar-leader").await.unwrap().spec.unwrap();
    assert_eq!(lease_now.lease_transitions, Some(transitions + 1), "one change of holder");
    let after = reporters(&client, &ns).await;
    assert!(after.iter().all(|r| *r == a.name || *r == b.name), "Events from an unknown instance: {after:?}");
    eprintln!(
        "{label}: lease {}s (renew every {:.1}s, renew deadline {:.1}s, standby retry {:.1}s); leader {} made \
         {leader_writes} writes, standby 0 until the kill; after SIGKILL the standby held the Lease in {:.1}s and \
         had recreated Service/{zk_service} in {:.1}s ({b_writes} writes); Events by the survivor: {}",
        lease_now.lease_duration_seconds.unwrap_or_default(),
        f64::from(lease_now.lease_duration_seconds.unwrap_or_default()) / 3.0,
        f64::from(lease_now.lease_duration_seconds.unwrap_or_default()) * 2.0 / 3.0,
        f64::from(lease_now.lease_duration_seconds.unwrap_or_default()) / 3.0,
        a.name,
        to_lease.as_secs_f64(),
        to_reconcile.as_secs_f64(),
        after.iter().filter(|r| **r == b.name).count(),
    );
    drop(b);
    drop(a);
    for n in [&lease_ns, &ns] {
        let _ = namespaces.delete(n, &DeleteParams::default()).await;
    }
    (to_lease, to_reconcile)
}

/// With `--lease-duration 8`: the standby takes over within 8 s of the
/// last renewal plus one look (1 s), and reconciles right after.
#[tokio::test]
async fn killed_leader_is_replaced_and_the_change_reconciled_within_15_seconds() {
    let (_, reconciled) = failover("failover-8s", Some(8)).await;
    assert!(reconciled < Duration::from_secs(15), "took {reconciled:?}");
}

/// The default Lease (12 s): the standby takes over within the Lease plus
/// one look (1 s) and reconciles the change: within 15 s of the kill.
#[tokio::test]
async fn killed_leader_with_the_default_lease_is_replaced_within_15_seconds() {
    let (_, reconciled) = failover("failover-default", None).await;
    assert!(reconciled < Duration::from_secs(15), "took {reconciled:?}");
}
