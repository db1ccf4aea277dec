//! Test helpers shared by the component modules.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec, Service, ServiceSpec};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Object;

/// A resource of kind `K` called `name` in namespace `pulsar`, its spec
/// given as YAML lines indented by two spaces.
pub fn resource<K: kube::Resource<DynamicType = ()> + DeserializeOwned>(name: &str, spec: &str) -> K {
    let (api_version, kind) = (K::api_version(&()), K::kind(&()));
    let doc = format!(
        "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: {name}, namespace: pulsar}}\nspec:\n{spec}"
    );
    serde_norway::from_str(&doc).unwrap()
}

pub fn find<'a>(objects: &'a [Object], kind: &str, name: &str) -> &'a Value {
    match objects.iter().find(|o| o.kind == kind && o.name == name) {
        Some(o) => &o.value,
        None => panic!("no {kind} {name} in {:?}", objects.iter().map(|o| (&o.kind, &o.name)).collect::<Vec<_>>()),
    }
}

/// The object `name` of `K`'s kind, read back as `K`: tests assert on
/// typed fields, so a misspelt one does not compile.
pub fn typed<K: k8s_openapi::Resource + DeserializeOwned>(objects: &[Object], name: &str) -> K {
    serde_json::from_value(find(objects, K::KIND, name).clone()).unwrap()
}

/// The spec of StatefulSet `name`.
pub fn sts_spec(objects: &[Object], name: &str) -> StatefulSetSpec {
    typed::<StatefulSet>(objects, name).spec.expect("a StatefulSet spec")
}

/// The spec of Deployment `name`.
pub fn deployment_spec(objects: &[Object], name: &str) -> DeploymentSpec {
    typed::<Deployment>(objects, name).spec.expect("a Deployment spec")
}

/// The pod template of StatefulSet or Deployment `name`.
pub fn template(objects: &[Object], kind: &str, name: &str) -> PodTemplateSpec {
    match kind {
        "Deployment" => deployment_spec(objects, name).template,
        _ => sts_spec(objects, name).template,
    }
}

/// The pod spec of StatefulSet or Deployment `name`.
pub fn pod_spec(objects: &[Object], kind: &str, name: &str) -> PodSpec {
    template(objects, kind, name).spec.expect("a pod spec")
}

/// Labels and annotations of the pod template of `name`.
pub fn template_meta(
    objects: &[Object],
    kind: &str,
    name: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let m = template(objects, kind, name).metadata.unwrap_or_default();
    (m.labels.unwrap_or_default(), m.annotations.unwrap_or_default())
}

/// File `key` of ConfigMap `name`.
pub fn config_file(objects: &[Object], name: &str, key: &str) -> String {
    let cm: ConfigMap = typed(objects, name);
    cm.data.and_then(|mut d| d.remove(key)).unwrap_or_default()
}

/// The spec of Service `name`.
pub fn service_spec(objects: &[Object], name: &str) -> ServiceSpec {
    typed::<Service>(objects, name).spec.expect("a Service spec")
}

/// The spec of HorizontalPodAutoscaler `name`.
pub fn hpa_spec(objects: &[Object], name: &str) -> HorizontalPodAutoscalerSpec {
    typed::<HorizontalPodAutoscaler>(objects, name).spec
}

pub fn has(objects: &[Object], kind: &str, name: &str) -> bool {
    objects.iter().any(|o| o.kind == kind && o.name == name)
}

/// Port numbers of a Service.
pub fn service_port_numbers(svc: &Value) -> Vec<i32> {
    let svc: Service = serde_json::from_value(svc.clone()).unwrap();
    svc.spec.and_then(|s| s.ports).unwrap_or_default().iter().map(|p| p.port).collect()
}

/// The main container of a StatefulSet's or Deployment's pod template.
pub fn main_container(workload: &Value) -> Container {
    let template = match workload["kind"].as_str() {
        Some("Deployment") => serde_json::from_value::<Deployment>(workload.clone()).unwrap().spec.map(|s| s.template),
        _ => serde_json::from_value::<StatefulSet>(workload.clone()).unwrap().spec.map(|s| s.template),
    };
    let containers = template.and_then(|t| t.spec).map(|s| s.containers).unwrap_or_default();
    containers.into_iter().next().expect("a main container")
}

/// Every port name (Service and container) is prefixed and fits 15 chars.
pub fn assert_port_names(objects: &[Object]) {
    for o in objects {
        let mut names = Vec::new();
        if o.kind == "Service" {
            let svc: Service = serde_json::from_value(o.value.clone()).unwrap();
            for p in svc.spec.and_then(|s| s.ports).unwrap_or_default() {
                assert!(p.app_protocol.is_some(), "{} {} port without appProtocol", o.kind, o.name);
                names.push(p.name.unwrap_or_default());
            }
        }
        if o.kind == "StatefulSet" || o.kind == "Deployment" {
            names.extend(main_container(&o.value).ports.unwrap_or_default().into_iter().filter_map(|p| p.name));
        }
        for n in names {
            assert!(n.len() <= 15, "{n} too long");
            assert!(
                ["tcp-", "tls-", "http-", "https-"].iter().any(|p| n.starts_with(p)),
                "{n} lacks a protocol prefix"
            );
        }
    }
}

/// The main container's `sh -c` script.
pub fn script(workload: &Value) -> String {
    main_container(workload).args.and_then(|a| a.into_iter().next()).unwrap_or_default()
}
