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
        let available = ctx.istio_available();
        match discovery::istio(&ctx.client).await {
            Ok(Some(resources)) if !available => {
                watch_kinds(&ctx, resources, &namespace, &mut watches, |k| k.is_istio()).await;
                ctx.istio.store(true, Ordering::Relaxed);
                ctx.metrics.set_istio(true);
                tracing::info!("Istio's CRDs are served: configuring the mesh");
                if first.is_none() {
                    ctx.trigger_all();
                }
            }
            Ok(None) if available => {
                ctx.istio.store(false, Ordering::Relaxed);
                ctx.metrics.set_istio(false);
                ctx.children.write().unwrap_or_else(|e| e.into_inner()).retain(|c| !c.kind.is_istio());
                watches.abort_all();
                tracing::warn!("Istio's CRDs are no longer served: Istio objects are skipped");
                ctx.trigger_all();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not discover Istio's API groups"),
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

/// The same for an optional group's CRDs: start (or stop using) the
/// watches of its kinds when they appear (or vanish), and re-queue
/// everything (`requeue`: not on the first look, before the controllers
/// run).
async fn optional(
    ctx: &Arc<Context>,
    o: &Optional,
    namespace: &Option<String>,
    watches: &mut JoinSet<()>,
    requeue: bool,
) {
    let flag = (o.available)(ctx);
    let available = flag.load(Ordering::Relaxed);
    match discovery::optional(&ctx.client, o.group, o.kinds).await {
        Ok(Some(resources)) if !available => {
            watch_kinds(ctx, resources, namespace, watches, |k| k.group == o.group).await;
            flag.store(true, Ordering::Relaxed);
            tracing::info!("{} CRDs are served", o.what);
            if requeue {
                ctx.trigger_all();
            }
        }
        Ok(None) if available => {
            flag.store(false, Ordering::Relaxed);
            ctx.children.write().unwrap_or_else(|e| e.into_inner()).retain(|c| c.kind.group != o.group);
            watches.abort_all();
            tracing::warn!("{} CRDs are no longer served: their objects are skipped", o.what);
            ctx.trigger_all();
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(group = o.group, error = %e, "could not discover an optional API group"),
    }
}
