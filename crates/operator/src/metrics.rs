//! Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` endpoints,
//! served by a small hand-written HTTP/1.1 responder (no web framework).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::counting::WriteCounter;

#[derive(Clone, Copy, Debug, Default)]
struct KindStats {
    reconciles: u64,
    errors: u64,
    invalid: u64,
    seconds: f64,
}

/// The operator's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    writes: WriteCounter,
    kinds: Mutex<BTreeMap<&'static str, KindStats>>,
    applied: AtomicU64,
    deleted: AtomicU64,
    status_updates: AtomicU64,
    istio_available: AtomicBool,
    leader: AtomicBool,
    ready: AtomicBool,
}

impl Metrics {
    pub fn new(writes: WriteCounter) -> Self {
        Metrics { writes, ..Metrics::default() }
    }

    pub fn writes(&self) -> u64 {
        self.writes.writes()
    }

    /// The counter the operator's client records into.
    pub fn writes_counter(&self) -> WriteCounter {
        self.writes.clone()
    }

    fn with(&self, kind: &'static str, f: impl FnOnce(&mut KindStats)) {
        let mut map = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(kind).or_default());
    }

    pub fn reconciled(&self, kind: &'static str, took: Duration) {
        self.with(kind, |s| {
            s.reconciles += 1;
            s.seconds += took.as_secs_f64();
        });
    }

    pub fn failed(&self, kind: &'static str) {
        self.with(kind, |s| s.errors += 1);
    }

    pub fn invalid(&self, kind: &'static str) {
        self.with(kind, |s| s.invalid += 1);
    }

    /// Reconciles of `kind` so far.
    pub fn reconciles(&self, kind: &'static str) -> u64 {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner()).get(kind).map_or(0, |s| s.reconciles)
    }

    pub fn total_reconciles(&self) -> u64 {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner()).values().map(|s| s.reconciles).sum()
    }

    pub fn add_applied(&self, n: usize) {
        self.applied.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn add_deleted(&self, n: usize) {
        self.deleted.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn status_updated(&self) {
        self.status_updates.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_istio(&self, available: bool) {
        self.istio_available.store(available, Ordering::Relaxed);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// Caches are synced and the controllers run.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut family = |name: &str, help: &str, kind: &str, f: &dyn Fn(&KindStats) -> String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (k, s) in &kinds {
                let _ = writeln!(out, "{name}{{kind=\"{k}\"}} {}", f(s));
            }
        };
        family("magnetar_reconciles_total", "Reconciles run.", "counter", &|s| s.reconciles.to_string());
        family("magnetar_reconcile_errors_total", "Reconciles that failed (retried with back-off).", "counter", &|s| {
            s.errors.to_string()
        });
        family("magnetar_invalid_specs_total", "Reconciles that found an invalid spec.", "counter", &|s| {
            s.invalid.to_string()
        });
        family("magnetar_reconcile_seconds_total", "Time spent reconciling.", "counter", &|s| {
            format!("{:.6}", s.seconds)
        });
        let mut single = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        single(
            "magnetar_write_requests_total",
            "Write requests sent to the API server (lease renewals excluded).",
            "counter",
            self.writes.writes(),
        );
        single(
            "magnetar_lease_writes_total",
            "Lease writes of the leader election.",
            "counter",
            self.writes.lease_writes(),
        );
        single(
            "magnetar_objects_applied_total",
            "Objects applied by server-side apply.",
            "counter",
            self.applied.load(Ordering::Relaxed),
        );
        single(
            "magnetar_objects_deleted_total",
            "Objects deleted because they were no longer desired.",
            "counter",
            self.deleted.load(Ordering::Relaxed),
        );
        single(
            "magnetar_status_updates_total",
            "Status updates.",
            "counter",
            self.status_updates.load(Ordering::Relaxed),
        );
        single(
            "magnetar_istio_available",
            "1 when Istio's CRDs are served.",
            "gauge",
            u64::from(self.istio_available.load(Ordering::Relaxed)),
        );
        single(
            "magnetar_leader",
            "1 while this instance holds the leader lease.",
            "gauge",
            u64::from(self.leader.load(Ordering::Relaxed)),
        );
        single("magnetar_ready", "1 when caches are synced and controllers run.", "gauge", u64::from(self.is_ready()));
        out
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until dropped.
pub async fn serve(addr: SocketAddr, metrics: std::sync::Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    serve_on(listener, metrics).await
}

/// Serves on an already bound listener.
pub async fn serve_on(listener: TcpListener, metrics: std::sync::Arc<Metrics>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), respond(stream, &metrics)).await;
        });
    }
}

async fn respond(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default().split('?').next().unwrap_or_default();
    let (code, content_type, body) = route(method, path, metrics);
    let response = format!(
        "HTTP/1.1 {code}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

fn route(method: &str, path: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "method not allowed\n".into());
    }
    match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        "/healthz" | "/livez" => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" if metrics.is_ready() => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" => ("503 Service Unavailable", TEXT, "caches not synced yet\n".into()),
        _ => ("404 Not Found", TEXT, "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.reconciled("PulsarBroker", Duration::from_millis(5));
        m.failed("PulsarBroker");
        m.add_applied(3);
        let text = m.render();
        assert!(text.contains("magnetar_reconciles_total{kind=\"PulsarBroker\"} 1"));
        assert!(text.contains("magnetar_reconcile_errors_total{kind=\"PulsarBroker\"} 1"));
        assert!(text.contains("magnetar_objects_applied_total 3"));
        assert!(text.contains("magnetar_write_requests_total 0"));
        assert_eq!(m.reconciles("PulsarBroker"), 1);
    }

    #[tokio::test]
    async fn serves_health_ready_and_metrics() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let server = tokio::spawn(serve_on(listener, metrics.clone()));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.set_ready(true);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").await.contains("magnetar_ready 1"));
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }
}
