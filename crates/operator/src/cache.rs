//! How the operator caches the objects it generates: the identity the
//! reconcilers filter on (name, namespace, uid, the two labels `owned`
//! reads, the controller reference), typed, and the whole object as
//! deflated JSON text. A `serde_json::Value` tree takes several times the
//! memory of its text, and the text deflates to about 40 % of it (the quick
//! start's objects at the fastest level); the reconcilers read a generated
//! object only when its owner is reconciled, and inflating and parsing it
//! then costs far less than that reconcile's API requests. See
//! docs/performance.md ("Holding less per cluster") for the numbers.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::sync::Arc;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ObjectMeta};
use kube::Resource;
use kube::core::{DynamicObject, DynamicResourceScope};
use kube::discovery::ApiResource;
use kube::runtime::watcher::Event;
use serde_json::Value;

use magnetar_api::labels::{APP_INSTANCE, APP_MANAGED_BY};

use crate::apply::FIELD_MANAGER;

/// The kind of a cache's objects. The store keys every object by a
/// reference that holds a copy of this: shared, so a key costs a pointer,
/// not the five strings of an `ApiResource`.
pub type CacheKind = Arc<ApiResource>;

/// A generated object in the cache.
#[derive(Clone, Debug)]
pub struct Cached {
    /// Name, namespace, uid, resourceVersion, deletionTimestamp, the
    /// instance and managed-by labels, the controller reference.
    pub metadata: ObjectMeta,
    /// The object as the API server sent it, with only the managedFields
    /// the reconcilers read ([`keep_replicas_ownership`]), deflated.
    deflated: Arc<[u8]>,
}

impl Cached {
    /// Cuts a watched object down to what the cache keeps.
    pub fn new(mut o: DynamicObject) -> Self {
        keep_replicas_ownership(&mut o.metadata);
        let deflated = deflate(&serde_json::to_vec(&o).unwrap_or_default()).into();
        let m = o.metadata;
        let labels = m.labels.map(|mut l| {
            l.retain(|k, _| k == APP_INSTANCE || k == APP_MANAGED_BY);
            l
        });
        let owner_references = m.owner_references.map(|mut r| {
            r.retain(|r| r.controller == Some(true));
            r
        });
        let metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            labels,
            owner_references,
            deletion_timestamp: m.deletion_timestamp,
            resource_version: m.resource_version,
            ..ObjectMeta::default()
        };
        Cached { metadata, deflated }
    }

    /// The whole object (without the managedFields the cache drops).
    pub fn value(&self) -> Value {
        let mut text = Vec::new();
        match DeflateDecoder::new(&self.deflated[..]).read_to_end(&mut text) {
            Ok(_) => serde_json::from_slice(&text).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }
}

/// Deflates at the fastest level: the cache compresses every watch event,
/// and the fast level already takes the quick start's objects to 42 % of
/// their JSON.
fn deflate(text: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::with_capacity(text.len() / 3), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(text);
    let mut out = e.finish().unwrap_or_default();
    out.shrink_to_fit();
    out
}

