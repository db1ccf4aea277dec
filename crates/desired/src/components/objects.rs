//! The objects around a component's workload: ConfigMap, ServiceAccount,
//! PodDisruptionBudget, Services and the HorizontalPodAutoscaler.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use magnetar_api::common::{AutoScalingPolicy, PodSpec};

use super::workload::label_selector;
use crate::names::{self, Component};
use crate::ports::{NamedPort, service_ports};
use crate::{Object, Owner};

/// The component's ConfigMap `<n>-<suffix>`.
pub fn config_map(owner: &Owner, component: Component, data: BTreeMap<String, String>) -> Object {
    let metadata = owner.metadata(component.object_name(&owner.name), component);
    Object::typed(&ConfigMap { metadata, data: Some(data), ..Default::default() })
}

/// The ServiceAccount `<n>-<suffix>`, unless the user named their own.
pub fn service_account(owner: &Owner, component: Component, pod: &PodSpec) -> Option<Object> {
    if pod.service_account_name.as_deref().is_some_and(|s| !s.is_empty()) {
        return None;
    }
    let metadata = owner.metadata(component.object_name(&owner.name), component);
    Some(Object::typed(&ServiceAccount { metadata, ..Default::default() }))
}

/// PodDisruptionBudget `<n>-<suffix>`: one pod of the component down at a time.
pub fn pdb(owner: &Owner, component: Component) -> Object {
    let spec = PodDisruptionBudgetSpec {
        max_unavailable: Some(IntOrString::Int(1)),
        selector: Some(label_selector(component, &owner.name)),
        ..Default::default()
    };
    let metadata = owner.metadata(component.object_name(&owner.name), component);
    Object::typed(&PodDisruptionBudget { metadata, spec: Some(spec), ..Default::default() })
}

/// How a Service routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// A ClusterIP Service for clients.
    ClusterIp,
    /// The StatefulSet's governing Service: pod DNS names, published before
    /// the pods are ready (ZooKeeper needs its peers to form a quorum).
    Headless,
}

/// A Service named `name` selecting the component's pods.
pub fn service(owner: &Owner, name: String, component: Component, ports: &[NamedPort], kind: ServiceKind) -> Object {
    let headless = kind == ServiceKind::Headless;
    let spec = ServiceSpec {
        cluster_ip: headless.then(|| "None".into()),
        publish_not_ready_addresses: headless.then_some(true),
        selector: Some(names::selector(component, &owner.name)),
        ports: Some(service_ports(ports)),
        ..Default::default()
    };
    Object::typed(&Service { metadata: owner.metadata(name, component), spec: Some(spec), ..Default::default() })
}

/// The HorizontalPodAutoscaler `<n>-<suffix>` of the component's StatefulSet
/// (autoscaling/v2): StreamNative's autoScalingPolicy as it is, the
/// StatefulSet's scale subresource as the target.
pub fn hpa(owner: &Owner, component: Component, policy: &AutoScalingPolicy) -> Object {
    let name = component.object_name(&owner.name);
    let spec = HorizontalPodAutoscalerSpec {
        scale_target_ref: CrossVersionObjectReference {
            api_version: Some("apps/v1".into()),
            kind: "StatefulSet".into(),
            name: name.clone(),
        },
        min_replicas: Some(policy.min_replicas.unwrap_or(1)),
        max_replicas: policy.max_replicas,
        metrics: (!policy.metrics.is_empty()).then(|| policy.metrics.clone()),
        behavior: policy.behavior.clone(),
    };
    let metadata = owner.metadata(name, component);
    Object::typed(&HorizontalPodAutoscaler { metadata, spec, ..Default::default() })
}
