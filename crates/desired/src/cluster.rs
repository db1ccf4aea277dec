//! A Pulsar cluster: the components that belong together.
//!
//! Components that carry the same `k8s.streamnative.io/coordinator-name`
//! label in one namespace form a cluster; a component without the label is a
//! cluster with the unlabelled components of the same name. The cluster
//! decides who may talk to whom: every AuthorizationPolicy allows exactly
//! the ServiceAccounts of its cluster's components.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use magnetar_api::labels::COORDINATOR_NAME;
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};

use crate::context::{BuildContext, OperatorIdentity, Peer};
use crate::names::{self, Component};

/// Which cluster a component belongs to, within its namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClusterKey {
    /// Linked to the PulsarCoordinator of this name.
    Coordinator(String),
    /// Not linked: grouped with unlabelled components of the same name.
    Unlinked(String),
}

impl ClusterKey {
    pub fn of(meta: &ObjectMeta) -> Self {
        let label = meta.labels.as_ref().and_then(|l| l.get(COORDINATOR_NAME)).filter(|v| !v.is_empty());
        match label {
            Some(c) => Self::Coordinator(c.clone()),
            None => Self::Unlinked(meta.name.clone().unwrap_or_default()),
        }
    }
}

/// Every magnetar resource of one namespace (or of a set of input files).
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub coordinators: Vec<PulsarCoordinator>,
    pub zookeepers: Vec<ZooKeeperCluster>,
    pub bookkeepers: Vec<BookKeeperCluster>,
    pub brokers: Vec<PulsarBroker>,
    pub proxies: Vec<PulsarProxy>,
}

fn same<K: ResourceExt>(obj: &K, namespace: &str, key: &ClusterKey) -> bool {
    obj.namespace().as_deref().unwrap_or_default() == namespace && &ClusterKey::of(obj.meta()) == key
}

fn pod_sa(pod: Option<&magnetar_api::common::PodSpec>) -> Option<&str> {
    pod.and_then(|p| p.service_account_name.as_deref())
}

impl Inventory {
    /// The coordinator a component is linked to, if it exists.
    pub fn coordinator_of(&self, meta: &ObjectMeta) -> Option<&PulsarCoordinator> {
        let ClusterKey::Coordinator(name) = ClusterKey::of(meta) else { return None };
        let ns = meta.namespace.as_deref().unwrap_or_default();
        self.coordinators.iter().find(|c| c.name_any() == name && c.namespace().as_deref().unwrap_or_default() == ns)
    }

    /// The brokers of a cluster, by name.
    pub fn brokers_of(&self, namespace: &str, key: &ClusterKey) -> Vec<&PulsarBroker> {
        let mut v: Vec<&PulsarBroker> = self.brokers.iter().filter(|b| same(*b, namespace, key)).collect();
        v.sort_by_key(|b| b.name_any());
        v
    }

    /// ServiceAccounts of every component of a cluster (the toolset's too).
    pub fn peers(&self, namespace: &str, key: &ClusterKey) -> Vec<Peer> {
        let mut peers = Vec::new();
        let mut add = |component: Component, instance: &str, user: Option<&str>| {
            peers.push(Peer { component, service_account: names::service_account(component, instance, user) });
        };
        for zk in self.zookeepers.iter().filter(|o| same(*o, namespace, key)) {
            add(Component::ZooKeeper, &zk.name_any(), pod_sa(zk.spec.pod.as_ref()));
        }
        for bk in self.bookkeepers.iter().filter(|o| same(*o, namespace, key)) {
            add(Component::BookKeeper, &bk.name_any(), pod_sa(bk.spec.pod.as_ref()));
            let ar = bk.spec.auto_recovery.as_ref();
            add(Component::AutoRecovery, &bk.name_any(), pod_sa(ar.and_then(|a| a.pod.as_ref())));
        }
        for b in self.brokers.iter().filter(|o| same(*o, namespace, key)) {
            add(Component::Broker, &b.name_any(), pod_sa(b.spec.pod.as_ref()));
        }
        for p in self.proxies.iter().filter(|o| same(*o, namespace, key)) {
            add(Component::Proxy, &p.name_any(), pod_sa(p.spec.pod.as_ref()));
        }
        if let ClusterKey::Coordinator(name) = key {
            let coordinator = self
                .coordinators
                .iter()
                .find(|c| &c.name_any() == name && c.namespace().as_deref().unwrap_or_default() == namespace);
            if let Some(ts) = coordinator.and_then(|c| c.spec.tool_set.as_ref())
                && ts.enabled.unwrap_or(true)
            {
                add(Component::Toolset, name, pod_sa(ts.pod.as_ref()));
            }
        }
        peers.sort();
        peers.dedup();
        peers
    }

    /// The build context of a component: its cluster's peers, in the
    /// default cluster DNS domain (callers with another set
    /// `cluster_domain`).
    pub fn context_for(&self, meta: &ObjectMeta, operator: &OperatorIdentity) -> BuildContext {
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        BuildContext {
            peers: self.peers(namespace, &ClusterKey::of(meta)),
            operator: operator.clone(),
            ..BuildContext::default()
        }
    }
}
