//! A generated object: what the build step produces and the shell applies.
//!
//! Kubernetes objects and all metadata are written as `serde_json::Value`s
//! directly (with `json!` and the helpers below) rather than as k8s-openapi
//! structs serialised afterwards: that detour allocated every string and map
//! twice, and the build step runs on every reconcile (docs/performance.md).
//! The schema tests (tests/schema_valid.rs) check the result against the
//! real Kubernetes and Istio schemas. Istio specs are still built as the
//! typed structs of [`crate::istio::types`] and serialised once.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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
    /// An object from its identity and the rest of its fields (`spec`,
    /// `data`, ...); `metadata` must carry the same name and namespace.
    pub(crate) fn new(api_version: &str, kind: &str, metadata: Value, mut fields: Map<String, Value>) -> Self {
        let name = metadata["name"].as_str().unwrap_or_default().to_string();
        let namespace = metadata["namespace"].as_str().unwrap_or_default().to_string();
        fields.insert("apiVersion".into(), Value::String(api_version.into()));
        fields.insert("kind".into(), Value::String(kind.into()));
        fields.insert("metadata".into(), metadata);
        Object { api_version: api_version.into(), kind: kind.into(), name, namespace, value: Value::Object(fields) }
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

/// A JSON object of string values, moving the strings rather than copying.
pub(crate) fn string_map(map: BTreeMap<String, String>) -> Value {
    let mut m = Map::new();
    for (k, v) in map {
        m.insert(k, Value::String(v));
    }
    Value::Object(m)
}

/// A typed value from the user's spec (resources, tolerations, ...) as JSON.
pub(crate) fn to_json<T: serde::Serialize>(typed: &T) -> Value {
    serde_json::to_value(typed).expect("typed values serialize")
}

/// `{key: value, ...}` from pairs, moving the values in. Use this rather
/// than `json!` when a value is itself a `Value`: `json!` serialises an
/// interpolated expression again, which deep-copies it.
pub(crate) fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(fields(pairs))
}

/// `{key: value, ...}` from pairs; for the `fields` of [`Object::new`].
pub(crate) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    // Inserted one by one: collecting would buffer and sort the pairs first.
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    m
}

pub use crate::kinds::apply_rank;

/// Sorts objects into the deterministic apply order.
pub fn sort(objects: &mut [Object]) {
    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}
