//! Watches: the five kinds (full objects), the generated kinds narrowed by
//! `app.kubernetes.io/managed-by=magnetar`, and the pods of the components
//! (metadata only). Every event is routed to the resource it concerns. The
//! caches hold only what the reconcilers read.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use magnetar_api::labels::{
    AMBIENT_REDIRECTION, APP_INSTANCE, APP_MANAGED_BY, APP_NAME, COORDINATOR_NAME, MANAGED_BY, SIDECAR_STATUS,
};

use magnetar_desired::propagate;

use crate::cache::{self, Cached};
use crate::context::Context;
use crate::controller::Kind;
use crate::kinds::MainKind;

/// Label selector of every generated object.
pub fn managed_selector() -> String {
    format!("{APP_MANAGED_BY}={MANAGED_BY}")
}

/// Label selector of the components' pods.
pub fn pod_selector() -> String {
    format!("{APP_INSTANCE},{APP_NAME} in (zookeeper,bookkeeper,pulsar-broker,pulsar-proxy,pulsar-toolset)")
}

/// The API of `K` in `namespace`, or in every namespace.
pub fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn dyn_api(client: &Client, namespace: Option<&str>, ar: &ApiResource) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

/// Only the managedFields entries the reconcilers read are cached (they are
/// about half of what the API server sends): on the five kinds, the
/// coordinator's (what it propagated, `rollout::owned_paths`).
fn keep_coordinator_fields(meta: &mut ObjectMeta) {
    if let Some(entries) = meta.managed_fields.as_mut() {
        entries.retain(|e| e.manager.as_deref() == Some(propagate::FIELD_MANAGER));
    }
}

/// Of a pod the reconcilers read its name, labels and mesh enrolment
/// (`migration::PodView`); the cache keeps those and the identity the store
/// needs, and drops the rest (managedFields, owner, the other annotations).
fn keep_pod_fields(meta: &mut ObjectMeta) {
    let kept = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        labels: meta.labels.take(),
        annotations: meta.annotations.take().map(|mut a| {
            a.retain(|k, _| k == SIDECAR_STATUS || k == AMBIENT_REDIRECTION);
            a
        }),
        ..ObjectMeta::default()
    };
    *meta = kept;
}

/// The object a watch event is about, and whether it was deleted; `None`
/// for the events about no one object, and for errors (logged: the watcher
/// retries with back-off).
fn change<K>(event: Result<Event<K>, watcher::Error>, kind: &str) -> Option<(K, bool)> {
    match event {
        Ok(Event::Apply(o) | Event::InitApply(o)) => Some((o, false)),
        Ok(Event::Delete(o)) => Some((o, true)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(kind, error = %e, "watch failed; retrying");
            None
        }
    }
}

fn fingerprint<T: Hash>(v: T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Watches one of the five kinds into its store. Every change queues the
/// object; a change of its spec, labels or existence also queues every other
/// resource of its namespace (peers, zkServers and propagation depend on
/// them); a status change of a linked component queues its coordinator.
pub async fn main_kind<K>(client: Client, namespace: Option<String>, writer: Writer<K>, ctx: Arc<Context>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Kind
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api = api_for::<K>(&client, namespace.as_deref());
    let mut seen: HashMap<String, u64> = HashMap::new();
    let watch = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let stream = reflector::reflector(writer, watch.modify(|o| keep_coordinator_fields(o.meta_mut())));
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let Some((obj, deleted)) = change(event, K::MAIN.kind()) else { continue };
        let ns = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        let uid = obj.uid().unwrap_or_default();
        if !deleted {
            ctx.triggers.send(K::MAIN, &ns, &name);
        }
        let meta = obj.meta();
        let print = fingerprint((meta.generation, &meta.labels, meta.deletion_timestamp.is_some()));
        let spec_changed = if deleted {
            seen.remove(&uid);
            true
        } else {
            seen.insert(uid, print) != Some(print)
        };
        if spec_changed {
            ctx.trigger_namespace(&ns, Some((K::MAIN, &name)));
        } else if let Some(c) = meta.labels.as_ref().and_then(|l| l.get(COORDINATOR_NAME)) {
            ctx.triggers.send(MainKind::Coordinator, &ns, c);
        }
    }
}

