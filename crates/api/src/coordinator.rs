//! PulsarCoordinator (SPEC 1.7).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::PodSpec;
use crate::istio::{DataplaneMode, MtlsSpec};
use crate::status::CoordinatorStatus;

/// Shared settings for the components that carry the label
/// `k8s.streamnative.io/coordinator-name: <name>`, and the toolset.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "k8s.streamnative.io",
    version = "v1alpha1",
    kind = "PulsarCoordinator",
    namespaced,
    shortname = "pcoord",
    status = "CoordinatorStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Coordinates the Pulsar components of one cluster.",
    printcolumn(name = "IMAGE", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "DATAPLANE", type_ = "string", json_path = ".spec.istio.dataplaneMode"),
    printcolumn(name = "READY", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PulsarCoordinatorSpec {
    /// Default image of the managed components (used where a component leaves its image empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Mesh settings written into every managed component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<CoordinatorIstio>,
    /// A toolset Deployment with pulsar-admin and pulsar-client configured
    /// for the brokers. On when the field is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_set: Option<ToolSet>,
}

/// Mesh settings the coordinator propagates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.mtls) && has(self.mtls.mode) && self.mtls.mode == 'none' && has(self.dataplaneMode) && self.dataplaneMode == 'ambient')").message("mtls.mode none is not allowed with dataplaneMode ambient (ambient cannot disable mTLS): use strict or permissive").field_path(".mtls.mode"))]
pub struct CoordinatorIstio {
    /// Istio revision written into every managed component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Trust domain written into every managed component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// sidecar or ambient, written into every managed component; changing it
    /// migrates the components one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane_mode: Option<DataplaneMode>,
    /// Default mTLS mode for components that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsSpec>,
}

/// The toolset Deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolSet {
    /// Run the toolset. Default true when toolSet is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The toolset's image; the coordinator's, else the brokers', when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Number of toolset pods. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSpec>,
    /// The credentials pulsar-admin and pulsar-client present (client.conf
    /// authPlugin and authParams), for brokers that authenticate clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<crate::auth::ClientAuth>,
}
