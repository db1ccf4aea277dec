//! ZooKeeperCluster (SPEC 1.2).

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{CustomConfig, Customization, ImagePullPolicy, PodSpec, ReclaimPolicy};
use crate::istio::IstioSpec;
use crate::status::ComponentStatus;

/// A ZooKeeper ensemble for Pulsar's metadata.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "zookeeper.streamnative.io",
    version = "v1alpha1",
    kind = "ZooKeeperCluster",
    namespaced,
    shortname = "zk",
    status = "ComponentStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A ZooKeeper ensemble managed by magnetar.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(name = "REPLICAS", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "READY REPLICAS", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "MESH", type_ = "string", json_path = ".status.mesh.dataplaneMode"),
    printcolumn(name = "DESIRED IMAGE", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperClusterSpec {
    /// Container image; required unless a PulsarCoordinator supplies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Number of ZooKeeper servers (odd numbers keep a quorum). Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// Pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSpec>,
    /// Data volume of each server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<ZooKeeperPersistence>,
    /// Extra zoo.cfg entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<CustomConfig>,
    /// Mesh integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioSpec>,
    /// Merge patches applied to generated objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customization: Vec<Customization>,
}

pub(crate) fn one() -> i32 {
    1
}

/// Data volume of each ZooKeeper server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperPersistence {
    /// Retain (default) keeps the PVCs when the cluster is deleted; Delete removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<ReclaimPolicy>,
    /// StorageClass of the PVCs; the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Size of each PVC. Default 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// The data volume's claim (snapshots, and the transaction log unless
    /// `dataLog` is set), as a PersistentVolumeClaim spec. What it leaves
    /// out comes from `size`, `storageClassName` and ReadWriteOnce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PersistentVolumeClaimSpec>,
    /// A separate volume for the transaction log (zoo.cfg `dataLogDir`), so
    /// that snapshots do not slow the log's synchronous writes; its claim
    /// as a PersistentVolumeClaim spec (size and class as for `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_log: Option<PersistentVolumeClaimSpec>,
}
