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
    /// Reconciles of one kind in flight at once (never two of the same
    /// resource). Each holds its desired objects, the live ones and the
    /// apply responses, so this bounds the operator's peak memory when many
    /// resources change together; 0 means unbounded.
    pub concurrent_reconciles: u16,
}

/// Default of [`Options::concurrent_reconciles`]: reconciles mostly wait on
/// the API server, so a few in flight per kind keep it busy (see
/// docs/performance.md, "Scale").
pub const DEFAULT_CONCURRENT_RECONCILES: u16 = 8;

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
            concurrent_reconciles: DEFAULT_CONCURRENT_RECONCILES,
        }
    }
}
