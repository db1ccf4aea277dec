//! How the operator runs.

use std::net::SocketAddr;
use std::time::Duration;

use magnetar_desired::OperatorIdentity;

use crate::leader::LeaderElection;

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The operator's namespace and ServiceAccount: its principal may reach
    /// ZooKeeper for the leader check.
    pub identity: OperatorIdentity,
    /// Watch only this namespace (all namespaces when None).
    pub namespace: Option<String>,
    /// Lease-based leader election; off when None.
    pub leader_election: Option<LeaderElection>,
    /// Address of `/metrics`, `/healthz`, `/readyz`; none when None.
    pub metrics_addr: Option<SocketAddr>,
    /// How often to look for Istio's CRDs while they are absent.
    pub istio_recheck: Duration,
    /// Periodic re-reconcile of every resource.
    pub resync: Duration,
    /// Name of the reporting controller in Events (and its instance).
    pub reporter: String,
    /// The cluster DNS domain (the kubelet's `--cluster-domain`), in every
    /// host name magnetar builds; see `magnetar_desired::names::service_host`.
    pub cluster_domain: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            identity: OperatorIdentity::default(),
            namespace: None,
            leader_election: None,
            metrics_addr: None,
            istio_recheck: Duration::from_secs(10),
            resync: Duration::from_secs(300),
            reporter: "magnetar".into(),
            cluster_domain: magnetar_desired::names::DEFAULT_CLUSTER_DOMAIN.into(),
        }
    }
}
