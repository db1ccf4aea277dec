//! Istio's own control plane judges and injects what the operator writes
//! (issue 9.3). The control plane of this binary runs istiod
//! (magnetar-testenv `Options::with_istiod`): its validating webhook sees
//! every Istio object the API server admits and fails closed, and its
//! injector adds the real sidecar to every pod labelled for injection.
//! kwok then runs the injected pods like any other (their containers
//! "start"; nothing executes Envoy).

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use common::*;
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, ZooKeeperCluster};
use magnetar_desired::mesh::PodEnrolment;
use magnetar_operator::kinds;
use magnetar_testenv::ControlPlane;

async fn istiod_env() -> &'static ControlPlane {
    let options = magnetar_testenv::Options::default().with_istiod().label("istiod");
    magnetar_testenv::shared(options).await.expect("control plane with istiod")
}

/// The live pods of one component (`app.kubernetes.io/component`).
async fn pods_of(client: &Client, ns: &str, component: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/component={component}"));
    api.list(&lp).await.unwrap().items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
}

fn containers(pod: &Pod) -> Vec<String> {
    let spec = pod.spec.as_ref();
    let init = spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten();
    let main = spec.map(|s| s.containers.iter()).into_iter().flatten();
    init.chain(main).map(|c| c.name.clone()).collect()
}

/// Injected by istiod: its status annotation, naming the istio-proxy
/// container it added, and that container in the pod.
fn injected(pod: &Pod) -> bool {
    let status = pod.annotations().get("sidecar.istio.io/status").and_then(|s| serde_json::from_str::<Value>(s).ok());
    let names_proxy =
        status.is_some_and(|s| s["containers"].as_array().is_some_and(|c| c.contains(&json!("istio-proxy"))));
    names_proxy && containers(pod).iter().any(|c| c == "istio-proxy")
}

/// Out of the sidecar and labelled for ztunnel.
fn ambient(pod: &Pod) -> bool {
    PodEnrolment::of(pod.annotations()) == PodEnrolment::None
        && !containers(pod).iter().any(|c| c == "istio-proxy")
        && pod.labels().get("istio.io/dataplane-mode").map(String::as_str) == Some("ambient")
}

