//! The control plane behind `magnetar dev`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binaries::ISTIO_NEWEST;
use crate::control_plane::{ControlPlane, Options};

/// A local cluster for a developer: controllers, scheduler, kwok and a fake
/// node, magnetar's CRDs and the newest Istio's. Stops on
/// [`DevEnvironment::shutdown`] or drop, and in any case when the process
/// exits.
#[derive(Debug)]
pub struct DevEnvironment {
    control_plane: ControlPlane,
}

/// Builds the control plane if it is not cached yet (a cold build takes
/// 5-10 minutes and reports progress on stderr), starts it and installs
/// every CRD.
pub async fn dev_environment() -> anyhow::Result<DevEnvironment> {
    dev_environment_with(dev_options()).await
}

/// What [`dev_environment`] starts: everything, with the newest Istio's CRDs
/// the Gateway API's standard channel and prometheus-operator's PodMonitor.
pub fn dev_options() -> Options {
    Options {
        istio: Some(ISTIO_NEWEST.to_string()),
        gateway_api: Some("standard".to_string()),
        monitoring_crds: true,
        magnetar_crds: true,
        workloads: true,
        real_node: false,
        istiod: false,
        label: "dev".to_string(),
        timeout: Duration::from_secs(180),
    }
}

/// [`dev_environment`] with other options (another Istio version, say).
pub async fn dev_environment_with(options: Options) -> anyhow::Result<DevEnvironment> {
    Ok(DevEnvironment { control_plane: ControlPlane::start(options).await? })
}

impl DevEnvironment {
    /// The admin kubeconfig: `export KUBECONFIG=<this>`.
    pub fn kubeconfig(&self) -> &Path {
        self.control_plane.kubeconfig()
    }

    /// kubectl of the same Kubernetes version.
    pub fn kubectl(&self) -> PathBuf {
        self.control_plane.kubectl()
    }

    /// Where the processes' logs are.
    pub fn log_dir(&self) -> &Path {
        self.control_plane.log_dir()
    }

    /// A client for the caller's runtime.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        self.control_plane.client().await
    }

    pub fn control_plane(&self) -> &ControlPlane {
        &self.control_plane
    }

    /// Stops every process and removes the cluster's data.
    pub fn shutdown(self) {
        self.control_plane.shutdown();
    }
}