/// Watches a generated kind into its store; every change queues the
/// resource that controls the object.
pub async fn child_kind(
    client: Client,
    namespace: Option<String>,
    ar: ApiResource,
    writer: Writer<Cached>,
    ctx: Arc<Context>,
) {
    let api = dyn_api(&client, namespace.as_deref(), &ar);
    let config = watcher::Config::default().labels(&managed_selector());
    let watch = watcher::watcher(api, config).default_backoff().map_ok(cache::compact);
    let stream = reflector::reflector(writer, watch);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let Some((obj, _)) = change(event, &ar.kind) else { continue };
        let ns = obj.namespace().unwrap_or_default();
        for owner in obj.owner_references().iter().filter(|r| r.controller == Some(true)) {
            if let Some(kind) = MainKind::from_kind(&owner.kind) {
                ctx.triggers.send(kind, &ns, &owner.name);
            }
        }
    }
}

/// Watches the components' pods (metadata only). A pod that appears,
/// disappears or changes its mesh enrolment queues its component.
pub async fn pods(
    client: Client,
    namespace: Option<String>,
    writer: Writer<PartialObjectMeta<Pod>>,
    ctx: Arc<Context>,
) {
    let api = api_for::<PartialObjectMeta<Pod>>(&client, namespace.as_deref());
    let config = watcher::Config::default().labels(&pod_selector());
    let mut seen: HashMap<String, u64> = HashMap::new();
    let watch = watcher::watcher(api, config).default_backoff();
    let stream = reflector::reflector(writer, watch.modify(|p| keep_pod_fields(&mut p.metadata)));
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let Some((pod, deleted)) = change(event, "Pod") else { continue };
        let uid = pod.uid().unwrap_or_default();
        let ann = pod.metadata.annotations.as_ref();
        let mesh = (
            ann.and_then(|a| a.get(SIDECAR_STATUS)),
            ann.and_then(|a| a.get(AMBIENT_REDIRECTION)),
            &pod.metadata.labels,
            pod.metadata.deletion_timestamp.is_some(),
        );
        let print = fingerprint(mesh);
        let changed = if deleted { seen.remove(&uid).is_some() } else { seen.insert(uid, print) != Some(print) };
        if !changed {
            continue;
        }
        let labels = pod.metadata.labels.as_ref();
        let app = labels.and_then(|l| l.get(APP_NAME));
        let instance = labels.and_then(|l| l.get(APP_INSTANCE));
        if let (Some(kind), Some(instance)) = (app.and_then(|a| MainKind::from_app_name(a)), instance) {
            ctx.triggers.send(kind, &pod.namespace().unwrap_or_default(), instance);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use serde_json::json;

    fn entry(manager: &str, operation: &str, fields: serde_json::Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn pods_keep_identity_labels_and_mesh_annotations() {
        let mut meta: ObjectMeta = serde_json::from_value(json!({
            "name": "pc-zk-0", "namespace": "ns", "uid": "u", "resourceVersion": "7",
            "generateName": "pc-zk-", "labels": {APP_NAME: "zookeeper"},
            "annotations": {SIDECAR_STATUS: "{}", AMBIENT_REDIRECTION: "enabled", "kubectl.kubernetes.io/restartedAt": "t"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "pc-zk", "uid": "s"}],
            "managedFields": [{"manager": "kubelet", "operation": "Update"}]
        }))
        .unwrap();
        keep_pod_fields(&mut meta);
        assert_eq!(meta.name.as_deref(), Some("pc-zk-0"));
        assert_eq!((meta.uid.as_deref(), meta.resource_version.as_deref()), (Some("u"), Some("7")));
        assert_eq!(meta.labels.unwrap()[APP_NAME], "zookeeper");
        let ann = meta.annotations.unwrap();
        assert_eq!(ann.keys().collect::<Vec<_>>(), [AMBIENT_REDIRECTION, SIDECAR_STATUS]);
        assert!(meta.owner_references.is_none() && meta.managed_fields.is_none() && meta.generate_name.is_none());
    }

    #[test]
    fn components_keep_only_the_coordinators_fields() {
        let mut meta = ObjectMeta {
            managed_fields: Some(vec![
                entry(propagate::FIELD_MANAGER, "Apply", json!({"f:spec": {"f:image": {}}})),
                entry("kubectl", "Apply", json!({"f:spec": {"f:replicas": {}}})),
            ]),
            ..Default::default()
        };
        keep_coordinator_fields(&mut meta);
        let kept = meta.managed_fields.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].manager.as_deref(), Some(propagate::FIELD_MANAGER));
    }
}
