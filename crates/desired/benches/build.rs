//! Build-step benchmark (docs/performance.md): the StreamNative quick-start
//! example and a 10-broker cluster with every protocol on, built from typed
//! resources (parsed, propagated and given their BuildContext once, outside
//! the timing loop), built and serialised, and rendered from YAML text; and,
//! for reference, a clone of the built objects.
//!
//! Run: cargo bench -p magnetar-desired --bench build -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kube::{Resource, ResourceExt};
use magnetar_api::{PulsarBroker, PulsarCoordinator};
use magnetar_desired::cluster::{ClusterKey, Inventory};
use magnetar_desired::{BuildContext, Object, OperatorIdentity, propagate};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The allocator the `magnetar` binary (and so the operator) uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUICK_START: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compat/streamnative-quick-start-istio.yaml");

/// Coordinator, ZooKeeper, BookKeeper, 10 brokers with KoP (TLS), MoP and
/// AoP (with their proxies) behind the gateway, a proxy, and the toolset.
const TEN_BROKERS: &str = r#"
apiVersion: k8s.streamnative.io/v1alpha1
kind: PulsarCoordinator
metadata: {name: big, namespace: pulsar}
spec:
  image: streamnative/private-cloud:4.0.5.2
  istio: {revision: default, trustDomain: cluster.local, dataplaneMode: sidecar, mtls: {mode: strict}}
  toolSet: {replicas: 1}
---
apiVersion: zookeeper.streamnative.io/v1alpha1
kind: ZooKeeperCluster
metadata: {name: big, namespace: pulsar, labels: {k8s.streamnative.io/coordinator-name: big}}
spec: {replicas: 3, istio: {enabled: true}}
---
apiVersion: bookkeeper.streamnative.io/v1alpha1
kind: BookKeeperCluster
metadata: {name: big, namespace: pulsar, labels: {k8s.streamnative.io/coordinator-name: big}}
spec: {replicas: 4, zkServers: big-zk:2181, autoRecovery: {replicas: 1}, istio: {enabled: true}}
---
apiVersion: pulsar.streamnative.io/v1alpha1
kind: PulsarBroker
metadata: {name: big, namespace: pulsar, labels: {k8s.streamnative.io/coordinator-name: big}}
spec:
  replicas: 10
  zkServers: big-zk:2181
  config:
    clusterName: big
    advertisedDomain: pulsar.example.com
    serviceURLGenerationPolicy: OrdinalPrefix
    transactionEnabled: true
    protocolHandlers:
      kop:
        enabled: true
        tls: {enabled: true, certSecretName: kop-tls, passwordSecretRef: {name: kop-pass, key: password}}
      mop: {enabled: true, proxyEnabled: true}
      aop: {enabled: true, proxyEnabled: true}
  istio:
    enabled: true
    authRules:
    - fromSource: [{namespaces: [clients]}]
      toOperation: [{ports: ["6650", "9092"]}]
    gateway:
      selector: {istio: ingressgateway}
      tls: {mode: simple, certSecretName: ingressgateway-tls}
  customization:
  - manifest: '{spec: {trafficPolicy: {connectionPool: {tcp: {maxConnections: 1000}}}}}'
    match: {groupVersionKinds: [{group: networking.istio.io, kind: DestinationRule}], name: .*-broker}
---
apiVersion: pulsar.streamnative.io/v1alpha1
kind: PulsarProxy
metadata: {name: big, namespace: pulsar, labels: {k8s.streamnative.io/coordinator-name: big}}
spec: {replicas: 2, brokerAddress: big-broker, istio: {enabled: true}}
"#;

/// Typed resources with their contexts, ready to build.
struct Prepared {
    inventory: Inventory,
    contexts: Vec<BuildContext>,
}

fn typed<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("benchmark input is valid")
}

