//! Test helpers shared by the component modules.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Service};
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
