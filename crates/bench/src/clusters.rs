//! The quick-start clusters: their manifests, their rendered objects, the
//! gateway prerequisites, and waiting for them (on watch caches, so the
//! bench adds no polling load on the API server).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, ZooKeeperCluster};
use magnetar_testenv::apply::{Applier, ensure_namespace};

/// The quick start's resources are all called this.
pub const NAME: &str = "private-cloud";
/// The field manager `kubectl apply --server-side` uses.
pub const KUBECTL: &str = "kubectl";

/// `../shared/compat/streamnative-quick-start-istio.yaml`, with every
/// document in `ns`.
pub fn quick_start(ns: &str) -> anyhow::Result<Vec<Value>> {
    let path = magnetar_testenv::repo_root()?.join("../shared/compat/streamnative-quick-start-istio.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut docs = magnetar_testenv::crds::yaml_documents(&text)?;
    for d in &mut docs {
        d["metadata"]["namespace"] = json!(ns);
    }
    Ok(docs)
}

/// What `magnetar render` makes of the quick start in `ns`, in apply order.
pub fn rendered(ns: &str) -> anyhow::Result<Vec<Value>> {
    let inputs: Vec<(String, String)> =
        quick_start(ns)?.iter().enumerate().map(|(i, d)| (format!("quick-start[{i}]"), d.to_string())).collect();
    let mut out = magnetar_desired::render::render(&inputs).map_err(|e| anyhow!("rendering the quick start: {e}"))?;
    magnetar_desired::object::sort(&mut out.objects);
    Ok(out.objects.into_iter().map(|o| o.value).collect())
}

/// Server-side applies `docs` one after the other, as `kubectl apply
/// --server-side -f` does.
pub async fn apply_in_order(applier: &Applier, docs: &[Value]) -> anyhow::Result<()> {
    for d in docs {
        applier.apply(d).await.with_context(|| {
            format!("applying {} {}/{}", d["kind"], d["metadata"]["namespace"], d["metadata"]["name"])
        })?;
    }
    Ok(())
}

/// The ingress gateway's pod and TLS secret in istio-system, as the
/// operator's tests set them up.
pub async fn ensure_gateway(client: &Client, deadline: Duration) -> anyhow::Result<()> {
    ensure_namespace(client, "istio-system").await?;
    let applier = Applier::new(client.clone(), "magnetar-bench");
    applier
        .apply(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"istio": "ingressgateway"}},
                "template": {
                    "metadata": {"labels": {"istio": "ingressgateway", "app": "istio-ingressgateway"}},
                    "spec": {"containers": [{"name": "istio-proxy", "image": "istio/proxyv2:1.24.2"}]}
                }
            }
        }))
        .await?;
    applier
        .apply(&json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "ingressgateway-tls", "namespace": "istio-system"},
            "stringData": {"tls.crt": "not-a-real-cert", "tls.key": "not-a-real-key"}
        }))
        .await?;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "istio-system");
    poll("the ingress gateway Ready", deadline, Duration::from_millis(200), || {
        let deps = deps.clone();
        async move {
            let d = deps.get_opt("istio-ingressgateway").await.ok()??;
            (d.status?.ready_replicas == Some(1)).then_some(())
        }
    })
    .await
}

/// Polls `check` every `every` until it returns Some, failing after `deadline`.
pub async fn poll<T, F, Fut>(what: &str, deadline: Duration, every: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// A watch cache of one kind, in every namespace; the watch stops when
/// this is dropped.
pub struct Cache<K: Resource + Clone + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    pub store: Store<K>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: Resource + Clone + 'static> Drop for Cache<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn cache<K>(api: Api<K>, dyntype: K::DynamicType) -> anyhow::Result<Cache<K>>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
{
    let writer = reflector::store::Writer::new(dyntype);
    let store = writer.as_reader();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let task = tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    tokio::time::timeout(Duration::from_secs(60), store.wait_until_ready())
        .await
        .map_err(|_| anyhow!("a watch cache did not sync within 60s"))??;
    Ok(Cache { store, task })
}

/// Watch caches of the four quick-start kinds.
pub struct Resources {
    kinds: Vec<(ApiResource, Cache<DynamicObject>)>,
}

impl Resources {
    pub async fn watch(client: &Client) -> anyhow::Result<Resources> {
        let mut kinds = Vec::new();
        for ar in [
            ApiResource::erase::<PulsarCoordinator>(&()),
            ApiResource::erase::<ZooKeeperCluster>(&()),
            ApiResource::erase::<BookKeeperCluster>(&()),
            ApiResource::erase::<PulsarBroker>(&()),
        ] {
            let c = cache(Api::<DynamicObject>::all_with(client.clone(), &ar), ar.clone()).await?;
            kinds.push((ar, c));
        }
        Ok(Resources { kinds })
    }

    /// Every resource of the quick start in `ns` Ready for its current
    /// generation, and the broker's external endpoints published (what the
    /// operator's tests call converged).
    pub fn converged(&self, ns: &str) -> bool {
        self.kinds.iter().all(|(ar, c)| {
            let Some(o) = c.store.get(&ObjectRef::new_with(NAME, ar.clone()).within(ns)) else { return false };
            let endpoints = ar.kind != "PulsarBroker" || !o.data["status"]["serviceEndpoints"]["external"].is_null();
            ready_for_generation(&o) && endpoints
        })
    }
}

fn ready_for_generation(o: &DynamicObject) -> bool {
    let generation = o.metadata.generation;
    o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True" && c["observedGeneration"].as_i64() == generation)
    })
}

