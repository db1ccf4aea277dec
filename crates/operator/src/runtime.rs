//! Wiring: the reflectors and watches, one controller per kind, leader
//! election, the metrics server; started by [`run`], [`run_until`] or
//! [`Operator::start`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::runtime::applier;
use kube::runtime::controller::{self as kcontroller, Action};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use tokio::task::JoinSet;

use crate::context::{ChildStore, Context, Stores, Triggers};
use crate::controller::component::ComponentResource;
use crate::counting::WriteCounter;
use crate::error::Error;
use crate::metrics::{self, Metrics};
use crate::options::Options;
use crate::{backoff, cache, controller, counting, discovery, istio_watch, kinds, leader, prerequisites, watch};

/// Runs the operator until Ctrl-C or SIGTERM.
pub async fn run(client: Client, opts: Options) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(WriteCounter::default()));
    run_until(client, opts, metrics, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the operator until `shutdown` resolves (then finishes the
/// reconciles in flight and returns). Write requests are counted in
/// `metrics`.
pub async fn run_until(
    client: Client,
    opts: Options,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = counting::wrap(client, metrics.writes_counter());
    let shutdown = shutdown.boxed().shared();
    let mut background = JoinSet::new();
    if let Some(addr) = opts.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
        let m = metrics.clone();
        background.spawn(async move {
            if let Err(e) = metrics::serve_on(listener, m).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
    }
    if let Some(le) = &opts.leader_election {
        metrics.set_standby(true);
        tokio::select! {
            _ = leader::acquire(&client, le) => {}
            _ = shutdown.clone() => return Ok(()),
        }
        metrics.set_standby(false);
        metrics.set_leader(true);
    }
    let lost = async {
        match &opts.leader_election {
            Some(le) => leader::hold(&client, le).await,
            None => futures::future::pending().await,
        }
    };
    let result = tokio::select! {
        r = controllers(client.clone(), opts.clone(), metrics.clone(), shutdown.clone()) => r,
        _ = lost => Err(anyhow::anyhow!("lost the leader lease; stopping so that another instance takes over")),
    };
    metrics.set_ready(false);
    if let Some(le) = &opts.leader_election {
        metrics.set_leader(false);
        leader::release(&client, le).await;
    }
    background.shutdown().await;
    result
}

/// An operator running in-process (for `magnetar dev` and tests).
pub struct Operator {
    metrics: Arc<Metrics>,
    stop: Option<futures::channel::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Operator {
    /// Starts the operator on the current tokio runtime.
    pub fn start(client: Client, opts: Options) -> Self {
        let metrics = Arc::new(Metrics::new(WriteCounter::default()));
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let task = tokio::spawn(run_until(client, opts, metrics.clone(), rx.map(|_| ())));
        Operator { metrics, stop: Some(tx), task }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Write requests made so far (lease renewals excluded).
    pub fn writes(&self) -> u64 {
        self.metrics.writes()
    }

    /// Waits (up to `timeout`) until caches are synced and controllers run.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.metrics.is_ready() {
            if tokio::time::Instant::now() > deadline || self.task.is_finished() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops gracefully: reconciles in flight finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("operator task failed: {e}")),
        }
    }

    /// Stops at once, in the middle of whatever it was doing (like a kill).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn run_applier<K, F, Fut>(
    mut reconcile: F,
    ctx: Arc<Context>,
    store: Store<K>,
    queue: mpsc::UnboundedReceiver<ObjectRef<K>>,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
    concurrency: u16,
) where
    K: kube::Resource<DynamicType = ()> + controller::Kind + Clone + std::fmt::Debug + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let queue = queue.map(Ok::<_, std::convert::Infallible>).take_until(shutdown);
    // Boxed: the applier wants a reconcile future that is Unpin.
    let stream = applier(
        move |obj, ctx| reconcile(obj, ctx).boxed(),
        controller::error_policy::<K>,
        ctx,
        store,
        queue,
        kcontroller::Config::default().concurrency(concurrency),
    );
    stream
        .for_each(|r| async move {
            if let Err(e) = r {
                match e {
                    kcontroller::Error::ReconcilerFailed(..) => {}
                    other => tracing::debug!(error = %other, kind = K::MAIN.kind(), "controller"),
                }
            }
        })
        .await;
}

fn component_applier<K: ComponentResource>(
    ctx: Arc<Context>,
    queue: mpsc::UnboundedReceiver<ObjectRef<K>>,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
    concurrency: u16,
) -> impl Future<Output = ()> {
    let store = K::store(&ctx).clone();
    run_applier(controller::component::reconcile::<K>, ctx, store, queue, shutdown, concurrency)
}

/// Wires watches, stores and the five controllers; runs until `shutdown`.
async fn controllers(
    client: Client,
    opts: Options,
    metrics: Arc<Metrics>,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) -> anyhow::Result<()> {
    let ns = opts.namespace.clone();
    let (coord_r, coord_w) = reflector::store();
    let (zk_r, zk_w) = reflector::store();
    let (bk_r, bk_w) = reflector::store();
    let (pb_r, pb_w) = reflector::store();
    let (pp_r, pp_w) = reflector::store();
    let (pods_r, pods_w) = reflector::store();
    let (coord_tx, coord_rx) = mpsc::unbounded();
    let (zk_tx, zk_rx) = mpsc::unbounded();
    let (bk_tx, bk_rx) = mpsc::unbounded();
    let (pb_tx, pb_rx) = mpsc::unbounded();
    let (pp_tx, pp_rx) = mpsc::unbounded();

    let mut children = Vec::new();
    let mut child_writers = Vec::new();
    for kind in kinds::CORE {
        let ar = kind.resource(None);
        let writer: Writer<cache::Cached> = Writer::new(Arc::new(ar.clone()));
        children.push(ChildStore { kind, resource: ar.clone(), store: writer.as_reader() });
        child_writers.push((ar, writer));
    }

    let reporter = Reporter {
        controller: opts.reporter.clone(),
        instance: opts.leader_election.as_ref().map(|l| l.identity.clone()),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        identity: opts.identity.clone(),
        cluster_domain: opts.cluster_domain.clone(),
        stores: Stores { coordinators: coord_r, zookeepers: zk_r, bookkeepers: bk_r, brokers: pb_r, proxies: pp_r },
        children: RwLock::new(children),
        pods: pods_r,
        triggers: Triggers {
            coordinator: coord_tx,
            zookeeper: zk_tx,
            bookkeeper: bk_tx,
            broker: pb_tx,
            proxy: pp_tx,
            metrics: metrics.clone(),
        },
        istio: AtomicBool::new(false),
        gateway_api: AtomicBool::new(false),
        monitoring: AtomicBool::new(false),
        mesh_dns: RwLock::new(discovery::MeshDns::default()),
        memory: Mutex::new(HashMap::new()),
        backoff: backoff::Backoff::default(),
        prerequisites: Arc::new(prerequisites::Waits::default()),
        metrics: metrics.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        resync: opts.resync,
    });

    // Watches. Dropping the JoinSet (on return or abort) stops them.
    let mut tasks = JoinSet::new();
    tasks.spawn(watch::main_kind(client.clone(), ns.clone(), coord_w, ctx.clone()));
    tasks.spawn(watch::main_kind(client.clone(), ns.clone(), zk_w, ctx.clone()));
    tasks.spawn(watch::main_kind(client.clone(), ns.clone(), bk_w, ctx.clone()));
    tasks.spawn(watch::main_kind(client.clone(), ns.clone(), pb_w, ctx.clone()));
    tasks.spawn(watch::main_kind(client.clone(), ns.clone(), pp_w, ctx.clone()));
    for (ar, writer) in child_writers {
        tasks.spawn(watch::child_kind(client.clone(), ns.clone(), ar, writer, ctx.clone()));
    }
    tasks.spawn(watch::pods(client.clone(), ns.clone(), pods_w, ctx.clone()));

    // Istio: look once now (so the first reconciles know), then keep looking.
    let (istio_ready_tx, istio_ready_rx) = futures::channel::oneshot::channel();
    tasks.spawn(istio_watch::istio_loop(ctx.clone(), ns.clone(), opts.istio_recheck, istio_ready_tx));

    // Every cache must be complete before the first reconcile: a partial
    // inventory would build AuthorizationPolicies without some peers.
    let synced = async {
        let _ = ctx.stores.coordinators.wait_until_ready().await;
        let _ = ctx.stores.zookeepers.wait_until_ready().await;
        let _ = ctx.stores.bookkeepers.wait_until_ready().await;
        let _ = ctx.stores.brokers.wait_until_ready().await;
        let _ = ctx.stores.proxies.wait_until_ready().await;
        let _ = ctx.pods.wait_until_ready().await;
        let stores: Vec<ChildStore> = ctx.children.read().unwrap_or_else(|e| e.into_inner()).clone();
        for c in stores {
            let _ = c.store.wait_until_ready().await;
        }
        let _ = istio_ready_rx.await;
    };
    tokio::select! {
        _ = synced => {}
        _ = shutdown.clone() => return Ok(()),
    }
    metrics.set_ready(true);
    tracing::info!(namespace = ?ns, istio = ctx.istio_available(), "caches synced; controllers running");

    let n = opts.concurrent_reconciles;
    futures::join!(
        run_applier(
            controller::coordinator::reconcile,
            ctx.clone(),
            ctx.stores.coordinators.clone(),
            coord_rx,
            shutdown.clone(),
            n,
        ),
        component_applier::<magnetar_api::ZooKeeperCluster>(ctx.clone(), zk_rx, shutdown.clone(), n),
        component_applier::<magnetar_api::BookKeeperCluster>(ctx.clone(), bk_rx, shutdown.clone(), n),
        component_applier::<magnetar_api::PulsarBroker>(ctx.clone(), pb_rx, shutdown.clone(), n),
        component_applier::<magnetar_api::PulsarProxy>(ctx.clone(), pp_rx, shutdown.clone(), n),
    );
    tasks.shutdown().await;
    Ok(())
}
