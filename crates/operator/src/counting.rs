//! A counting layer on the kube Client: every write request (anything but
//! GET, HEAD and OPTIONS; lists and watches are GETs) is counted, so that a
//! test can assert that a no-op reconcile writes nothing. Lease renewals of
//! the leader election are counted apart: they are not reconcile writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;

/// Shared write counters.
#[derive(Clone, Debug, Default)]
pub struct WriteCounter {
    writes: Arc<AtomicU64>,
    lease_writes: Arc<AtomicU64>,
}

impl WriteCounter {
    /// Write requests made so far (leases excluded).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Lease writes of the leader election.
    pub fn lease_writes(&self) -> u64 {
        self.lease_writes.load(Ordering::Relaxed)
    }

    fn record<B>(&self, req: &Request<B>) {
        if is_write(req.method()) {
            if req.uri().path().contains("/leases") {
                self.lease_writes.fetch_add(1, Ordering::Relaxed);
            } else {
                self.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A tower service that counts requests and hands them to a Client.
#[derive(Clone)]
pub struct CountingService {
    inner: Client,
    counter: WriteCounter,
}

impl tower_service::Service<Request<Body>> for CountingService {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.counter.record(&req);
        let client = self.inner.clone();
        Box::pin(async move { client.send(req).await })
    }
}

/// Wraps `client` so that its write requests are counted in `counter`.
pub fn wrap(client: Client, counter: WriteCounter) -> Client {
    let ns = client.default_namespace().to_string();
    Client::new(CountingService { inner: client, counter }, ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_writes_but_not_reads_or_leases() {
        let c = WriteCounter::default();
        let req = |m: Method, path: &str| Request::builder().method(m).uri(path).body(()).unwrap();
        c.record(&req(Method::GET, "/api/v1/pods?watch=true"));
        c.record(&req(Method::PATCH, "/apis/apps/v1/namespaces/x/statefulsets/y?fieldManager=magnetar"));
        c.record(&req(Method::DELETE, "/api/v1/namespaces/x/services/y"));
        c.record(&req(Method::POST, "/apis/events.k8s.io/v1/namespaces/x/events"));
        c.record(&req(Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/x/leases/magnetar"));
        assert_eq!(c.writes(), 3);
        assert_eq!(c.lease_writes(), 1);
    }
}
