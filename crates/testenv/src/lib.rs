//! A real Kubernetes control plane for magnetar's tests and `magnetar dev`.
//!
//! The binaries (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kubectl, kwok) come from `tools/build-cluster.sh`, which
//! builds them from pinned Go modules into a cache directory. Certificates
//! are generated here; every process listens on a free loopback port, runs in
//! its own process group and logs to `target/testenv/<time>-<pid>-<n>-<label>/`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use magnetar_testenv::{Options, shared, ISTIO_GUIDE};
//! let env = shared(Options::default().istio(ISTIO_GUIDE)).await?;
//! let client = env.client().await?;
//! # let _ = client; Ok(()) }
//! ```

pub mod apply;
mod binaries;
mod control_plane;
pub mod crds;
pub mod dev;
pub mod istiod;
mod pki;
pub mod prerequisites;
mod process;
pub mod real_node;
mod shared;

pub use binaries::{
    Binaries, GATEWAY_API_VERSION, ISTIO_GUIDE, ISTIO_NEWEST, PROMETHEUS_OPERATOR_VERSION, helm, istio_tools,
    jvm_toolkit, repo_root,
};
pub use control_plane::{
    ControlPlane, FAKE_NODES, KWOK_NODE_ANNOTATION, NODE_LEASE_SECONDS, Options, PODS_PER_NODE, fake_nodes,
    node_ready_untainted,
};
pub use dev::{DevEnvironment, dev_environment, dev_environment_with, dev_options};
pub use istiod::Istiod;
pub use shared::{shared, start_detached};
