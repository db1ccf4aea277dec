//! Prometheus metrics (`prometheus-client`) and the `/metrics`, `/healthz`,
//! `/readyz` endpoints (axum).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use tokio::net::TcpListener;

use crate::counting::WriteCounter;

/// The `kind` label of the per-kind families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

fn histogram() -> Histogram {
    // 1 ms … about 33 s: a no-op reconcile takes milliseconds, one that
    // applies a cluster's objects seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// `metric`, registered under `name`.
fn registered<M: Metric + Clone>(r: &mut Registry, name: &str, help: &str, metric: M) -> M {
    r.register(name, help, metric.clone());
    metric
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    writes: WriteCounter,
    reconciles: Family<KindLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    invalid: Family<KindLabel, Counter>,
    duration: Family<KindLabel, Histogram, fn() -> Histogram>,
    queue_depth: Family<KindLabel, Gauge>,
    /// Resources queued and not yet picked up, by `kind/namespace/name`.
    queued: Mutex<HashSet<(&'static str, String)>>,
    applied: Counter,
    deleted: Counter,
    status_updates: Counter,
    istio_available: Gauge,
    leader: Gauge,
    ready_gauge: Gauge,
    ready: AtomicBool,
    standby: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("writes", &self.writes.writes()).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(WriteCounter::default())
    }
}

impl Metrics {
    pub fn new(writes: WriteCounter) -> Self {
        let mut r = Registry::with_prefix("magnetar");
        // Fields in the order of /metrics: each is registered as it is made.
        Metrics {
            reconciles: registered(&mut r, "reconciles", "Reconciles run", Family::default()),
            errors: registered(
                &mut r,
                "reconcile_errors",
                "Reconciles that failed (retried with back-off)",
                Family::default(),
            ),
            invalid: registered(&mut r, "invalid_specs", "Reconciles that found an invalid spec", Family::default()),
            duration: registered(&mut r, "reconcile_duration_seconds", "Time one reconcile took", {
                Family::new_with_constructor(histogram as fn() -> Histogram)
            }),
            queue_depth: registered(&mut r, "queue_depth", "Resources queued for a reconcile and not yet picked up", {
                Family::default()
            }),
            writes: {
                let help = "Write requests sent to the API server (lease renewals excluded)";
                r.register("write_requests", help, WriteGauge { writes: writes.clone(), lease: false });
                r.register("lease_writes", "Lease writes of the leader election", {
                    WriteGauge { writes: writes.clone(), lease: true }
                });
                r.register(
                    "forbidden_requests",
                    "Requests the API server refused with 403 Forbidden, by verb and resource (a permission missing from the operator's role)",
                    writes.forbidden(),
                );
                writes
            },
            applied: registered(&mut r, "objects_applied", "Objects applied by server-side apply", Counter::default()),
            deleted: registered(&mut r, "objects_deleted", "Objects deleted because they were no longer desired", {
                Counter::default()
            }),
            status_updates: registered(&mut r, "status_updates", "Status updates", Counter::default()),
            istio_available: registered(&mut r, "istio_available", "1 when Istio's CRDs are served", Gauge::default()),
            leader: registered(&mut r, "leader", "1 while this instance holds the leader lease", Gauge::default()),
            ready_gauge: registered(&mut r, "ready", "1 when caches are synced and controllers run", Gauge::default()),
            queued: Mutex::new(HashSet::new()),
            ready: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            registry: r,
        }
    }

    pub fn writes(&self) -> u64 {
        self.writes.writes()
    }

    /// The counter the operator's client records into.
    pub fn writes_counter(&self) -> WriteCounter {
        self.writes.clone()
    }

    pub fn reconciled(&self, kind: &'static str, took: Duration) {
        self.reconciles.get_or_create(&KindLabel { kind }).inc();
        self.duration.get_or_create(&KindLabel { kind }).observe(took.as_secs_f64());
    }

    pub fn failed(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn invalid(&self, kind: &'static str) {
        self.invalid.get_or_create(&KindLabel { kind }).inc();
    }

    /// Reconciles of `kind` so far.
    pub fn reconciles(&self, kind: &'static str) -> u64 {
        self.reconciles.get_or_create(&KindLabel { kind }).get()
    }

    /// A resource was queued for a reconcile (`key`: namespace/name). The
    /// controller runs a resource queued twice once, so it counts once.
    pub fn queued(&self, kind: &'static str, key: String) {
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if q.insert((kind, key)) {
            self.queue_depth.get_or_create(&KindLabel { kind }).inc();
        }
    }

    /// A reconcile of a queued resource started.
    pub fn picked_up(&self, kind: &'static str, key: String) {
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if q.remove(&(kind, key)) {
            self.queue_depth.get_or_create(&KindLabel { kind }).dec();
        }
    }

    pub fn add_applied(&self, n: usize) {
        self.applied.inc_by(n as u64);
    }

    pub fn add_deleted(&self, n: usize) {
        self.deleted.inc_by(n as u64);
    }

    pub fn status_updated(&self) {
        self.status_updates.inc();
    }

    pub fn set_istio(&self, available: bool) {
        self.istio_available.set(i64::from(available));
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Caches are synced and the controllers run.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.ready_gauge.set(i64::from(ready));
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Waiting for the leader Lease: healthy and ready to take over, so
    /// `/readyz` answers ok (a Deployment with two replicas is then fully
    /// ready while one of them leads).
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Relaxed);
    }

    fn serves_readyz(&self) -> bool {
        self.is_ready() || self.standby.load(Ordering::Relaxed)
    }

    /// OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

/// The write counter (shared with the counting client) as a counter metric.
#[derive(Debug)]
struct WriteGauge {
    writes: WriteCounter,
    lease: bool,
}

impl prometheus_client::encoding::EncodeMetric for WriteGauge {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> std::fmt::Result {
        let v = if self.lease { self.writes.lease_writes() } else { self.writes.writes() };
        encoder.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v, None)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Counter
    }
}

/// The routes: `/metrics`, `/healthz` (and `/livez`), `/readyz`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

async fn serve_metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.serves_readyz() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet\n")
    }
}

