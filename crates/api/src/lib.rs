//! magnetar's custom resources.
//!
//! The API is the one StreamNative Private Cloud users already write: five
//! namespaced kinds in four groups. Every field carries a description (it is
//! what `kubectl explain` shows), closed sets are enums and cross-field rules
//! are CEL, so the API server refuses what it can judge. Fields StreamNative
//! has but magnetar does not implement are deliberately absent: strict field
//! validation then refuses them instead of ignoring them.

// kube-derive takes repeated `printcolumn`/`shortname` attributes by design.
#![allow(clippy::duplicated_attributes)]

pub mod auth;
pub mod bookkeeper;
pub mod broker;
pub mod common;
pub mod coordinator;
pub mod istio;
pub mod kinds;
pub mod labels;
pub mod proxy;
pub mod status;
pub mod zookeeper;

pub use bookkeeper::{BookKeeperCluster, BookKeeperClusterSpec};
pub use broker::{PulsarBroker, PulsarBrokerSpec};
pub use coordinator::{PulsarCoordinator, PulsarCoordinatorSpec};
pub use kinds::MainKind;
pub use proxy::{PulsarProxy, PulsarProxySpec};
pub use zookeeper::{ZooKeeperCluster, ZooKeeperClusterSpec};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CustomResourceDefinition magnetar serves, in a fixed order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        PulsarCoordinator::crd(),
        ZooKeeperCluster::crd(),
        BookKeeperCluster::crd(),
        PulsarBroker::crd(),
        PulsarProxy::crd(),
    ]
}

/// File name of a CRD under `deploy/crds/`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("crd"))
}

/// A CRD as YAML, exactly as checked in under `deploy/crds/`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    serde_norway::to_string(crd).expect("CRDs serialize")
}
