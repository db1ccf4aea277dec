//! BookKeeperCluster (SPEC 1.3).

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{AutoScalingPolicy, Customization, ImagePullPolicy, LogConfig, PodSpec, ReclaimPolicy};
use crate::istio::IstioSpec;
use crate::status::ComponentStatus;
use crate::zookeeper::one;

/// BookKeeper bookies that store Pulsar's ledgers.
#[serde_with::skip_serializing_none]
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
    pub image: Option<String>,
    /// Image pull policy.
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Number of bookies. Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// ZooKeeper servers, `host:port[,host:port]`; required unless
    /// metadataServiceUri names the metadata store.
    pub zk_servers: Option<String>,
    /// BookKeeper metadata service URI (bookkeeper.conf metadataServiceUri),
    /// for example `metadata-store:oxia://my-oxia:6648/bookkeeper` or
    /// `zk+hierarchical://zk-0:2181;zk-1:2181/ledgers`. Overrides the URI
    /// magnetar derives from zkServers, for the bookies and auto-recovery.
    pub metadata_service_uri: Option<String>,
    /// Pod settings.
    pub pod: Option<PodSpec>,
    /// Journal and ledger volumes of each bookie.
    pub storage: Option<BookKeeperStorage>,
    /// The auto-recovery workers.
    pub auto_recovery: Option<AutoRecovery>,
    /// A HorizontalPodAutoscaler for the bookies' StatefulSet; while set, it,
    /// not replicas, decides how many bookies run. Bookies hold ledgers, so
    /// it only scales up unless `behavior.scaleDown` says how to scale down.
    pub auto_scaling_policy: Option<AutoScalingPolicy>,
    /// bookkeeper.conf settings of the bookies.
    pub config: Option<BookKeeperConfig>,
    /// Log level and format; the image's conf/log4j2.yaml when absent.
    pub log_config: Option<LogConfig>,
    /// A PodMonitor for Prometheus (magnetar's own field).
    pub monitoring: Option<crate::common::Monitoring>,
    /// Mesh integration.
    pub istio: Option<IstioSpec>,
    /// Labels for every object magnetar generates for this resource, not
    /// its pods (those take `pod.labels`); magnetar's own
    /// `app.kubernetes.io/*` keys are refused.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Merge patches applied to generated objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customization: Vec<Customization>,
}

/// The bookies' bookkeeper.conf: StreamNative's typed keys (BookKeeper's
/// own names) and `custom`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookKeeperConfig {
    /// Milliseconds between garbage collections of entry logs.
    #[schemars(range(min = 0))]
    pub gc_wait_time: Option<i32>,
    /// Old journal files kept after they are no longer needed.
    #[schemars(range(min = 0))]
    pub journal_max_backups: Option<i32>,
    /// Compaction rate, in bytes per second with isThrottleByBytes, else in
    /// entries per second.
    #[schemars(range(min = 0))]
    pub compaction_rate_by_bytes: Option<i64>,
    /// Throttle compaction by bytes rather than entries.
    pub is_throttle_by_bytes: Option<bool>,
    /// Compact through a new entry log before the old one is removed.
    pub use_transactional_compaction: Option<bool>,
    /// Format version of the ledger index files written (0 or 1).
    #[schemars(range(min = 0, max = 1))]
    pub file_info_format_version_to_write: Option<i32>,
    /// Format version of the journal files written (0 to 6).
    #[schemars(range(min = 0, max = 6))]
    pub journal_format_version_to_write: Option<i32>,
    /// Keep a bookie's read-only status across restarts.
    pub persist_bookie_status_enabled: Option<bool>,
    /// Extra bookkeeper.conf entries; they win over the fields above. Keys
    /// that begin with PULSAR_PREFIX_ are passed as environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

impl BookKeeperConfig {
    /// The typed settings as bookkeeper.conf entries.
    pub fn entries(&self) -> BTreeMap<String, String> {
        let values = [
            ("gcWaitTime", self.gc_wait_time.map(|v| v.to_string())),
            ("journalMaxBackups", self.journal_max_backups.map(|v| v.to_string())),
            ("compactionRateByBytes", self.compaction_rate_by_bytes.map(|v| v.to_string())),
            ("isThrottleByBytes", self.is_throttle_by_bytes.map(|v| v.to_string())),
            ("useTransactionalCompaction", self.use_transactional_compaction.map(|v| v.to_string())),
            ("fileInfoFormatVersionToWrite", self.file_info_format_version_to_write.map(|v| v.to_string())),
            ("journalFormatVersionToWrite", self.journal_format_version_to_write.map(|v| v.to_string())),
            ("persistBookieStatusEnabled", self.persist_bookie_status_enabled.map(|v| v.to_string())),
        ];
        values.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))).collect()
    }
}

/// Volumes of each bookie.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookKeeperStorage {
    /// Retain (default) keeps the PVCs when the cluster is deleted; Delete removes them.
    pub reclaim_policy: Option<ReclaimPolicy>,
    /// StorageClass of the PVCs; the cluster default when absent.
    pub storage_class_name: Option<String>,
    /// The journal volumes. Default one of 10Gi.
    pub journal: Option<BookieVolumes>,
    /// The ledger volumes (StreamNative's name). Default one of 50Gi.
    pub ledger: Option<BookieVolumes>,
    /// The ledger volumes: the same as `ledger` (set one of the two).
    pub ledgers: Option<BookieVolumes>,
}

/// The journal or ledger volumes of each bookie.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookieVolumes {
    /// Size of each PVC, when volumeClaimTemplate names none.
    pub size: Option<Quantity>,
    /// Number of volumes (PVCs) per bookie. Default 1. Changing it on a
    /// running cluster needs new StatefulSet volumes, which Kubernetes does
    /// not allow: plan it up front.
    #[schemars(range(min = 1, max = 16))]
    pub num_volumes: Option<i32>,
    /// Number of directories the bookie uses on each volume (each journal
    /// directory gets its own journal thread). Default 1.
    #[schemars(range(min = 1, max = 16))]
    pub num_dirs_per_volume: Option<i32>,
    /// Each volume's claim, as a PersistentVolumeClaim spec. What it leaves
    /// out comes from `size`, `storage.storageClassName` and ReadWriteOnce.
    pub volume_claim_template: Option<PersistentVolumeClaimSpec>,
    /// Labels and annotations of the claims.
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
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRecovery {
    /// Number of workers. Default 1; 0 turns auto-recovery off.
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// The workers' image; the bookies' when absent.
    pub image: Option<String>,
    /// The workers' image pull policy; the bookies' when absent.
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Pod settings of the workers.
    pub pod: Option<PodSpec>,
    /// Worker configuration.
    pub conf: Option<AutoRecoveryConf>,
}

/// Auto-recovery configuration.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRecoveryConf {
    /// ZooKeeper servers for the workers; the bookies' zkServers when absent.
    pub zk_servers: Option<String>,
}