/// Watch caches of StatefulSets and Deployments (the floor's workloads).
pub struct Workloads {
    sts: Cache<StatefulSet>,
    deps: Cache<Deployment>,
}

impl Workloads {
    pub async fn watch(client: &Client) -> anyhow::Result<Workloads> {
        Ok(Workloads {
            sts: cache(Api::all(client.clone()), ()).await?,
            deps: cache(Api::all(client.clone()), ()).await?,
        })
    }

    /// `expected` StatefulSets and Deployments (by name) exist in `ns`, and
    /// each has as many ready replicas as it asks for.
    pub fn ready(&self, ns: &str, expected: &BTreeSet<(String, String)>) -> bool {
        let mut seen = 0;
        for s in self.sts.store.state().iter().filter(|s| s.namespace().as_deref() == Some(ns)) {
            if !expected.contains(&("StatefulSet".to_string(), s.name_any())) {
                continue;
            }
            let want = s.spec.as_ref().and_then(|x| x.replicas).unwrap_or(1);
            if s.status.as_ref().and_then(|x| x.ready_replicas).unwrap_or(0) != want {
                return false;
            }
            seen += 1;
        }
        for d in self.deps.store.state().iter().filter(|d| d.namespace().as_deref() == Some(ns)) {
            if !expected.contains(&("Deployment".to_string(), d.name_any())) {
                continue;
            }
            let want = d.spec.as_ref().and_then(|x| x.replicas).unwrap_or(1);
            if d.status.as_ref().and_then(|x| x.ready_replicas).unwrap_or(0) != want {
                return false;
            }
            seen += 1;
        }
        seen == expected.len()
    }
}

/// `(kind, name)` of the StatefulSets and Deployments among `docs`.
pub fn workloads_of(docs: &[Value]) -> BTreeSet<(String, String)> {
    docs.iter()
        .filter(|d| d["kind"] == "StatefulSet" || d["kind"] == "Deployment")
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_string(),
                d["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Checks `done(ns)` for every namespace every 100 ms until all are done;
/// returns how long each took from `start`.
pub async fn wait_each(
    what: &str,
    namespaces: &[String],
    start: Instant,
    deadline: Duration,
    mut alive: impl FnMut() -> anyhow::Result<()>,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<BTreeMap<String, Duration>> {
    let mut times = BTreeMap::new();
    loop {
        for ns in namespaces {
            if !times.contains_key(ns) && done(ns) {
                times.insert(ns.clone(), start.elapsed());
            }
        }
        if times.len() == namespaces.len() {
            return Ok(times);
        }
        alive()?;
        if start.elapsed() > deadline {
            let missing: Vec<&String> = namespaces.iter().filter(|n| !times.contains_key(*n)).collect();
            bail!(
                "timed out after {deadline:?} waiting for {what}: {} of {} not done, e.g. {:?}",
                missing.len(),
                namespaces.len(),
                &missing[..missing.len().min(5)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the namespaces.
pub async fn create_namespaces(client: &Client, namespaces: &[String]) -> anyhow::Result<()> {
    for ns in namespaces {
        ensure_namespace(client, ns).await?;
    }
    Ok(())
}

/// Deletes the namespaces and waits until they (and so everything in them,
/// pods included) are gone.
pub async fn delete_namespaces(client: &Client, namespaces: &[String], deadline: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let api: Api<Namespace> = Api::all(client.clone());
    for ns in namespaces {
        match api.delete(ns, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("deleting namespace {ns}")),
        }
    }
    let wanted: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
    poll("the namespaces to be deleted", deadline, Duration::from_millis(500), || {
        let (api, wanted) = (api.clone(), wanted.clone());
        async move {
            let l = api.list_metadata(&ListParams::default()).await.ok()?;
            (!l.items.iter().any(|n| n.metadata.name.as_deref().is_some_and(|n| wanted.contains(n)))).then_some(())
        }
    })
    .await?;
    Ok(start.elapsed())
}
