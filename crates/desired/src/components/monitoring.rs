//! `spec.monitoring`: a PodMonitor (prometheus-operator's
//! monitoring.coreos.com/v1) per component, scraping where the metrics are
//! in the component's mesh mode:
//!
//! - sidecar: Istio's merged metrics, port 15020 `/stats/prometheus`. The
//!   agent there serves Envoy's metrics and, when the pod carries the
//!   `prometheus.io/*` annotations of the application's own endpoint, the
//!   application's too (Istio's metrics merging); magnetar sets them. A
//!   Prometheus outside the mesh scrapes 15020 in plaintext, which the
//!   sidecar allows.
//! - ambient or no mesh: the component's own metrics endpoint (ZooKeeper's
//!   and the bookies' 8000 `/metrics`, the brokers' and proxies' 8080
//!   `/metrics/`). In ambient mode that port must admit the scraper:
//!   `istio.metrics.permissive` or `istio.metrics.allowFrom` (SPEC 1.1).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use magnetar_api::common::{Monitoring, PodSpec};
use serde::{Deserialize, Serialize};

use crate::istio::types::crd_kind;
use crate::mesh::Enrolment;
use crate::names::{self, Component};
use crate::{Object, Owner};

pub const GROUP: &str = "monitoring.coreos.com";
/// Where the Istio agent serves the merged metrics of a sidecar pod.
pub const ISTIO_MERGED_PORT: i32 = 15020;
pub const ISTIO_MERGED_PATH: &str = "/stats/prometheus";

crd_kind!(
    /// monitoring.coreos.com/v1 PodMonitor.
    PodMonitor, PodMonitorSpec, "monitoring.coreos.com", "v1", "podmonitors"
);

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    pub selector: LabelSelector,
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsEndpoint {
    pub port_number: i32,
    pub path: String,
    pub interval: Option<String>,
}

/// ZooKeeper's metrics provider (the Pulsar image's zookeeper.conf).
pub const ZOOKEEPER: Metrics = Metrics { port: crate::ports::ZK_ADMIN, path: "/metrics" };
/// The bookies' HTTP server.
pub const BOOKIE: Metrics = Metrics { port: crate::ports::BOOKIE_HTTP, path: "/metrics" };
/// Pulsar's web service (brokers and proxies).
pub const PULSAR: Metrics = Metrics { port: crate::ports::HTTP, path: "/metrics/" };

/// A component's own metrics endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metrics {
    pub port: i32,
    pub path: &'static str,
}

/// The PodMonitor `<n>-<suffix>` of the component's pods, when monitoring
/// is on.
pub fn pod_monitor(
    owner: &Owner,
    component: Component,
    monitoring: Option<&Monitoring>,
    enrolment: &Enrolment,
    metrics: Metrics,
) -> Option<Object> {
    let m = Monitoring::on(monitoring)?;
    let (port_number, path) = match enrolment {
        Enrolment::Sidecar { .. } => (ISTIO_MERGED_PORT, ISTIO_MERGED_PATH),
        _ => (metrics.port, metrics.path),
    };
    let spec = PodMonitorSpec {
        selector: LabelSelector { match_labels: Some(names::selector(component, &owner.name)), ..Default::default() },
        pod_metrics_endpoints: vec![PodMetricsEndpoint {
            port_number,
            path: path.to_string(),
            interval: m.interval.clone().filter(|i| !i.is_empty()),
        }],
    };
    let mut metadata: ObjectMeta = owner.metadata(component.object_name(&owner.name), component);
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in &m.labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Some(Object::typed(&PodMonitor::new(metadata, spec)))
}

/// The pod settings with the `prometheus.io/*` annotations of the
/// component's metrics endpoint when monitoring is on (what Istio's metrics
/// merging reads); the user's own annotations win.
pub fn annotate<'a>(pod: &'a PodSpec, monitoring: Option<&Monitoring>, metrics: Metrics) -> Cow<'a, PodSpec> {
    if Monitoring::on(monitoring).is_none() {
        return Cow::Borrowed(pod);
    }
    let mut p = pod.clone();
    for (k, v) in [
        ("prometheus.io/scrape", "true".to_string()),
        ("prometheus.io/port", metrics.port.to_string()),
        ("prometheus.io/path", metrics.path.to_string()),
    ] {
        p.annotations.entry(k.to_string()).or_insert(v);
    }
    Cow::Owned(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKER: Metrics = Metrics { port: 8080, path: "/metrics/" };

    fn owner() -> Owner {
        Owner {
            api_version: "pulsar.streamnative.io/v1alpha1".into(),
            kind: "PulsarBroker".into(),
            name: "pc".into(),
            namespace: "pulsar".into(),
            uid: None,
            labels: BTreeMap::new(),
        }
    }

    fn on() -> Monitoring {
        Monitoring {
            enabled: Some(true),
            interval: Some("30s".into()),
            labels: BTreeMap::from([("release".into(), "prometheus".into())]),
        }
    }

    fn spec(o: &Object) -> PodMonitor {
        serde_json::from_value(o.value.clone()).unwrap()
    }

    #[test]
    fn sidecar_pods_are_scraped_through_istios_merged_metrics() {
        let sidecar = Enrolment::Sidecar { revision: None };
        let pm = spec(&pod_monitor(&owner(), Component::Broker, Some(&on()), &sidecar, BROKER).unwrap());
        let e = &pm.spec.pod_metrics_endpoints[0];
        assert_eq!((e.port_number, e.path.as_str(), e.interval.as_deref()), (15020, "/stats/prometheus", Some("30s")));
        assert_eq!(pm.metadata.labels.as_ref().unwrap()["release"], "prometheus");
        assert_eq!(pm.spec.selector.match_labels, Some(names::selector(Component::Broker, "pc")));
    }

    #[test]
    fn ambient_and_plain_pods_are_scraped_at_their_own_endpoint() {
        for enrolment in [Enrolment::Ambient, Enrolment::Disabled] {
            let pm = spec(&pod_monitor(&owner(), Component::Broker, Some(&on()), &enrolment, BROKER).unwrap());
            let e = &pm.spec.pod_metrics_endpoints[0];
            assert_eq!((e.port_number, e.path.as_str()), (8080, "/metrics/"), "{enrolment:?}");
        }
        let off = Monitoring { enabled: Some(false), ..on() };
        assert!(pod_monitor(&owner(), Component::Broker, Some(&off), &Enrolment::Disabled, BROKER).is_none());
        assert!(pod_monitor(&owner(), Component::Broker, None, &Enrolment::Disabled, BROKER).is_none());
    }

    #[test]
    fn scrape_annotations_name_the_endpoint_and_yield_to_the_users() {
        let mut pod = PodSpec::default();
        pod.annotations.insert("prometheus.io/path".into(), "/custom".into());
        let p = annotate(&pod, Some(&on()), BROKER);
        assert_eq!(p.annotations["prometheus.io/port"], "8080");
        assert_eq!(p.annotations["prometheus.io/path"], "/custom");
        assert!(matches!(annotate(&pod, None, BROKER), Cow::Borrowed(_)));
    }
}