/// Parses, propagates coordinator settings and computes contexts the way
/// `render` does.
fn prepare(text: &str) -> Prepared {
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect();
    let mut inv = Inventory::default();
    for d in docs.iter().filter(|d| d["kind"] == "PulsarCoordinator") {
        inv.coordinators.push(typed(d.clone()));
    }
    for d in docs.iter().filter(|d| d["kind"] != "PulsarCoordinator") {
        let mut v = d.clone();
        let meta: kube::core::ObjectMeta = serde_json::from_value(v["metadata"].clone()).unwrap_or_default();
        if let Some(c) = inv.coordinator_of(&meta) {
            propagate::apply(&c.spec, &mut v);
        }
        match v["kind"].as_str() {
            Some("ZooKeeperCluster") => inv.zookeepers.push(typed(v)),
            Some("BookKeeperCluster") => inv.bookkeepers.push(typed(v)),
            Some("PulsarBroker") => inv.brokers.push(typed(v)),
            Some("PulsarProxy") => inv.proxies.push(typed(v)),
            _ => {}
        }
    }
    let op = OperatorIdentity::default();
    let metas = inv.zookeepers.iter().map(|r| r.meta().clone());
    let metas = metas
        .chain(inv.bookkeepers.iter().map(|r| r.meta().clone()))
        .chain(inv.brokers.iter().map(|r| r.meta().clone()))
        .chain(inv.proxies.iter().map(|r| r.meta().clone()))
        .chain(inv.coordinators.iter().map(|r| r.meta().clone()))
        .collect::<Vec<_>>();
    let contexts = metas.iter().map(|m| inv.context_for(m, &op)).collect();
    Prepared { inventory: inv, contexts }
}

fn coordinator_brokers<'a>(inv: &'a Inventory, c: &PulsarCoordinator) -> Vec<&'a PulsarBroker> {
    inv.brokers_of(&c.namespace().unwrap_or_default(), &ClusterKey::Coordinator(c.name_any()))
}

/// Every object of the cluster: the timed part.
fn build(p: &Prepared) -> Vec<Object> {
    let inv = &p.inventory;
    let mut ctx = p.contexts.iter();
    let mut out = Vec::with_capacity(128);
    for r in &inv.zookeepers {
        out.extend(magnetar_desired::build_zookeeper(r, ctx.next().unwrap()).unwrap());
    }
    for r in &inv.bookkeepers {
        out.extend(magnetar_desired::build_bookkeeper(r, ctx.next().unwrap()).unwrap());
    }
    for r in &inv.brokers {
        out.extend(magnetar_desired::build_broker(r, ctx.next().unwrap()).unwrap());
    }
    for r in &inv.proxies {
        out.extend(magnetar_desired::build_proxy(r, ctx.next().unwrap()).unwrap());
    }
    for c in &inv.coordinators {
        let brokers = coordinator_brokers(inv, c);
        out.extend(magnetar_desired::build_coordinator(c, &brokers, ctx.next().unwrap()).unwrap());
    }
    out
}

fn serialise(objects: &[Object]) -> Vec<u8> {
    let values: Vec<&Value> = objects.iter().map(|o| &o.value).collect();
    serde_json::to_vec(&values).expect("objects serialise")
}

fn bench_cluster(c: &mut Criterion, name: &str, text: &str) {
    let prepared = prepare(text);
    let objects = build(&prepared);
    let bytes = serialise(&objects).len();
    eprintln!("{name}: {} objects, {bytes} bytes of JSON", objects.len());
    let inputs = vec![(format!("{name}.yaml"), text.to_string())];
    let mut g = c.benchmark_group(name);
    g.bench_function("build", |b| b.iter(|| build(black_box(&prepared))));
    // Reference: allocating and freeing the same objects without building
    // them, the floor for any builder that returns `serde_json::Value`s.
    g.bench_function("clone-output", |b| b.iter(|| black_box(&objects).clone()));
    g.bench_function("build+serialise", |b| b.iter(|| serialise(&build(black_box(&prepared)))));
    g.bench_function("render-from-text", |b| {
        b.iter(|| magnetar_desired::render::render(black_box(&inputs)).expect("renders"))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let quick_start = std::fs::read_to_string(QUICK_START)
        .unwrap_or_else(|e| panic!("{QUICK_START}: {e} (the compat manifests live in ../shared/compat)"));
    bench_cluster(c, "quick-start", &quick_start);
    bench_cluster(c, "ten-brokers-all-protocols", TEN_BROKERS);
}

criterion_group!(build_benches, benches);
criterion_main!(build_benches);
