//! Istio, the Gateway API and prometheus-operator come and go: the loop
//! that looks for their CRDs (and istiod's DNS capture), starts or stops
//! the watches of their kinds, and re-queues everything.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::discovery::ApiResource;
use kube::runtime::reflector::store::Writer;
use tokio::task::JoinSet;

use crate::context::{ChildStore, Context};
use crate::kinds::{ChildKind, GATEWAY_API, GATEWAY_API_KINDS, MONITORING, MONITORING_KINDS};
use crate::{cache, discovery, watch};

/// Looks for Istio's CRDs every `every`; starts (or stops using) the Istio
/// watches when they appear (or vanish) and re-queues every resource.
pub(crate) async fn istio_loop(
    ctx: Arc<Context>,
    namespace: Option<String>,
    every: Duration,
    first: futures::channel::oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut watches = JoinSet::new();
    let mut optional_watches: [JoinSet<()>; OPTIONAL.len()] = std::array::from_fn(|_| JoinSet::new());
    loop {
        let found = discovery::istio(&ctx.client).await;
        let (ours, requeue) = (|k: &ChildKind| k.is_istio(), first.is_none());
        if let Some(on) = follow(&ctx, found, &ctx.istio, ours, "Istio's", &namespace, &mut watches, requeue).await {
            ctx.metrics.set_istio(on);
        }
        if ctx.istio_available() {
            match discovery::mesh_dns(&ctx.client).await {
                Ok(dns) => {
                    let changed = {
                        let mut current = ctx.mesh_dns.write().unwrap_or_else(|e| e.into_inner());
                        std::mem::replace(&mut *current, dns.clone()) != dns
                    };
                    if changed {
                        tracing::info!(?dns, "Istio control plane's DNS capture");
                        if first.is_none() {
                            ctx.trigger_all();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read istiod's version or the mesh config"),
            }
        }
        for (o, w) in OPTIONAL.iter().zip(optional_watches.iter_mut()) {
            optional(&ctx, o, &namespace, w, first.is_none()).await;
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        // Look often while something may still appear.
        let all_there = ctx.istio_available() && OPTIONAL.iter().all(|o| (o.available)(&ctx).load(Ordering::Relaxed));
        let wait = if all_there { every.saturating_mul(6) } else { every };
        tokio::time::sleep(wait).await;
    }
}

/// Starts a watch of each of `resources` into a store of its own, waits
/// (30 s at most) for the stores' first lists, and puts them in place of
/// the context's stores of the kinds `ours` picks.
async fn watch_kinds(
    ctx: &Arc<Context>,
    resources: Vec<(ChildKind, ApiResource)>,
    namespace: &Option<String>,
    watches: &mut JoinSet<()>,
    ours: impl Fn(&ChildKind) -> bool,
) {
    let mut stores = Vec::new();
    for (kind, ar) in resources {
        let writer: Writer<cache::Cached> = Writer::new(Arc::new(ar.clone()));
        stores.push(ChildStore { kind, resource: ar.clone(), store: writer.as_reader() });
        watches.spawn(watch::child_kind(ctx.client.clone(), namespace.clone(), ar, writer, ctx.clone()));
    }
    for s in &stores {
        let _ = tokio::time::timeout(Duration::from_secs(30), s.store.wait_until_ready()).await;
    }
    let mut children = ctx.children.write().unwrap_or_else(|e| e.into_inner());
    children.retain(|c| !ours(&c.kind));
    children.extend(stores);
}

/// An optional group of kinds: the Gateway API's, prometheus-operator's.
pub(crate) struct Optional {
    pub group: &'static str,
    pub kinds: &'static [ChildKind],
    /// Who to say is there (the context's flag).
    pub available: fn(&Context) -> &AtomicBool,
    pub what: &'static str,
}

pub(crate) const OPTIONAL: [Optional; 2] = [
    Optional {
        group: GATEWAY_API,
        kinds: &GATEWAY_API_KINDS,
        available: |c| &c.gateway_api,
        what: "the Gateway API's",
    },
    Optional {
        group: MONITORING,
        kinds: &MONITORING_KINDS,
        available: |c| &c.monitoring,
        what: "prometheus-operator's",
    },
];

/// An optional group's CRDs: start (or stop using) the watches of its
/// kinds when they appear (or vanish).
async fn optional(
    ctx: &Arc<Context>,
    o: &Optional,
    namespace: &Option<String>,
    watches: &mut JoinSet<()>,
    requeue: bool,
) {
    let found = discovery::optional(&ctx.client, o.group, o.kinds).await;
    let ours = |k: &ChildKind| k.group == o.group;
    follow(ctx, found, (o.available)(ctx), ours, o.what, namespace, watches, requeue).await;
}

/// Follows what discovery `found` of the kinds `ours` picks: when they
/// appear, starts their watches and sets `flag`; when they vanish, stops
/// using them and clears it. Either way every resource is re-queued
/// (`requeue`: not on the first look, before the controllers run). The new
/// state when it changed.
#[allow(clippy::too_many_arguments)]
async fn follow(
    ctx: &Arc<Context>,
    found: Result<Option<Vec<(ChildKind, ApiResource)>>, kube::Error>,
    flag: &AtomicBool,
    ours: impl Fn(&ChildKind) -> bool,
    what: &str,
    namespace: &Option<String>,
    watches: &mut JoinSet<()>,
    requeue: bool,
) -> Option<bool> {
    let available = flag.load(Ordering::Relaxed);
    match found {
        Ok(Some(resources)) if !available => {
            watch_kinds(ctx, resources, namespace, watches, &ours).await;
            flag.store(true, Ordering::Relaxed);
            tracing::info!("{what} CRDs are served");
            if requeue {
                ctx.trigger_all();
            }
            Some(true)
        }
        Ok(None) if available => {
            flag.store(false, Ordering::Relaxed);
            ctx.children.write().unwrap_or_else(|e| e.into_inner()).retain(|c| !ours(&c.kind));
            watches.abort_all();
            tracing::warn!("{what} CRDs are no longer served: their objects are skipped");
            ctx.trigger_all();
            Some(false)
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "could not discover {what} API groups");
            None
        }
    }
}
