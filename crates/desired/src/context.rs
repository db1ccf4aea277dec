//! What the build step needs beyond the resource itself.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::names::{self, Component};

/// The custom resource that owns generated objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Absent offline when the input has no `metadata.uid`.
    pub uid: Option<String>,
    /// The resource's `spec.labels`, for every object built for it.
    pub labels: BTreeMap<String, String>,
}

impl Owner {
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> Self {
        Owner {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            name: obj.name_any(),
            namespace: obj.namespace().unwrap_or_default(),
            uid: obj.uid().filter(|u| !u.is_empty()),
            labels: BTreeMap::new(),
        }
    }

    /// The same owner with the resource's `spec.labels`.
    pub fn with_labels(self, labels: &BTreeMap<String, String>) -> Self {
        Owner { labels: labels.clone(), ..self }
    }

    /// Metadata of a generated object named `name` that belongs to
    /// `component`: namespace, the common labels and, when the owner's UID
    /// is known, the controller ownerReference (the API server refuses an
    /// empty UID).
    pub fn metadata(&self, name: impl Into<String>, component: Component) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels.clone().into_iter().chain(names::labels(component, &self.name)).collect()),
            owner_references: self.uid.as_ref().map(|uid| {
                vec![OwnerReference {
                    api_version: self.api_version.clone(),
                    kind: self.kind.clone(),
                    name: self.name.clone(),
                    uid: uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        }
    }
}

/// The ServiceAccount of a peer component of the same Pulsar cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub component: Component,
    pub service_account: String,
}

/// The operator's own identity, allowed to reach ZooKeeper's client and
/// admin ports for the leader check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorIdentity {
    pub namespace: String,
    pub service_account: String,
}

impl Default for OperatorIdentity {
    fn default() -> Self {
        OperatorIdentity { namespace: "magnetar-system".into(), service_account: "magnetar".into() }
    }
}

/// Inputs of the build step that do not come from the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildContext {
    /// ServiceAccounts of this cluster's components, the component's own
    /// included: every principal an AuthorizationPolicy allows in.
    pub peers: Vec<Peer>,
    /// The operator's identity.
    pub operator: OperatorIdentity,
    /// The component is moving between sidecar and ambient (SPEC 4.5): its
    /// PeerAuthentication is PERMISSIVE and it has no DestinationRules.
    pub migrating: bool,
    /// The cluster's DNS domain (the kubelet's `--cluster-domain`), in every
    /// Service and pod host name; see [`names::service_host`].
    pub cluster_domain: String,
}

impl Default for BuildContext {
    fn default() -> Self {
        BuildContext {
            peers: Vec::new(),
            operator: OperatorIdentity::default(),
            migrating: false,
            cluster_domain: names::DEFAULT_CLUSTER_DOMAIN.into(),
        }
    }
}

impl BuildContext {
    /// Peer principals in `trust_domain`/`namespace`, sorted and de-duplicated.
    pub fn peer_principals(&self, trust_domain: &str, namespace: &str) -> Vec<String> {
        let mut v: Vec<String> =
            self.peers.iter().map(|p| names::principal(trust_domain, namespace, &p.service_account)).collect();
        v.sort();
        v.dedup();
        v
    }

    /// In-cluster DNS name of a Service in this cluster's DNS domain.
    pub fn service_host(&self, service: &str, namespace: &str) -> String {
        names::service_host(service, namespace, &self.cluster_domain)
    }

    /// The operator's principal.
    pub fn operator_principal(&self, trust_domain: &str) -> String {
        names::principal(trust_domain, &self.operator.namespace, &self.operator.service_account)
    }
}
