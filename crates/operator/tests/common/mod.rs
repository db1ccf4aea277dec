//! Helpers of the operator's integration tests: a shared control plane
//! (magnetar-testenv), the quick-start example in a namespace of its own, an
//! in-process operator scoped to that namespace, and polling waits.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, ZooKeeperCluster};
use magnetar_desired::OperatorIdentity;
use magnetar_desired::cluster::{ClusterKey, Inventory};
use magnetar_operator::kinds;
use magnetar_operator::{Operator, Options};
use magnetar_testenv::apply::{Applier, ensure_namespace};
use magnetar_testenv::{ControlPlane, ISTIO_GUIDE};

pub const DEADLINE: Duration = Duration::from_secs(240);
pub const NAME: &str = "private-cloud";

pub fn env_options() -> magnetar_testenv::Options {
    magnetar_testenv::Options::default().with_workloads().istio(ISTIO_GUIDE).label("operator")
}

pub async fn env() -> &'static ControlPlane {
    magnetar_testenv::shared(env_options()).await.expect("control plane")
}

/// Polls `check` every 100 ms until it returns Some, or panics after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The quick-start example with its namespace replaced by `ns`.
pub fn quick_start(ns: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/compat/streamnative-quick-start-istio.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = magnetar_testenv::crds::yaml_documents(&text).expect("quick-start parses");
    for d in &mut docs {
        d["metadata"]["namespace"] = json!(ns);
    }
    docs
}

/// The ingress gateway stand-in (`magnetar_testenv::prerequisites`) and the
/// quick start's TLS secret in istio-system (shared by all tests; applied
/// idempotently).
pub async fn ensure_gateway(client: &Client) {
    magnetar_testenv::prerequisites::install(client).await.unwrap();
    // The quick start's gateway certificate, a real (self-signed) one, as
    // Istio's analyzers and the gateway would parse it.
    let names = ["example.com", "*.example.com"].map(String::from);
    magnetar_testenv::prerequisites::ensure_tls_secret(client, "istio-system", "ingressgateway-tls", &names)
        .await
        .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "istio-system");
    wait_for("an ingress gateway pod", DEADLINE, || {
        let pods = pods.clone();
        async move {
            let l = pods.list_metadata(&ListParams::default().labels("istio=ingressgateway")).await.ok()?;
            (!l.items.is_empty()).then_some(())
        }
    })
    .await;
}

pub fn operator_options(ns: &str) -> Options {
    Options { namespace: Some(ns.to_string()), istio_recheck: Duration::from_secs(1), ..Options::default() }
}

/// A namespace, the gateway prerequisites and a client.
pub async fn setup(ns: &str) -> Client {
    setup_on(env().await, ns).await
}

/// [`setup`] on a control plane of the caller's choice.
pub async fn setup_on(env: &ControlPlane, ns: &str) -> Client {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let client = env.client().await.unwrap();
    ensure_gateway(&client).await;
    let api: Api<Namespace> = Api::all(client.clone());
    // A namespace left over by an earlier run is removed first.
    if api.get_opt(ns).await.unwrap().is_some() {
        let _ = api.delete(ns, &Default::default()).await;
        wait_for("the old namespace to go", DEADLINE, || {
            let api = api.clone();
            async move { api.get_opt(ns).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }
    ensure_namespace(&client, ns).await.unwrap();
    client
}

pub async fn start_operator(client: &Client, ns: &str) -> Operator {
    let op = Operator::start(client.clone(), operator_options(ns));
    assert!(op.wait_ready(DEADLINE).await, "operator caches did not sync");
    op
}

/// `kubectl apply --server-side` of documents.
pub async fn apply_all(client: &Client, docs: &[Value]) {
    let applier = Applier::new(client.clone(), "kubectl");
    for d in docs {
        applier.apply(d).await.unwrap_or_else(|e| panic!("applying {}: {e}", d["metadata"]["name"]));
    }
}

/// A merge patch on a resource, the way `kubectl patch --type merge` does.
pub async fn patch<K>(client: &Client, ns: &str, name: &str, patch: Value)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

/// The condition `type_` of a resource as JSON, if present for its current generation.
pub fn condition(obj: &Value, type_: &str) -> Option<Value> {
    let gen_ = obj["metadata"]["generation"].clone();
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["observedGeneration"] == gen_)
        .cloned()
}

pub fn is_ready(obj: &Value) -> bool {
    condition(obj, "Ready").is_some_and(|c| c["status"] == "True")
}

pub async fn get_json<K>(client: &Client, ns: &str, name: &str) -> Option<Value>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.get_opt(name).await.ok()?.map(|o| serde_json::to_value(o).unwrap())
}

/// Every resource of the quick-start Ready for its current generation, and
/// the broker's endpoints published.
pub async fn all_ready(client: &Client, ns: &str) -> bool {
    let zk = get_json::<ZooKeeperCluster>(client, ns, NAME).await;
    let bk = get_json::<BookKeeperCluster>(client, ns, NAME).await;
    let pb = get_json::<PulsarBroker>(client, ns, NAME).await;
    let pc = get_json::<PulsarCoordinator>(client, ns, NAME).await;
    let (Some(zk), Some(bk), Some(pb), Some(pc)) = (zk, bk, pb, pc) else { return false };
    let endpoints = !pb["status"]["serviceEndpoints"]["external"].is_null();
    is_ready(&zk) && is_ready(&bk) && is_ready(&pb) && is_ready(&pc) && endpoints
}

pub async fn wait_all_ready(client: &Client, ns: &str) {
    let start = Instant::now();
    while !all_ready(client, ns).await {
        if start.elapsed() > DEADLINE {
            for v in [
                get_json::<PulsarCoordinator>(client, ns, NAME).await,
                get_json::<ZooKeeperCluster>(client, ns, NAME).await,
                get_json::<BookKeeperCluster>(client, ns, NAME).await,
                get_json::<PulsarBroker>(client, ns, NAME).await,
            ]
            .into_iter()
            .flatten()
            {
                eprintln!(
                    "{} generation {}: {}",
                    v["kind"],
                    v["metadata"]["generation"],
                    serde_json::to_string_pretty(&v["status"]).unwrap()
                );
            }
            panic!("timed out after {DEADLINE:?} waiting for every resource Ready with endpoints");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The kind as [`live_set`] names it: a Gateway API kind is qualified by
/// its group (`Gateway.gateway.networking.k8s.io`), Istio's Gateway is not.
pub fn kind_key(group: &str, kind: &str) -> String {
    if group == kinds::GATEWAY_API { format!("{kind}.{group}") } else { kind.to_string() }
}

/// `(kind, name)` of every managed object in `ns` (generated kinds only;
/// see [`kind_key`]).
pub async fn live_set(client: &Client, ns: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for kind in kinds::all() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource(None));
        let list = match api.list(&ListParams::default().labels("app.kubernetes.io/managed-by=magnetar")).await {
            Ok(list) => list,
            // A kind whose CRDs are not installed has no objects.
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => panic!("listing {}: {e}", kind.kind),
        };
        for o in list.items {
            if o.metadata.deletion_timestamp.is_none() {
                out.insert((kind_key(kind.group, kind.kind), o.name_any()));
            }
        }
    }
    out
}

/// Every managed object in `ns` with its controller's UID.
pub async fn live_owners(client: &Client, ns: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for kind in kinds::all() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource(None));
        let list = match api.list(&ListParams::default().labels("app.kubernetes.io/managed-by=magnetar")).await {
            Ok(list) => list,
            // A kind whose CRDs are not installed has no objects.
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => panic!("listing {}: {e}", kind.kind),
        };
        for o in list.items {
            let owners = o
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.controller == Some(true))
                .map(|r| r.uid.clone())
                .collect();
            out.push((kind.kind.to_string(), o.name_any(), owners));
        }
    }
    out
}

