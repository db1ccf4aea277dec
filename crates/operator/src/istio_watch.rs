//! Istio and the Gateway API come and go: the loop that looks for their
//! CRDs (and istiod's DNS capture), starts or stops the watches of their
//! kinds, and re-queues everything.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::store::Writer;
use tokio::task::JoinSet;

use crate::context::{ChildStore, Context};
use crate::{cache, discovery, watch};

/// Looks for Istio's CRDs every `every`; starts (or stops using) the Istio
/// watches when they appear (or vanish) and re-queues every resource.
pub(crate) async fn istio_loop(
    ctx: Arc<Context>,
    namespace: Option<String>,
    every: Duration,
    first: futures::channel::oneshot::Sender<()>,
) {
    use std::sync::atomic::Ordering;
    let mut first = Some(first);
    let mut watches = JoinSet::new();
    let mut api_watches = JoinSet::new();
    loop {
        let available = ctx.istio_available();
        match discovery::istio(&ctx.client).await {
            Ok(Some(resources)) if !available => {
                let mut stores = Vec::new();
                for (kind, ar) in resources {
                    let writer: Writer<cache::Cached> = Writer::new(ar.clone());
                    stores.push(ChildStore { kind, resource: ar.clone(), store: writer.as_reader() });
                    watches.spawn(watch::child_kind(ctx.client.clone(), namespace.clone(), ar, writer, ctx.clone()));
                }
                for s in &stores {
                    let _ = tokio::time::timeout(Duration::from_secs(30), s.store.wait_until_ready()).await;
                }
                {
                    let mut children = ctx.children.write().unwrap_or_else(|e| e.into_inner());
                    children.retain(|c| !c.kind.is_istio());
                    children.extend(stores);
                }
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
        gateway_api(&ctx, &namespace, &mut api_watches, first.is_none()).await;
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        // Look often while something may still appear.
        let all_there = ctx.istio_available() && ctx.gateway_api_available();
        let wait = if all_there { every.saturating_mul(6) } else { every };
        tokio::time::sleep(wait).await;
    }
}

/// The same for the Gateway API's CRDs: start (or stop using) the watches of
/// its kinds when they appear (or vanish), and re-queue everything
/// (`requeue`: not on the first look, before the controllers run).
async fn gateway_api(ctx: &Arc<Context>, namespace: &Option<String>, watches: &mut JoinSet<()>, requeue: bool) {
    use std::sync::atomic::Ordering;
    let available = ctx.gateway_api_available();
    match discovery::gateway_api(&ctx.client).await {
        Ok(Some(resources)) if !available => {
            let mut stores = Vec::new();
            for (kind, ar) in resources {
                let writer: Writer<cache::Cached> = Writer::new(ar.clone());
                stores.push(ChildStore { kind, resource: ar.clone(), store: writer.as_reader() });
                watches.spawn(watch::child_kind(ctx.client.clone(), namespace.clone(), ar, writer, ctx.clone()));
            }
            for s in &stores {
                let _ = tokio::time::timeout(Duration::from_secs(30), s.store.wait_until_ready()).await;
            }
            {
                let mut children = ctx.children.write().unwrap_or_else(|e| e.into_inner());
                children.retain(|c| !c.kind.is_gateway_api());
                children.extend(stores);
            }
            ctx.gateway_api.store(true, Ordering::Relaxed);
            tracing::info!("the Gateway API's CRDs are served");
            if requeue {
                ctx.trigger_all();
            }
        }
        Ok(None) if available => {
            ctx.gateway_api.store(false, Ordering::Relaxed);
            ctx.children.write().unwrap_or_else(|e| e.into_inner()).retain(|c| !c.kind.is_gateway_api());
            watches.abort_all();
            tracing::warn!("the Gateway API's CRDs are no longer served: its objects are skipped");
            ctx.trigger_all();
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not discover the Gateway API group"),
    }
}
