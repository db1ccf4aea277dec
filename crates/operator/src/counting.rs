//! A counting layer on the kube Client: every write request (anything but
//! GET, HEAD and OPTIONS; lists and watches are GETs) is counted, so that a
//! test can assert that a no-op reconcile writes nothing. Lease renewals of
//! the leader election are counted apart: they are not reconcile writes.
//! Requests the API server refuses with 403 Forbidden are counted by verb
//! and resource: a permission missing from the operator's role shows up in
//! `magnetar_forbidden_requests_total` naming what was refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// What a request asked for, in RBAC's terms (the labels of
/// `magnetar_forbidden_requests_total`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RequestAttributes {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'static str,
    /// The API group ("" for the core group).
    pub group: String,
    /// The resource, with its subresource after a slash (`pulsarbrokers/status`).
    pub resource: String,
}

/// Shared request counters.
#[derive(Clone, Debug, Default)]
pub struct WriteCounter {
    writes: Arc<AtomicU64>,
    lease_writes: Arc<AtomicU64>,
    forbidden: Family<RequestAttributes, Counter>,
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

    /// Requests refused with 403 Forbidden, by verb and resource.
    pub fn forbidden(&self) -> Family<RequestAttributes, Counter> {
        self.forbidden.clone()
    }

    fn record_forbidden(&self, attributes: Option<RequestAttributes>) {
        if let Some(a) = attributes {
            tracing::warn!(verb = a.verb, group = %a.group, resource = %a.resource, "forbidden: the operator's role lacks this permission");
            self.forbidden.get_or_create(&a).inc();
        }
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

/// The verb, group and resource of a resource request, as the API server's
/// authorizer sees them (its RequestInfo); None for other paths (discovery,
/// /version).
pub fn request_attributes(method: &Method, uri: &http::Uri) -> Option<RequestAttributes> {
    let parts: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    // namespaces/<ns>/<resource>/... is namespaced; namespaces/<ns> alone is
    // the Namespace itself.
    let rest = match rest {
        ["namespaces", _ns, resource, tail @ ..] => [&[*resource][..], tail].concat(),
        other => other.to_vec(),
    };
    let (resource, name, sub) = match rest.as_slice() {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub, ..] => (*resource, Some(*name), Some(*sub)),
        [] => return None,
    };
    let watch = uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match (method, name) {
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None) if watch => "watch",
        (&Method::GET, None) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, Some(_)) => "delete",
        (&Method::DELETE, None) => "deletecollection",
        _ => return None,
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    Some(RequestAttributes { verb, group: group.to_string(), resource })
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
        // Named only when refused: parsing the path of every request would
        // put allocations on the hot path for the rare 403.
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let (client, counter) = (self.inner.clone(), self.counter.clone());
        Box::pin(async move {
            // `send` hands back the raw response: a refusal is a 403 status
            // here, turned into an error later by the caller.
            let response = client.send(req).await;
            let refused = match &response {
                Ok(r) => r.status() == StatusCode::FORBIDDEN,
                Err(kube::Error::Api(e)) => e.code == StatusCode::FORBIDDEN.as_u16(),
                Err(_) => false,
            };
            if refused {
                counter.record_forbidden(request_attributes(&method, &uri));
            }
            response
        })
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

    #[test]
    fn names_a_request_as_rbac_does() {
        let at = |m: Method, uri: &str| {
            request_attributes(&m, &uri.parse().unwrap()).map(|a| format!("{} {} {}", a.verb, a.group, a.resource))
        };
        assert_eq!(at(Method::GET, "/api/v1/pods?watch=true&resourceVersion=1").unwrap(), "watch  pods");
        assert_eq!(at(Method::GET, "/api/v1/namespaces/x/pods").unwrap(), "list  pods");
        assert_eq!(at(Method::GET, "/api/v1/namespaces/x/secrets/tls").unwrap(), "get  secrets");
        assert_eq!(at(Method::GET, "/api/v1/namespaces/x").unwrap(), "get  namespaces");
        assert_eq!(
            at(Method::PATCH, "/apis/apps/v1/namespaces/x/statefulsets/y?fieldManager=magnetar").unwrap(),
            "patch apps statefulsets"
        );
        assert_eq!(
            at(Method::PATCH, "/apis/pulsar.streamnative.io/v1alpha1/namespaces/x/pulsarbrokers/b/status").unwrap(),
            "patch pulsar.streamnative.io pulsarbrokers/status"
        );
        assert_eq!(
            at(Method::POST, "/apis/events.k8s.io/v1/namespaces/x/events").unwrap(),
            "create events.k8s.io events"
        );
        assert_eq!(
            at(Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/x/leases/l").unwrap(),
            "update coordination.k8s.io leases"
        );
        assert_eq!(at(Method::DELETE, "/api/v1/namespaces/x/pods/p").unwrap(), "delete  pods");
        assert_eq!(at(Method::DELETE, "/api/v1/namespaces/x/pods").unwrap(), "deletecollection  pods");
        assert_eq!(at(Method::GET, "/apis/apps/v1"), None, "discovery is not a resource request");
        assert_eq!(at(Method::GET, "/version"), None);
    }
}
