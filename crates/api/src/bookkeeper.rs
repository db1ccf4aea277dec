//! BookKeeperCluster (SPEC 1.3).

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{
    AutoScalingPolicy, CustomConfig, Customization, ImagePullPolicy, LogConfig, PodSpec, ReclaimPolicy,
};
use crate::istio::IstioSpec;
use crate::status::ComponentStatus;
use crate::zookeeper::one;

/// BookKeeper bookies that store Pulsar's ledgers.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "bookkeeper.streamnative.io",
    version = "v1alpha1",
    kind = "BookKeeperCluster",
    namespaced,
    shortname = "bk",
    status = "ComponentStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "BookKeeper bookies managed by magnetar.",
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
#[x_kube(validation = Rule::new("(has(self.zkServers) && self.zkServers != '') || (has(self.metadataServiceUri) && self.metadataServiceUri != '')").message("zkServers or metadataServiceUri is required: name the ZooKeeper servers (host:port) or the metadata service URI, for example metadata-store:oxia://my-oxia:6648/bookkeeper").field_path(".zkServers"))]
pub struct BookKeeperClusterSpec {
    /// Container image; required unless a PulsarCoordinator supplies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Number of bookies. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// ZooKeeper servers, `host:port[,host:port]`; required unless
    /// metadataServiceUri names the metadata store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zk_servers: Option<String>,
    /// BookKeeper metadata service URI (bookkeeper.conf metadataServiceUri),
    /// for example `metadata-store:oxia://my-oxia:6648/bookkeeper` or
    /// `zk+hierarchical://zk-0:2181;zk-1:2181/ledgers`. Overrides the URI
    /// magnetar derives from zkServers, for the bookies and auto-recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_service_uri: Option<String>,
    /// Pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSpec>,
    /// Journal and ledger volumes of each bookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<BookKeeperStorage>,
    /// The auto-recovery workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_recovery: Option<AutoRecovery>,
    /// A HorizontalPodAutoscaler for the bookies' StatefulSet; while set, it,
    /// not replicas, decides how many bookies run. Bookies hold ledgers, so
    /// it only scales up unless `behavior.scaleDown` says how to scale down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_policy: Option<AutoScalingPolicy>,
    /// Extra bookkeeper.conf entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<CustomConfig>,
    /// Log level and format; the image's conf/log4j2.yaml when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
    /// A PodMonitor for Prometheus (magnetar's own field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<crate::common::Monitoring>,
    /// Mesh integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioSpec>,
    /// Labels for every object magnetar generates for this resource, not
    /// its pods (those take `pod.labels`); magnetar's own labels win a
    /// clash.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Merge patches applied to generated objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customization: Vec<Customization>,
}

/// Volumes of each bookie.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookKeeperStorage {
    /// Retain (default) keeps the PVCs when the cluster is deleted; Delete removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<ReclaimPolicy>,
    /// StorageClass of the PVCs; the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// The journal volumes. Default one of 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<BookieVolumes>,
    /// The ledger volumes (StreamNative's name). Default one of 50Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<BookieVolumes>,
    /// The ledger volumes: the same as `ledger` (set one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledgers: Option<BookieVolumes>,
}

/// The journal or ledger volumes of each bookie.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookieVolumes {
    /// Size of each PVC, when volumeClaimTemplate names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Number of volumes (PVCs) per bookie. Default 1. Changing it on a
    /// running cluster needs new StatefulSet volumes, which Kubernetes does
    /// not allow: plan it up front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub num_volumes: Option<i32>,
    /// Number of directories the bookie uses on each volume (each journal
    /// directory gets its own journal thread). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub num_dirs_per_volume: Option<i32>,
    /// Each volume's claim, as a PersistentVolumeClaim spec. What it leaves
    /// out comes from `size`, `storage.storageClassName` and ReadWriteOnce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_template: Option<PersistentVolumeClaimSpec>,
    /// Labels and annotations of the claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ClaimMetadata>,
}

/// Labels and annotations of generated PersistentVolumeClaims.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMetadata {
    /// Extra labels.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Extra annotations (for example a storage provider's snapshot policy).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// BookKeeper auto-recovery workers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRecovery {
    /// Number of workers. Default 1; 0 turns auto-recovery off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Pod settings of the workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSpec>,
    /// Worker configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<AutoRecoveryConf>,
}

/// Auto-recovery configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRecoveryConf {
    /// ZooKeeper servers for the workers; the bookies' zkServers when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zk_servers: Option<String>,
}