/// What the build step says should exist, for the live resources of `ns`.
pub async fn desired_set(client: &Client, ns: &str) -> BTreeSet<(String, String)> {
    async fn list<K>(client: &Client, ns: &str) -> Vec<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        api.list(&ListParams::default()).await.unwrap().items
    }
    let inv = Inventory {
        coordinators: list(client, ns).await,
        zookeepers: list(client, ns).await,
        bookkeepers: list(client, ns).await,
        brokers: list(client, ns).await,
        proxies: list(client, ns).await,
    };
    let id = OperatorIdentity::default();
    let mut objects = Vec::new();
    for o in &inv.zookeepers {
        objects.extend(magnetar_desired::build_zookeeper(o, &inv.context_for(o.meta(), &id)).unwrap());
    }
    for o in &inv.bookkeepers {
        objects.extend(magnetar_desired::build_bookkeeper(o, &inv.context_for(o.meta(), &id)).unwrap());
    }
    for o in &inv.brokers {
        objects.extend(magnetar_desired::build_broker(o, &inv.context_for(o.meta(), &id)).unwrap());
    }
    for o in &inv.proxies {
        objects.extend(magnetar_desired::build_proxy(o, &inv.context_for(o.meta(), &id)).unwrap());
    }
    for c in &inv.coordinators {
        let key = ClusterKey::Coordinator(c.name_any());
        let ctx = magnetar_desired::BuildContext {
            peers: inv.peers(ns, &key),
            operator: id.clone(),
            ..magnetar_desired::BuildContext::default()
        };
        objects.extend(magnetar_desired::build_coordinator(c, &inv.brokers_of(ns, &key), &ctx).unwrap());
    }
    objects.into_iter().map(|o| (kind_key(o.group(), &o.kind), o.name)).collect()
}

/// Waits until the managed objects are exactly what the build step says.
pub async fn wait_exact(client: &Client, ns: &str) {
    let start = Instant::now();
    loop {
        let live = live_set(client, ns).await;
        let desired = desired_set(client, ns).await;
        if live == desired {
            return;
        }
        if start.elapsed() > DEADLINE {
            let missing: Vec<_> = desired.difference(&live).collect();
            let extra: Vec<_> = live.difference(&desired).collect();
            panic!("managed objects never matched the build: missing {missing:?}, extra {extra:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Brings the quick-start up with a running operator; returns when converged.
pub async fn converged_quick_start(ns: &str) -> (Client, Operator) {
    let client = setup(ns).await;
    let op = start_operator(&client, ns).await;
    apply_all(&client, &quick_start(ns)).await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    (client, op)
}

/// Deletes the namespace (best effort, at the end of a test).
pub async fn cleanup(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(ns, &Default::default()).await;
}

/// A managed object as JSON.
pub async fn get_dyn(client: &Client, ns: &str, kind: &str, name: &str) -> Option<Value> {
    let k = kinds::all().find(|k| k.kind == kind).expect("known kind");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &k.resource(None));
    api.get_opt(name).await.ok()?.map(|o| serde_json::to_value(o).unwrap())
}
