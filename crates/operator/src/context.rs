//! State shared by the controllers: the client, reflector stores of every
//! watched kind, triggers between controllers, and what was applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde::Deserialize;
use serde_json::Value;

use magnetar_api::labels::{APP_INSTANCE, APP_MANAGED_BY, MANAGED_BY};
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};
use magnetar_desired::OperatorIdentity;
use magnetar_desired::cluster::Inventory;
use magnetar_desired::names::{self, Component};

use crate::backoff::Backoff;
use crate::cache::Cached;
use crate::discovery::MeshDns;
use crate::drift::Applied;
use crate::kinds::{ChildKind, MainKind};
use crate::metrics::Metrics;
use crate::migration::PodView;
use crate::prerequisites::Waits;

/// Reflector stores of the five kinds.
#[derive(Clone)]
pub struct Stores {
    pub coordinators: Store<PulsarCoordinator>,
    pub zookeepers: Store<ZooKeeperCluster>,
    pub bookkeepers: Store<BookKeeperCluster>,
    pub brokers: Store<PulsarBroker>,
    pub proxies: Store<PulsarProxy>,
}

/// Senders into each controller's queue.
#[derive(Clone)]
pub struct Triggers {
    pub coordinator: UnboundedSender<ObjectRef<PulsarCoordinator>>,
    pub zookeeper: UnboundedSender<ObjectRef<ZooKeeperCluster>>,
    pub bookkeeper: UnboundedSender<ObjectRef<BookKeeperCluster>>,
    pub broker: UnboundedSender<ObjectRef<PulsarBroker>>,
    pub proxy: UnboundedSender<ObjectRef<PulsarProxy>>,
    /// Counts what is queued (the queue-depth gauge).
    pub metrics: Arc<Metrics>,
}

impl Triggers {
    /// Asks the controller of `kind` to reconcile `namespace/name`.
    pub fn send(&self, kind: MainKind, namespace: &str, name: &str) {
        self.metrics.queued(kind.kind(), format!("{namespace}/{name}"));
        // A closed channel means the controller has stopped: nothing to do.
        let _sent = match kind {
            MainKind::Coordinator => self.coordinator.unbounded_send(ObjectRef::new(name).within(namespace)).is_ok(),
            MainKind::ZooKeeper => self.zookeeper.unbounded_send(ObjectRef::new(name).within(namespace)).is_ok(),
            MainKind::BookKeeper => self.bookkeeper.unbounded_send(ObjectRef::new(name).within(namespace)).is_ok(),
            MainKind::Broker => self.broker.unbounded_send(ObjectRef::new(name).within(namespace)).is_ok(),
            MainKind::Proxy => self.proxy.unbounded_send(ObjectRef::new(name).within(namespace)).is_ok(),
        };
    }
}

/// A watched kind of generated object and its store.
#[derive(Clone)]
pub struct ChildStore {
    pub kind: ChildKind,
    pub resource: ApiResource,
    pub store: Store<Cached>,
}

/// A live generated object owned by a custom resource.
#[derive(Clone, Debug)]
pub struct Live {
    pub kind: ChildKind,
    pub resource: ApiResource,
    pub name: String,
    pub uid: String,
    pub value: Value,
}

impl Live {
    pub fn deleting(&self) -> bool {
        self.value["metadata"]["deletionTimestamp"].is_string()
    }
}

/// Everything the reconcilers share.
pub struct Context {
    pub client: Client,
    pub identity: OperatorIdentity,
    /// The cluster DNS domain (see `Options::cluster_domain`).
    pub cluster_domain: String,
    pub stores: Stores,
    pub children: RwLock<Vec<ChildStore>>,
    pub pods: Store<PartialObjectMeta<Pod>>,
    pub triggers: Triggers,
    pub istio: AtomicBool,
    /// The Gateway API's CRDs (v1 Gateway, TLSRoute, HTTPRoute) are served.
    pub gateway_api: AtomicBool,
    /// prometheus-operator's PodMonitor (v1) is served.
    pub monitoring: AtomicBool,
    /// istiod's DNS capture, read at the Istio re-checks.
    pub mesh_dns: RwLock<MeshDns>,
    /// What was applied last, by `group/kind/namespace/name` (see [`crate::drift`]).
    pub memory: Mutex<HashMap<String, Applied>>,
    pub backoff: Backoff,
    /// Watches of missing gateway pods and TLS secrets.
    pub prerequisites: Arc<Waits>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Periodic re-reconcile of a healthy object.
    pub resync: Duration,
}

fn in_ns<K: Resource>(namespace: &str) -> impl Fn(&K) -> bool + '_ {
    move |o: &K| o.meta().namespace.as_deref() == Some(namespace)
}

fn cloned<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>, namespace: &str) -> Vec<K> {
    let mut v: Vec<K> = store.state().iter().filter(|o| in_ns::<K>(namespace)(o)).map(|o| (**o).clone()).collect();
    v.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    v
}

impl Context {
    pub fn istio_available(&self) -> bool {
        self.istio.load(Ordering::Relaxed)
    }

    pub fn gateway_api_available(&self) -> bool {
        self.gateway_api.load(Ordering::Relaxed)
    }

    pub fn monitoring_available(&self) -> bool {
        self.monitoring.load(Ordering::Relaxed)
    }

