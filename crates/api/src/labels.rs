//! Well-known label and annotation keys.

/// Links a component to the PulsarCoordinator of that name in its namespace.
pub const COORDINATOR_NAME: &str = "k8s.streamnative.io/coordinator-name";
/// Skips the ZooKeeper leader check (SPEC 4.4).
pub const IGNORE_LEADER_CHECK: &str = "cloud.streamnative.io/ignore-leader-check";

pub const APP_NAME: &str = "app.kubernetes.io/name";
pub const APP_INSTANCE: &str = "app.kubernetes.io/instance";
pub const APP_COMPONENT: &str = "app.kubernetes.io/component";
pub const APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "magnetar";

pub const SIDECAR_INJECT: &str = "sidecar.istio.io/inject";
pub const ISTIO_REV: &str = "istio.io/rev";
pub const DATAPLANE_MODE: &str = "istio.io/dataplane-mode";
pub const PROXY_CONFIG: &str = "proxy.istio.io/config";
pub const SIDECAR_STATUS: &str = "sidecar.istio.io/status";
pub const AMBIENT_REDIRECTION: &str = "ambient.istio.io/redirection";
pub const STS_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
