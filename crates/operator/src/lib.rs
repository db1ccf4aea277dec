//! magnetar's operator: reconciles PulsarCoordinator, ZooKeeperCluster,
//! BookKeeperCluster, PulsarBroker and PulsarProxy against a live API server.
//!
//! Per resource: dereference (an [`Inventory`](magnetar_desired::cluster::Inventory)
//! of its namespace from the reflector stores) → validate and build
//! (`magnetar_desired::build_*`) → check what the schema cannot (zkServers)
//! and the prerequisites of external access (gateway pods, TLS secret) →
//! server-side apply every desired object with one field manager and force,
//! in apply order, skipping unchanged objects → delete the objects no longer
//! desired → status. An invalid spec touches nothing: it is reported in the
//! conditions and an Event. A missing prerequisite holds back only the
//! Gateway and VirtualServices, watched until it appears.
//!
//! Module map: `runtime` (wiring: watches, controllers, leader election,
//! metrics server), [`options`], [`error`], `istio_watch` (Istio's CRDs come
//! and go), [`controller`] (reconcilers), [`apply`] (SSA + prune),
//! [`drift`] (no-write decisions), [`status`] (pure status), [`migration`]
//! (sidecar ↔ ambient rule), [`rollout`] (coordinator propagation order),
//! [`restart`] (ZooKeeper restarts, followers first and the leader last),
//! [`checks`], [`prerequisites`], [`watch`], [`discovery`] (Istio present? its DNS capture?), [`leader`],
//! [`metrics`], [`counting`] (write counter), [`backoff`], [`events`], [`cache`]
//! (what the caches hold of a generated object).

pub mod apply;
pub mod backoff;
pub mod cache;
pub mod checks;
pub mod context;
pub mod controller;
pub mod counting;
pub mod discovery;
pub mod drift;
pub mod error;
pub mod events;
mod istio_watch;
pub mod kinds;
pub mod leader;
pub mod metrics;
pub mod migration;
pub mod options;
pub mod prerequisites;
pub mod restart;
pub mod rollout;
mod runtime;
pub mod status;
pub mod watch;

pub use magnetar_desired::OperatorIdentity;

pub use counting::WriteCounter;
pub use error::Error;
pub use leader::LeaderElection;
pub use metrics::Metrics;
pub use options::Options;
pub use runtime::{Operator, run, run_until, shutdown_signal};
