//! PulsarCoordinator (SPEC 1.7).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::PodSpec;
use crate::istio::{DataplaneMode, MtlsSpec};
use crate::status::CoordinatorStatus;

/// Shared settings for the components that carry the label
/// `k8s.streamnative.io/coordinator-name: <name>`, and the toolset.
#[serde_with::skip_serializing_none]
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
    pub image: Option<String>,
    /// Mesh settings written into every managed component.
    pub istio: Option<CoordinatorIstio>,
    /// A toolset Deployment with pulsar-admin and pulsar-client configured
    /// for the brokers. On when the field is present.
    pub tool_set: Option<ToolSet>,
}

/// Mesh settings the coordinator propagates.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.mtls) && has(self.mtls.mode) && self.mtls.mode == 'none' && has(self.dataplaneMode) && self.dataplaneMode == 'ambient')").message("mtls.mode none is not allowed with dataplaneMode ambient (ambient cannot disable mTLS): use strict or permissive").field_path(".mtls.mode"))]
pub struct CoordinatorIstio {
    /// Istio revision written into every managed component.
    pub revision: Option<String>,
    /// Trust domain written into every managed component.
    pub trust_domain: Option<String>,
    /// sidecar or ambient, written into every managed component; changing it
    /// migrates the components one at a time.
    pub dataplane_mode: Option<DataplaneMode>,
    /// Default mTLS mode for components that set none.
    pub mtls: Option<MtlsSpec>,
}

/// The toolset Deployment.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolSet {
    /// Run the toolset. Default true when toolSet is present.
    pub enabled: Option<bool>,
    /// The toolset's image; the coordinator's, else the brokers', when
    /// absent.
    pub image: Option<String>,
    /// Number of toolset pods. Default 1.
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Pod settings.
    pub pod: Option<PodSpec>,
    /// The credentials pulsar-admin and pulsar-client present (client.conf
    /// authPlugin and authParams), for brokers that authenticate clients.
    pub client_auth: Option<crate::auth::ClientAuth>,
}
