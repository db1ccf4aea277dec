//! A generated object: what the build step produces and the shell applies.

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
    /// Wraps a typed object (k8s-openapi or our Istio structs).
    pub fn from_typed<T: serde::Serialize>(typed: &T) -> Self {
        let value = serde_json::to_value(typed).expect("typed objects serialize");
        Self::from_value(value)
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
    /// Istio security objects, workloads, then routing.
    pub fn apply_rank(&self) -> u8 {
        apply_rank(&self.kind)
    }

    /// Deterministic order: apply rank, then kind, then name.
    pub fn sort_key(&self) -> (u8, &str, &str, &str) {
        (self.apply_rank(), &self.kind, &self.namespace, &self.name)
    }
}

/// Rank of a kind in the apply order.
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "ServiceAccount" => 0,
        "ConfigMap" => 1,
        "Service" => 2,
        "PodDisruptionBudget" => 3,
        "PeerAuthentication" => 4,
        "AuthorizationPolicy" => 5,
        "DestinationRule" => 6,
        "StatefulSet" => 7,
        "Deployment" => 8,
        "ServiceEntry" => 9,
        "Gateway" => 10,
        "VirtualService" => 11,
        _ => 12,
    }
}

/// Sorts objects into the deterministic apply order.
pub fn sort(objects: &mut [Object]) {
    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}