/// Serves [`router`] on an already bound listener until the task is dropped.
pub async fn serve_on(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    axum::serve(listener, router(metrics)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The dashboards under deploy/grafana are well-formed Grafana JSON
    /// (unique panel ids, every target a PromQL expression on the
    /// datasource variable), and every magnetar_* series the operator
    /// dashboard queries is one this registry exports.
    #[test]
    fn grafana_dashboards_query_what_is_exported() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana");
        let m = Metrics::default();
        // Families show in the text once they have a series.
        m.reconciled("PulsarBroker", Duration::from_millis(5));
        m.failed("PulsarBroker");
        m.invalid("PulsarBroker");
        m.queued("PulsarBroker", "pulsar/pc".into());
        let exported = m.render();
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        for file in files {
            let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(d["uid"].is_string() && d["title"].is_string(), "{}", file.display());
            let panels = d["panels"].as_array().unwrap();
            let mut ids = std::collections::BTreeSet::new();
            for p in panels {
                assert!(ids.insert(p["id"].as_i64().unwrap()), "{}: duplicate panel id", file.display());
                for t in p["targets"].as_array().unwrap() {
                    assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", file.display());
                    let expr = t["expr"].as_str().unwrap();
                    assert_eq!(expr.matches('(').count(), expr.matches(')').count(), "{expr}");
                    for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                        let Some(name) = word.strip_prefix("magnetar_") else { continue };
                        let base = ["_total", "_bucket", "_count", "_sum"]
                            .iter()
                            .find_map(|s| name.strip_suffix(s))
                            .unwrap_or(name);
                        assert!(
                            exported.contains(&format!("# TYPE magnetar_{base} ")),
                            "{}: magnetar_{name} is not exported",
                            file.display()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn renders_openmetrics_text() {
        let m = Metrics::default();
        m.reconciled("PulsarBroker", Duration::from_millis(5));
        m.failed("PulsarBroker");
        m.add_applied(3);
        let text = m.render();
        assert!(text.contains("magnetar_reconciles_total{kind=\"PulsarBroker\"} 1"), "{text}");
        assert!(text.contains("magnetar_reconcile_errors_total{kind=\"PulsarBroker\"} 1"), "{text}");
        assert!(text.contains("magnetar_reconcile_duration_seconds_count{kind=\"PulsarBroker\"} 1"), "{text}");
        assert!(
            text.contains("magnetar_reconcile_duration_seconds_bucket{le=\"0.008\",kind=\"PulsarBroker\"} 1"),
            "{text}"
        );
        assert!(text.contains("magnetar_objects_applied_total 3"), "{text}");
        assert!(text.contains("magnetar_write_requests_total 0"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(m.reconciles("PulsarBroker"), 1);
    }

    #[test]
    fn queue_depth_counts_each_queued_resource_once() {
        let m = Metrics::default();
        m.queued("PulsarBroker", "ns/a".into());
        m.queued("PulsarBroker", "ns/a".into());
        m.queued("PulsarBroker", "ns/b".into());
        assert!(m.render().contains("magnetar_queue_depth{kind=\"PulsarBroker\"} 2"));
        m.picked_up("PulsarBroker", "ns/a".into());
        m.picked_up("PulsarBroker", "ns/a".into());
        assert!(m.render().contains("magnetar_queue_depth{kind=\"PulsarBroker\"} 1"));
    }

    #[tokio::test]
    async fn serves_health_ready_and_metrics() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let server = tokio::spawn(serve_on(listener, metrics.clone()));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.set_standby(true);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"), "a standby is ready to take over");
        assert!(get("/metrics").await.contains("magnetar_ready 0"), "but runs no controllers");
        metrics.set_standby(false);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.set_ready(true);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").await.contains("magnetar_ready 1"));
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }
}
