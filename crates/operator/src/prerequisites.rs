//! What a broker or proxy needs from outside magnetar before its external
//! access can work: the ingress gateway's pods and, in SIMPLE mode, the TLS
//! secret in the gateway's namespace.
//!
//! A missing prerequisite holds back only the external-access objects (the
//! Gateway and its VirtualServices, [`is_external_access`]): everything inside
//! the cluster is applied, the status says what is missing and how to fix it.
//! The reconcile that finds one missing asks [`Waits`] to watch for it; the
//! first sighting queues every resource waiting for it, so external access
//! follows within seconds of the prerequisite appearing rather than at the
//! next resync (level-triggered: the reconcile checks again, the watch only
//! says when).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use crate::context::Triggers;
use crate::kinds::{GATEWAY_API, MainKind, NETWORKING_ISTIO};

pub use magnetar_desired::prerequisites::{Prerequisite as Missing, REASON_GATEWAY_PODS, REASON_GATEWAY_SECRET};

/// The message of the ExternalAccess condition when prerequisites are
/// missing: each one, then what was done meanwhile.
pub fn summary(missing: &[Missing], path: &str) -> String {
    let each: Vec<String> = missing.iter().map(|m| m.message(path)).collect();
    format!(
        "{}. Everything inside the cluster is applied; the Gateway and VirtualServices follow as soon as this is fixed",
        each.join("; ")
    )
}

/// Objects that route external traffic through the ingress gateway and are
/// held back while a prerequisite is missing.
pub fn is_external_access(group: &str, kind: &str) -> bool {
    (group == NETWORKING_ISTIO && (kind == "Gateway" || kind == "VirtualService")) || group == GATEWAY_API
}

/// A resource waiting for a prerequisite.
type Waiter = (MainKind, String, String);

/// One-shot watches of missing prerequisites, and who waits for each.
#[derive(Default)]
pub struct Waits {
    waiting: Mutex<HashMap<Missing, BTreeSet<Waiter>>>,
}

impl Waits {
    /// Queues `kind namespace/name` when `missing` appears. The first
    /// waiter of a prerequisite starts its watch.
    pub fn wait(self: &Arc<Self>, client: &Client, triggers: &Triggers, missing: &Missing, who: Waiter) {
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            let set = waiting.entry(missing.clone()).or_default();
            let first = set.is_empty();
            set.insert(who);
            first
        };
        if first {
            let (waits, client, triggers, missing) = (self.clone(), client.clone(), triggers.clone(), missing.clone());
            tokio::spawn(async move {
                present(&client, &missing).await;
                waits.appeared(&triggers, &missing);
            });
        }
    }

    fn appeared(&self, triggers: &Triggers, missing: &Missing) {
        let waiters = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(missing).unwrap_or_default();
        tracing::info!(prerequisite = ?missing, waiting = waiters.len(), "prerequisite appeared");
        for (kind, ns, name) in waiters {
            triggers.send(kind, &ns, &name);
        }
    }
}

/// Returns once the prerequisite exists (metadata-only watch; the secret's
/// data is never read). A watch the operator may not make (no RBAC in that
/// namespace) keeps retrying with back-off; the reconcile's own requeue
/// looks again meanwhile.
async fn present(client: &Client, missing: &Missing) {
    // `true` for an event that shows the object exists.
    fn sighting<K>(e: Result<Event<K>, watcher::Error>) -> Result<bool, watcher::Error> {
        e.map(|e| matches!(e, Event::Apply(_) | Event::InitApply(_)))
    }
    let stream = match missing {
        Missing::GatewayPods { namespace, selector } => {
            let api: Api<PartialObjectMeta<Pod>> = Api::namespaced(client.clone(), namespace);
            watcher::watcher(api, watcher::Config::default().labels(selector)).default_backoff().map(sighting).boxed()
        }
        Missing::TlsSecret { namespace, name } => {
            let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), namespace);
            let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
            watcher::watcher(api, config).default_backoff().map(sighting).boxed()
        }
        // Found by the discovery loop (istio_watch), which re-queues every
        // resource; never waited for here.
        Missing::GatewayApiCrds => return,
    };
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::debug!(prerequisite = ?missing, error = %e, "prerequisite watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_fix() {
        let pods = Missing::GatewayPods { namespace: "istio-system".into(), selector: "istio=ingressgateway".into() };
        let m = pods.message("spec.istio.gateway");
        assert!(m.starts_with("spec.istio.gateway.selector matches no pod in namespace istio-system"), "{m}");
        assert!(m.contains("install the Istio ingress gateway"), "{m}");
        let secret = Missing::TlsSecret { namespace: "istio-system".into(), name: "tls".into() };
        let m = secret.message("spec.istio.gateway");
        assert!(m.starts_with("spec.istio.gateway.tls.certSecretName: Secret tls does not exist"), "{m}");
        assert!(m.contains("kubectl -n istio-system create secret tls tls"), "{m}");
        let s = summary(&[pods, secret], "spec.istio.gateway");
        assert!(s.contains("; spec.istio.gateway.tls.certSecretName"), "{s}");
        assert!(s.ends_with("as soon as this is fixed"), "{s}");
    }

    #[test]
    fn only_gateway_routing_is_external_access() {
        assert!(is_external_access(NETWORKING_ISTIO, "Gateway"));
        assert!(is_external_access(NETWORKING_ISTIO, "VirtualService"));
        // Per-broker Services and mesh-internal ServiceEntries serve clients
        // inside the mesh too: applied regardless.
        assert!(!is_external_access(NETWORKING_ISTIO, "ServiceEntry"));
        assert!(!is_external_access(NETWORKING_ISTIO, "DestinationRule"));
        assert!(!is_external_access("", "Service"));
    }
}