/// `istioctl analyze` of one namespace of the live control plane: every
/// message, info and up (objects outside the namespace included, where the
/// analyzers report on them).
fn analyze_live(env: &ControlPlane, ns: &str) -> Vec<Value> {
    let bin = magnetar_testenv::istio_tools().unwrap().join("bin/istioctl");
    let out = std::process::Command::new(&bin)
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(["analyze", "--namespace", ns, "--failure-threshold", "Info", "-o", "json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let messages: Vec<Value> = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("istioctl analyze printed no JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    messages
}

const COMPONENTS: [&str; 3] = ["zookeeper", "bookie", "broker"];

#[tokio::test]
async fn istiod_admits_every_istio_object_and_injects_every_pod() {
    let ns = "istiod-quick-start";
    let env = istiod_env().await;
    let istiod = env.istiod().expect("istiod runs");
    let client = setup_on(env, ns).await;
    // The webhook is in the path and fails closed: what istiod finds
    // invalid (and the CRD schema accepts) is refused.
    magnetar_testenv::istiod::refused_by_istiod(&client).await.expect("istiod refuses an invalid VirtualService");
    let before = istiod.validations().await.unwrap();

    let op = start_operator(&client, ns).await;
    apply_all(&client, &quick_start(ns)).await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;

    // Every Istio object the operator keeps went through istiod's webhook.
    let istio_objects = live_set(&client, ns)
        .await
        .into_iter()
        .filter(|(kind, _)| kinds::ISTIO.iter().any(|k| k.kind == kind.as_str()))
        .count();
    assert!(istio_objects >= 10, "the quick start has Istio objects: {istio_objects}");
    let after = istiod.validations().await.unwrap();
    let passed = after.passed - before.passed;
    assert!(passed >= istio_objects as f64, "istiod validated {passed} objects; the operator keeps {istio_objects}");
    assert_eq!(after.failed, before.failed, "istiod refused something the operator sent");

    // Every pod of ZooKeeper, BookKeeper and the brokers carries the real
    // sidecar, and the status counts exactly those.
    for component in COMPONENTS {
        let pods = pods_of(&client, ns, component).await;
        assert!(!pods.is_empty(), "{component} has pods");
        for p in &pods {
            assert!(injected(p), "{} not injected: containers {:?}", p.name_any(), containers(p));
        }
    }
    let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await.unwrap();
    let bk = get_json::<BookKeeperCluster>(&client, ns, NAME).await.unwrap();
    let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
    for (v, component) in [(&zk, "zookeeper"), (&bk, "bookie"), (&pb, "broker")] {
        let injected = pods_of(&client, ns, component).await.iter().filter(|p| injected(p)).count();
        assert_eq!(v["status"]["mesh"]["onMeshReplicas"], json!(injected), "{component}: {}", v["status"]["mesh"]);
        assert_eq!(v["spec"]["replicas"], json!(injected), "{component}");
    }

    // istioctl analyze against the live control plane, with the operator's
    // objects, the injected pods and istiod's own configuration: nothing on
    // any object of the cluster's namespace, and beside it only the two
    // messages docs/design.md lists ("istioctl analyze: messages we
    // accept"): the test's webhooks are registered by loopback address
    // (IST0164), and the namespace is not labelled for injection (IST0102:
    // magnetar enrols pods by their own label, the namespace is the user's).
    let messages = analyze_live(env, ns);
    let in_namespace = format!(" {ns}/");
    let (ours, beside): (Vec<&Value>, Vec<&Value>) =
        messages.iter().partition(|m| m["origin"].as_str().is_some_and(|o| o.contains(&in_namespace)));
    assert!(ours.is_empty(), "istioctl analyze on the live cluster, on the operator's objects: {ours:#?}");
    for m in beside {
        let (code, origin) = (m["code"].as_str().unwrap_or_default(), m["origin"].as_str().unwrap_or_default());
        let accepted = (code == "IST0164" && origin.contains("WebhookConfiguration istio-"))
            || (code == "IST0102" && origin == format!("Namespace {ns}"));
        assert!(accepted, "istioctl analyze on the live cluster: {m:#}");
    }
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn sidecars_give_way_to_ambient_one_component_at_a_time() {
    let ns = "istiod-ambient";
    let env = istiod_env().await;
    let client = setup_on(env, ns).await;
    let op = start_operator(&client, ns).await;
    // Hosts and a certificate of its own: two clusters claiming one host,
    // or one certificate, on the shared gateway is a conflict istioctl
    // analyze rightly reports (IST0145, IST0138).
    let mut docs = quick_start(ns);
    for d in docs.iter_mut().filter(|d| d["kind"] == "PulsarBroker") {
        d["spec"]["config"]["advertisedDomain"] = json!("ambient.example.com");
        d["spec"]["istio"]["gateway"]["tls"]["certSecretName"] = json!("ambient-example-com-tls");
    }
    apply_all(&client, &docs).await;
    magnetar_testenv::prerequisites::ensure_tls_secrets(&client).await.unwrap();
    wait_all_ready(&client, ns).await;
    for component in COMPONENTS {
        assert!(pods_of(&client, ns, component).await.iter().all(injected), "{component} starts with sidecars");
    }

    patch::<PulsarCoordinator>(&client, ns, NAME, json!({"spec": {"istio": {"dataplaneMode": "ambient"}}})).await;
    // When each kind's spec turns ambient, and when all its pods are
    // sidecar-free and labelled for ambient.
    let mut turned: [Option<Instant>; 3] = [None; 3];
    let mut moved: [Option<Instant>; 3] = [None; 3];
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < DEADLINE * 2, "not every component moved: spec {turned:?}, pods {moved:?}");
        let now = Instant::now();
        let specs = [
            get_json::<ZooKeeperCluster>(&client, ns, NAME).await.unwrap(),
            get_json::<BookKeeperCluster>(&client, ns, NAME).await.unwrap(),
            get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap(),
        ];
        for (i, component) in COMPONENTS.into_iter().enumerate() {
            if specs[i]["spec"]["istio"]["dataplaneMode"] == "ambient" && turned[i].is_none() {
                turned[i] = Some(now);
            }
            if moved[i].is_none() {
                let pods = pods_of(&client, ns, component).await;
                if !pods.is_empty() && pods.iter().all(ambient) {
                    moved[i] = Some(now);
                }
            }
        }
        let status_ambient = specs.iter().all(|v| is_ready(v) && v["status"]["mesh"]["dataplaneMode"] == "ambient");
        if status_ambient && moved.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at =
        |s: &[Option<Instant>; 3]| -> Vec<Duration> { s.iter().map(|t| t.expect("seen").duration_since(t0)).collect() };
    let (turned, moved) = (at(&turned), at(&moved));
    eprintln!("spec ambient at {turned:?}; pods without sidecars at {moved:?}");
    // The next kind turns only once the previous one's pods have all left
    // their sidecars.
    assert!(moved[0] <= turned[1] && moved[1] <= turned[2], "one component at a time: spec {turned:?}, pods {moved:?}");
    wait_all_ready(&client, ns).await;
    for component in COMPONENTS {
        for p in pods_of(&client, ns, component).await {
            assert!(ambient(&p), "{}: containers {:?}, labels {:?}", p.name_any(), containers(&p), p.labels());
        }
    }
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}
