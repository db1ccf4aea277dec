//! The five controllers: one generic component controller
//! ([`component`]) for ZooKeeper, BookKeeper, brokers and proxies, and the
//! coordinator ([`coordinator`]).

pub mod component;
pub mod coordinator;

use std::fmt::Debug;
use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::context::Context;
use crate::kinds::MainKind;
use crate::status::merge_patch;

/// Backoff key of an object.
pub fn key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!("{}/{}/{}", K::kind(&()), obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Patches the status subresource when `new` differs from `old`. Returns
/// whether it wrote.
pub async fn patch_status<K, S>(ctx: &Context, obj: &K, old: Option<&S>, new: &S) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if old == Some(new) {
        return Ok(false);
    }
    let old_v = old.map(serde_json::to_value).transpose()?.unwrap_or(serde_json::Value::Null);
    let new_v = serde_json::to_value(new)?;
    let patch = serde_json::json!({ "status": merge_patch(&old_v, &new_v) });
    tracing::debug!(object = %key(obj), old = %old_v, new = %new_v, "status changed");
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::Status)?;
    ctx.metrics.status_updated();
    Ok(true)
}

/// Which of the five kinds a type is.
pub trait Kind {
    const MAIN: MainKind;
}

impl Kind for magnetar_api::PulsarCoordinator {
    const MAIN: MainKind = MainKind::Coordinator;
}
impl Kind for magnetar_api::ZooKeeperCluster {
    const MAIN: MainKind = MainKind::ZooKeeper;
}
impl Kind for magnetar_api::BookKeeperCluster {
    const MAIN: MainKind = MainKind::BookKeeper;
}
impl Kind for magnetar_api::PulsarBroker {
    const MAIN: MainKind = MainKind::Broker;
}
impl Kind for magnetar_api::PulsarProxy {
    const MAIN: MainKind = MainKind::Proxy;
}

/// error_policy of every controller: per-object exponential back-off.
pub fn error_policy<K: Resource<DynamicType = ()> + Kind>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key(obj.as_ref());
    let delay = ctx.backoff.failed(&key);
    ctx.metrics.failed(K::MAIN.kind());
    tracing::warn!(object = %key, error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
