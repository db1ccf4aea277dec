//! ZooKeeperCluster (SPEC 1.2).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{Customization, ImagePullPolicy, LogConfig, PodSpec, ReclaimPolicy};
use crate::istio::IstioSpec;
use crate::status::ComponentStatus;

/// A ZooKeeper ensemble for Pulsar's metadata.
#[serde_with::skip_serializing_none]
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
    pub image: Option<String>,
    /// Image pull policy.
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Number of ZooKeeper servers (odd numbers keep a quorum). Default 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub replicas: i32,
    /// Pod settings.
    pub pod: Option<PodSpec>,
    /// Data volume of each server.
    pub persistence: Option<ZooKeeperPersistence>,
    /// Extra zoo.cfg entries.
    pub config: Option<ZooKeeperConfig>,
    /// The same settings as `config`, under StreamNative's other name for
    /// them; give one of the two.
    pub conf: Option<ZooKeeperConfig>,
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

pub(crate) fn one() -> i32 {
    1
}

/// Data volume of each ZooKeeper server.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperPersistence {
    /// Retain (default) keeps the PVCs when the cluster is deleted; Delete removes them.
    pub reclaim_policy: Option<ReclaimPolicy>,
    /// StorageClass of the PVCs; the cluster default when absent.
    pub storage_class_name: Option<String>,
    /// Size of each PVC. Default 10Gi.
    pub size: Option<Quantity>,
    /// The data volume's claim (snapshots, and the transaction log unless
    /// `dataLog` is set), as a PersistentVolumeClaim spec. What it leaves
    /// out comes from `size`, `storageClassName` and ReadWriteOnce.
    pub data: Option<PersistentVolumeClaimSpec>,
    /// A separate volume for the transaction log (zoo.cfg `dataLogDir`), so
    /// that snapshots do not slow the log's synchronous writes; its claim
    /// as a PersistentVolumeClaim spec (size and class as for `data`).
    pub data_log: Option<PersistentVolumeClaimSpec>,
}

impl ZooKeeperClusterSpec {
    /// The zoo.cfg settings, from `config` or its other name `conf`
    /// (validation refuses both at once).
    pub fn settings(&self) -> Option<&ZooKeeperConfig> {
        self.config.as_ref().or(self.conf.as_ref())
    }
}

/// zoo.cfg settings: StreamNative's typed keys, and any other entry.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperConfig {
    /// Milliseconds of one tick, ZooKeeper's unit of time. Default 2000.
    #[schemars(range(min = 1))]
    pub tick_time: Option<i64>,
    /// Ticks a follower may take to connect and sync to the leader. Default 10.
    #[schemars(range(min = 1))]
    pub init_limit: Option<i64>,
    /// Ticks a follower may fall behind the leader. Default 5.
    #[schemars(range(min = 1))]
    pub sync_limit: Option<i64>,
    /// Concurrent connections one client address may open to one server
    /// (0: no limit). ZooKeeper's default 60.
    #[schemars(range(min = 0))]
    pub max_client_cnxns: Option<i64>,
    /// Transactions logged between snapshots. ZooKeeper's default 100000.
    #[schemars(range(min = 2))]
    pub snap_count: Option<i64>,
    /// Requests queued in a server before it throttles clients. ZooKeeper's
    /// default 1000.
    #[schemars(range(min = 1))]
    pub global_outstanding_limit: Option<i64>,
    /// The server's connection factory class, for example
    /// org.apache.zookeeper.server.NettyServerCnxnFactory.
    pub server_cnxn_factory: Option<String>,
    /// Extra zoo.cfg entries; they win over the fields above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

impl ZooKeeperConfig {
    /// The typed settings as zoo.cfg entries (keys as ZooKeeper reads them:
    /// snapCount, globalOutstandingLimit and serverCnxnFactory become the
    /// `zookeeper.*` system properties QuorumPeerConfig sets from them).
    pub fn entries(&self) -> BTreeMap<String, String> {
        let numbers = [
            ("tickTime", self.tick_time),
            ("initLimit", self.init_limit),
            ("syncLimit", self.sync_limit),
            ("maxClientCnxns", self.max_client_cnxns),
            ("snapCount", self.snap_count),
            ("globalOutstandingLimit", self.global_outstanding_limit),
        ];
        let mut out: BTreeMap<String, String> =
            numbers.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?.to_string()))).collect();
        if let Some(f) = self.server_cnxn_factory.as_ref().filter(|f| !f.trim().is_empty()) {
            out.insert("serverCnxnFactory".into(), f.trim().to_string());
        }
        out
    }
}