/// A watch event of a generated object, as the cache holds it.
pub fn compact(event: Event<DynamicObject>) -> Event<Cached> {
    match event {
        Event::Apply(o) => Event::Apply(Cached::new(o)),
        Event::Delete(o) => Event::Delete(Cached::new(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(Cached::new(o)),
        Event::InitDone => Event::InitDone,
    }
}

/// Of a generated object's managedFields the reconcilers read only whether
/// magnetar's own apply owns `spec.replicas` (`apply::replicas_to_hand_over`):
/// its entry is kept, cut down to that one field.
pub fn keep_replicas_ownership(meta: &mut ObjectMeta) {
    let Some(entries) = meta.managed_fields.as_mut() else { return };
    entries.retain(|e| e.manager.as_deref() == Some(FIELD_MANAGER) && e.operation.as_deref() == Some("Apply"));
    for e in entries.iter_mut() {
        let owns_replicas = e.fields_v1.as_ref().is_some_and(|f| f.0["f:spec"].get("f:replicas").is_some());
        let kept =
            if owns_replicas { serde_json::json!({"f:spec": {"f:replicas": {}}}) } else { serde_json::json!({}) };
        e.fields_v1 = Some(FieldsV1(kept));
    }
}

impl Resource for Cached {
    type DynamicType = CacheKind;
    type Scope = DynamicResourceScope;

    fn group(dt: &CacheKind) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &CacheKind) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &CacheKind) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &CacheKind) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &CacheKind) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use serde_json::json;

    fn entry(manager: &str, operation: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn generated_objects_keep_only_magnetars_replicas_ownership() {
        let big = json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}});
        let mut meta = ObjectMeta {
            managed_fields: Some(vec![
                entry(FIELD_MANAGER, "Apply", big.clone()),
                entry("kube-controller-manager", "Update", json!({"f:status": {}})),
                entry("kubectl", "Apply", big),
            ]),
            ..Default::default()
        };
        keep_replicas_ownership(&mut meta);
        let kept = meta.managed_fields.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].fields_v1.as_ref().unwrap().0, json!({"f:spec": {"f:replicas": {}}}));
        // The hand-over rule reads the same answer from the cut-down entry.
        let live = json!({"spec": {"replicas": 3}, "metadata": {"managedFields": [
            {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": kept[0].fields_v1.as_ref().unwrap().0}
        ]}});
        let desired = json!({"kind": "StatefulSet", "spec": {}});
        assert_eq!(crate::apply::replicas_to_hand_over(&desired, &live), Some(3));

        let mut released = ObjectMeta {
            managed_fields: Some(vec![entry(FIELD_MANAGER, "Apply", json!({"f:spec": {"f:template": {}}}))]),
            ..Default::default()
        };
        keep_replicas_ownership(&mut released);
        assert_eq!(released.managed_fields.unwrap()[0].fields_v1.as_ref().unwrap().0, json!({}));
    }

    #[test]
    fn the_cache_gives_back_the_object_without_foreign_managed_fields() {
        let o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "c", "namespace": "ns", "uid": "u1",
                "labels": {"a": "b", APP_INSTANCE: "pc", APP_MANAGED_BY: "magnetar"},
                "annotations": {"magnetar.io/applied-hash": "h"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u0", "controller": true},
                    {"apiVersion": "v1", "kind": "Y", "name": "p", "uid": "u2"}
                ],
                "managedFields": [
                    {"manager": "magnetar", "operation": "Apply", "fieldsV1": {"f:data": {"f:k": {}}}},
                    {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:data": {}}}
                ]
            },
            "data": {"k": "v"}
        }))
        .unwrap();
        let c = Cached::new(o);
        assert_eq!(c.metadata.name.as_deref(), Some("c"));
        assert_eq!(c.metadata.uid.as_deref(), Some("u1"));
        assert_eq!(c.metadata.owner_references.as_ref().map(Vec::len), Some(1), "the controller only");
        let kept: Vec<&String> = c.metadata.labels.iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(kept, [APP_INSTANCE, APP_MANAGED_BY], "the labels `owned` reads");
        assert!(c.metadata.annotations.is_none(), "kept once, in the text");
        assert!(c.deflated.len() < serde_json::to_vec(&c.value()).unwrap().len());
        let v = c.value();
        assert_eq!(v["data"]["k"], "v");
        assert_eq!(v["metadata"]["labels"]["a"], "b");
        assert_eq!(v["metadata"]["ownerReferences"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["metadata"]["annotations"]["magnetar.io/applied-hash"], "h");
        assert_eq!(
            v["metadata"]["managedFields"],
            json!([{"manager": "magnetar", "operation": "Apply", "fieldsV1": {}}])
        );
    }
}