    /// Whether the kinds of `kind`'s group are served (always, for
    /// Kubernetes' own kinds).
    pub fn kind_available(&self, kind: &ChildKind) -> bool {
        if kind.is_istio() {
            self.istio_available()
        } else if kind.is_gateway_api() {
            self.gateway_api_available()
        } else if kind.is_monitoring() {
            self.monitoring_available()
        } else {
            true
        }
    }

    pub fn mesh_dns(&self) -> MeshDns {
        self.mesh_dns.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every magnetar resource of a namespace, from the stores.
    pub fn inventory(&self, namespace: &str) -> Inventory {
        Inventory {
            coordinators: cloned(&self.stores.coordinators, namespace),
            zookeepers: cloned(&self.stores.zookeepers, namespace),
            bookkeepers: cloned(&self.stores.bookkeepers, namespace),
            brokers: cloned(&self.stores.brokers, namespace),
            proxies: cloned(&self.stores.proxies, namespace),
        }
    }

    /// The resources the operator knows (of `namespace` when given): kind,
    /// namespace and name.
    fn every(&self, namespace: Option<&str>) -> Vec<(MainKind, String, String)> {
        fn of<'a, K: Resource<DynamicType = ()> + Clone + 'a>(
            kind: MainKind,
            store: &Store<K>,
            namespace: Option<&'a str>,
        ) -> impl Iterator<Item = (MainKind, String, String)> + 'a {
            let wanted = move |o: &Arc<K>| namespace.is_none_or(|ns| o.meta().namespace.as_deref() == Some(ns));
            store
                .state()
                .into_iter()
                .filter(wanted)
                .map(move |o| (kind, o.namespace().unwrap_or_default(), o.name_any()))
        }
        of(MainKind::Coordinator, &self.stores.coordinators, namespace)
            .chain(of(MainKind::ZooKeeper, &self.stores.zookeepers, namespace))
            .chain(of(MainKind::BookKeeper, &self.stores.bookkeepers, namespace))
            .chain(of(MainKind::Broker, &self.stores.brokers, namespace))
            .chain(of(MainKind::Proxy, &self.stores.proxies, namespace))
            .collect()
    }

    /// Triggers every resource of a namespace but `except`.
    pub fn trigger_namespace(&self, namespace: &str, except: Option<(MainKind, &str)>) {
        for (kind, _, name) in self.every(Some(namespace)) {
            if except != Some((kind, name.as_str())) {
                self.triggers.send(kind, namespace, &name);
            }
        }
    }

    /// Triggers every resource the operator knows.
    pub fn trigger_all(&self) {
        for (kind, ns, name) in self.every(None) {
            self.triggers.send(kind, &ns, &name);
        }
    }

    /// Generated objects of `instance` in `namespace` whose controller is
    /// the resource with `owner_uid` (Istio kinds only while Istio is served).
    pub fn owned(&self, namespace: &str, instance: &str, owner_uid: &str) -> Vec<Live> {
        let children = self.children.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = Vec::new();
        for child in children {
            if !self.kind_available(&child.kind) {
                continue;
            }
            for o in child.store.state() {
                let meta = &o.metadata;
                if meta.namespace.as_deref() != Some(namespace) {
                    continue;
                }
                let labels = meta.labels.as_ref();
                let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
                if label(APP_MANAGED_BY) != Some(MANAGED_BY) || label(APP_INSTANCE) != Some(instance) {
                    continue;
                }
                let owned =
                    meta.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == owner_uid);
                if !owned {
                    continue;
                }
                let mut value = o.value();
                // Items of a list carry no apiVersion/kind.
                value["apiVersion"] = Value::String(child.resource.api_version.clone());
                value["kind"] = Value::String(child.kind.kind.to_string());
                out.push(Live {
                    kind: child.kind,
                    resource: child.resource.clone(),
                    name: meta.name.clone().unwrap_or_default(),
                    uid: meta.uid.clone().unwrap_or_default(),
                    value,
                });
            }
        }
        out
    }

    /// Pods of a component instance (labels and annotations only).
    pub fn pods_of(&self, namespace: &str, component: Component, instance: &str) -> Vec<PodView> {
        let selector = names::selector(component, instance);
        let mut pods: Vec<PodView> = self
            .pods
            .state()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                let labels = p.metadata.labels.as_ref();
                selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .map(|p| PodView {
                name: p.metadata.name.clone().unwrap_or_default(),
                labels: p.metadata.labels.clone().unwrap_or_default(),
                annotations: p.metadata.annotations.clone().unwrap_or_default(),
            })
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        pods
    }

    pub fn forget(&self, key: &str) {
        self.memory.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    pub fn remembered(&self, key: &str) -> Option<Applied> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    pub fn remember(&self, key: String, applied: Applied) {
        self.memory.lock().unwrap_or_else(|e| e.into_inner()).insert(key, applied);
    }
}

/// Labels of a pod template, from a live StatefulSet.
pub fn template_labels(sts: &Value) -> BTreeMap<String, String> {
    let sts = StatefulSet::deserialize(sts).unwrap_or_default();
    sts.spec.and_then(|s| s.template.metadata).and_then(|m| m.labels).unwrap_or_default()
}
