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

use std::time::Instant;

use kube::runtime::events::EventType;

use crate::context::Context;
use crate::error::Error;
use crate::events;
use crate::kinds::MainKind;
use crate::status::{Problem, merge_patch};

/// The problem and the first error of one pass, shared by the component
/// and coordinator controllers: a step that fails records both, and the
/// steps that change the cluster run only while [`Pass::ok`].
#[derive(Debug)]
pub struct Pass {
    pub problem: Option<Problem>,
    failure: Option<Error>,
    /// Whether this pass wrote the status (Events about it follow only then).
    written: bool,
}

impl Pass {
    /// A pass that starts with what validation found.
    pub fn new(problem: Option<Problem>) -> Self {
        Pass { problem, failure: None, written: false }
    }

    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    /// A step's result: an error becomes the pass's problem and its error.
    pub fn record<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem = Some(Problem::ApplyFailed(e.to_string()));
                self.failure.get_or_insert(e);
                None
            }
        }
    }

    /// The status write: whether it wrote. Its error is returned by
    /// [`Pass::finish`] unless an earlier step failed first.
    pub fn status(&mut self, result: Result<bool, Error>) -> bool {
        match result {
            Ok(written) => {
                self.written = written;
                written
            }
            Err(e) => {
                self.failure.get_or_insert(e);
                false
            }
        }
    }

    /// Ends the pass: the problem's Event (an invalid spec only when the
    /// status changed, so a resync does not repeat it), the metrics, and the
    /// first error (back-off) or a reset back-off.
    pub async fn finish<K: Resource<DynamicType = ()> + Kind>(
        self,
        ctx: &Context,
        obj: &K,
        started: Instant,
    ) -> Result<(), Error> {
        match &self.problem {
            Some(Problem::Invalid(msg)) => {
                ctx.metrics.invalid(K::MAIN.kind());
                if self.written {
                    let note =
                        format!("{msg}. Nothing was applied or deleted; fix the spec (or create what it refers to).");
                    events::publish(ctx, obj, EventType::Warning, "InvalidSpec", "Validate", note).await;
                }
            }
            Some(Problem::ApplyFailed(msg)) => {
                events::publish(ctx, obj, EventType::Warning, "ApplyFailed", "Apply", msg.clone()).await;
            }
            None => {}
        }
        ctx.metrics.reconciled(K::MAIN.kind(), started.elapsed());
        match self.failure {
            Some(e) => Err(e),
            None => {
                ctx.backoff.reset(&key(obj));
                Ok(())
            }
        }
    }
}

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

macro_rules! main_kind {
    ($($ty:ident => $kind:ident),*) => {
        $(impl Kind for magnetar_api::$ty {
            const MAIN: MainKind = MainKind::$kind;
        })*
    };
}
main_kind!(PulsarCoordinator => Coordinator, ZooKeeperCluster => ZooKeeper, BookKeeperCluster => BookKeeper,
    PulsarBroker => Broker, PulsarProxy => Proxy);

/// error_policy of every controller: per-object exponential back-off.
pub fn error_policy<K: Resource<DynamicType = ()> + Kind>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key(obj.as_ref());
    let delay = ctx.backoff.failed(&key);
    ctx.metrics.failed(K::MAIN.kind());
    tracing::warn!(object = %key, error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
