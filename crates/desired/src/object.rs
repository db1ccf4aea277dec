//! A generated object: what the build step produces and the shell applies.
//!
//! Builders write typed objects (k8s-openapi's, and the Istio types of
//! [`crate::istio::types`]), so a misspelt field does not compile;
//! [`Object::typed`] turns any of them into the JSON the customization
//! patches, render prints and the operator applies.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde::Serialize;
use serde_json::Value;

/// One Kubernetes object the build step wants to exist, as JSON (with
/// apiVersion, kind and metadata), plus the identity fields pulled out.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub value: Value,
}

impl Object {
    /// The one way a typed resource becomes an object: serialised once
    /// (k8s-openapi writes `apiVersion` and `kind` from the type).
    pub fn typed<K: Resource + Metadata<Ty = ObjectMeta> + Serialize>(resource: &K) -> Self {
        let meta = resource.metadata();
        Object {
            api_version: K::API_VERSION.into(),
            kind: K::KIND.into(),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            value: to_json(resource),
        }
    }

    /// Wraps a JSON object; identity fields are read from it.
    pub fn from_value(value: Value) -> Self {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Object {
            api_version: s(&value["apiVersion"]),
            kind: s(&value["kind"]),
            name: s(&value["metadata"]["name"]),
            namespace: s(&value["metadata"]["namespace"]),
            value,
        }
    }

    /// API group ("" for core).
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// API version without the group.
    pub fn version(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((_, v)) => v,
            None => &self.api_version,
        }
    }

    /// Apply order (SPEC 4.1): ServiceAccounts, ConfigMaps, Services, PDBs,
    /// Istio security objects, workloads and their autoscalers, then routing.
    pub fn apply_rank(&self) -> u8 {
        apply_rank(&self.kind)
    }

    /// Deterministic order: apply rank, then kind, then name.
    pub fn sort_key(&self) -> (u8, &str, &str, &str) {
        (self.apply_rank(), &self.kind, &self.namespace, &self.name)
    }
}

/// A typed value from the user's spec (resources, tolerations, ...) as JSON.
pub(crate) fn to_json<T: serde::Serialize>(typed: &T) -> Value {
    serde_json::to_value(typed).expect("typed values serialize")
}

pub use crate::kinds::apply_rank;

/// Sorts objects into the deterministic apply order.
pub fn sort(objects: &mut [Object]) {
    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}
