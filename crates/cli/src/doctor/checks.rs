//! The doctor's checks, pure: a snapshot of the cluster in, findings out.
//! Mirrors the "verify" and "troubleshooting" steps of StreamNative's Istio
//! guide; every finding names the fix.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::ResourceExt;
use magnetar_api::istio::{DataplaneMode, MeshSettings};
use magnetar_api::labels::{DATAPLANE_MODE, ISTIO_REV};
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarProxy, ZooKeeperCluster};
use magnetar_desired::listeners::BrokerListeners;
use magnetar_desired::mesh::{Enrolment, PodEnrolment};
use magnetar_desired::names;
use magnetar_desired::prerequisites::{self, Prerequisite};
use magnetar_desired::validate::{ValidBroker, ValidProxy};
use magnetar_operator::controller::component::ComponentResource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub subject: String,
    pub message: String,
    /// What to do; empty for Ok findings.
    pub fix: String,
}

fn ok(subject: &str, message: impl Into<String>) -> Finding {
    Finding { severity: Severity::Ok, subject: subject.into(), message: message.into(), fix: String::new() }
}

fn bad(severity: Severity, subject: &str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { severity, subject: subject.into(), message: message.into(), fix: fix.into() }
}

/// A TLS secret as the doctor sees it.
#[derive(Clone, Debug, Default)]
pub struct CertInfo {
    /// DNS names of the certificate (subjectAltName), empty if unreadable.
    pub dns_names: Vec<String>,
}

/// Everything the checks read.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub zookeepers: Vec<ZooKeeperCluster>,
    pub bookkeepers: Vec<BookKeeperCluster>,
    pub brokers: Vec<PulsarBroker>,
    pub proxies: Vec<PulsarProxy>,
    pub pods: Vec<Pod>,
    pub namespaces: Vec<Namespace>,
    pub nodes: i32,
    /// istio-system/ztunnel, if present.
    pub ztunnel: Option<DaemonSet>,
    /// Number of running pods matching each gateway (namespace, selector).
    pub gateway_pods: BTreeMap<(String, String), usize>,
    /// TLS secrets by (namespace, name); None when the secret is missing.
    pub secrets: BTreeMap<(String, String), Option<CertInfo>>,
    /// `defaultConfig.proxyMetadata` of the mesh config.
    pub proxy_metadata: BTreeMap<String, String>,
    /// istiod's version and the mesh config's DNS flags, read as the
    /// operator reads them.
    pub mesh_dns: magnetar_operator::discovery::MeshDns,
    /// The cluster DNS domain the user says the cluster has (empty: the
    /// default, cluster.local).
    pub cluster_domain: String,
    /// TLSRoutes and HTTPRoutes of each broker routed through the Gateway
    /// API, by (namespace, broker name); None when the Gateway API's CRDs
    /// are not served.
    pub routes: BTreeMap<(String, String), Option<Vec<serde_json::Value>>>,
}

/// What the Gateway API implementation reports of a broker's routes (the
/// operator's GatewayRoutes condition, decided by the same function).
fn gateway_routes(s: &Snapshot, subj: &str, key: (String, String), out: &mut Vec<Finding>) {
    match s.routes.get(&key) {
        None => {}
        Some(None) => out.push(bad(
            Severity::Error,
            subj,
            "istio.gateway.gatewayAPI is set but the cluster does not serve the Gateway API's v1 kinds",
            "install the Gateway API CRDs (1.5 or later, standard channel); see docs/gateway-api.md",
        )),
        Some(Some(routes)) if routes.is_empty() => out.push(bad(
            Severity::Error,
            subj,
            "no Gateway API route of this broker exists",
            "check that magnetar runs and that the broker's ExternalAccess condition is True",
        )),
        Some(Some(routes)) => {
            let r = magnetar_desired::gateway_api::route_report(routes);
            if r.ok {
                out.push(ok(subj, r.message));
            } else {
                out.push(bad(
                    Severity::Warning,
                    subj,
                    r.message,
                    "see the Gateway and its listeners (kubectl describe gateway) and docs/gateway-api.md",
                ));
            }
        }
    }
}

/// Does `pattern` (a SAN, possibly `*.x`) cover `host`?
pub fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

struct ComponentView<'a> {
    kind: &'static str,
    name: String,
    namespace: String,
    enrolment: Enrolment,
    pods: Vec<&'a Pod>,
}

impl Snapshot {
    fn views(&self) -> Vec<ComponentView<'_>> {
        let mut v = self.views_of(&self.zookeepers);
        v.extend(self.views_of(&self.bookkeepers));
        v.extend(self.views_of(&self.brokers));
        v.extend(self.views_of(&self.proxies));
        v
    }

    /// Each resource with its pods (found as its Services find them).
    fn views_of<K: ComponentResource>(&self, resources: &[K]) -> Vec<ComponentView<'_>> {
        let view = |r: &K| {
            let (name, namespace) = (r.name_any(), r.namespace().unwrap_or_default());
            let selector = names::selector(K::COMPONENT, &name);
            let pods = self
                .pods
                .iter()
                .filter(|p| p.namespace().as_deref() == Some(&namespace))
                .filter(|p| selector.iter().all(|(k, val)| p.labels().get(k) == Some(val)))
                .collect();
            ComponentView { kind: K::MAIN.kind(), name, namespace, enrolment: r.enrolment(), pods }
        };
        resources.iter().map(view).collect()
    }
}

/// Runs every check.
pub fn check(s: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    let views = s.views();
    for v in &views {
        pods(v, &mut out);
        namespace_labels(s, v, &mut out);
    }
    if views.iter().any(|v| v.enrolment == Enrolment::Ambient) {
        ztunnel(s, &mut out);
        if views.iter().any(|v| matches!(v.enrolment, Enrolment::Sidecar { .. })) {
            hbone(s, &mut out);
        }
    }
    for b in &s.brokers {
        broker(s, b, &mut out);
    }
    edge_authentication(s, &mut out);
    out
}

/// Brokers and proxies the gateway exposes without Pulsar's own
/// authentication: the operator's own decision (the validated view's),
/// reported as a warning with the fix.
fn edge_authentication(s: &Snapshot, out: &mut Vec<Finding>) {
    let brokers = s.brokers.iter().map(|b| {
        (
            format!("{}/PulsarBroker/{}", b.namespace().unwrap_or_default(), b.name_any()),
            ValidBroker::unchecked(b).exposed_without_authentication(),
        )
    });
    let proxies = s.proxies.iter().map(|p| {
        (
            format!("{}/PulsarProxy/{}", p.namespace().unwrap_or_default(), p.name_any()),
            ValidProxy::unchecked(p).exposed_without_authentication(),
        )
    });
    for (subj, _) in brokers.chain(proxies).filter(|(_, exposed)| *exposed) {
        out.push(bad(
            Severity::Warning,
            &subj,
            "reachable through the ingress gateway with Pulsar's authentication off: anyone who reaches the gateway can use its admin API and binary protocol",
            "set config.authentication (jwt with tokenSecretKey or tokenPublicKey) and config.authorization.superUserRoles, or authenticationEnabled in config.custom (docs/security.md); or remove istio.gateway",
        ));
    }
}

fn subject(v: &ComponentView) -> String {
    format!("{}/{}/{}", v.namespace, v.kind, v.name)
}

fn has_sidecar(p: &Pod) -> bool {
    PodEnrolment::of(p.annotations()).has_sidecar()
}

fn ready_counts(p: &Pod) -> (usize, usize) {
    let statuses = p.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    let native = p
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.name == "istio-proxy");
    let all: Vec<_> = statuses.into_iter().chain(native).collect();
    (all.iter().filter(|c| c.ready).count(), all.len())
}

fn pods(v: &ComponentView, out: &mut Vec<Finding>) {
    let subj = subject(v);
    if v.pods.is_empty() {
        out.push(bad(
            Severity::Error,
            &subj,
            "no pods",
            "check the StatefulSet's events: kubectl describe statefulset",
        ));
        return;
    }
    for p in &v.pods {
        let name = p.name_any();
        let (ready, total) = ready_counts(p);
        let sidecar = has_sidecar(p);
        match &v.enrolment {
            Enrolment::Sidecar { .. } if !sidecar => out.push(bad(
                Severity::Error,
                &subj,
                format!("pod {name} has no istio-proxy sidecar ({ready}/{total})"),
                "make sure istiod's injector runs and the namespace has no istio-injection=disabled label, then delete the pod",
            )),
            Enrolment::Ambient if sidecar => out.push(bad(
                Severity::Error,
                &subj,
                format!("pod {name} still has a sidecar in ambient mode"),
                "remove the namespace's istio-injection / istio.io/rev label, then delete the pod",
            )),
            Enrolment::Ambient if p.labels().get(DATAPLANE_MODE).map(String::as_str) != Some("ambient") => out.push(bad(
                Severity::Error,
                &subj,
                format!("pod {name} lacks the label istio.io/dataplane-mode=ambient"),
                "wait for magnetar to roll the pod (kubectl get statefulset), or delete it",
            )),
            Enrolment::Ambient if !PodEnrolment::of(p.annotations()).is_redirected() => out.push(bad(
                Severity::Warning,
                &subj,
                format!("pod {name} is labelled ambient but not redirected by istio-cni"),
                "check that istio-cni and ztunnel run on its node",
            )),
            _ if total > 0 && ready < total => out.push(bad(
                Severity::Warning,
                &subj,
                format!("pod {name} is {ready}/{total} ready"),
                "kubectl describe pod and the istio-proxy logs tell why",
            )),
            _ => out.push(ok(&subj, format!("pod {name} {ready}/{total} {}", v.enrolment.mode_name()))),
        }
    }
}

fn namespace_labels(s: &Snapshot, v: &ComponentView, out: &mut Vec<Finding>) {
    let Some(ns) = s.namespaces.iter().find(|n| n.name_any() == v.namespace) else { return };
    let labels = ns.labels();
    let injection = labels.get("istio-injection").map(String::as_str);
    let rev = labels.get(ISTIO_REV);
    let subj = subject(v);
    let ns_name = &v.namespace;
    match (&v.enrolment, injection, rev) {
        (Enrolment::Ambient | Enrolment::Disabled, Some("enabled"), _)
        | (Enrolment::Ambient | Enrolment::Disabled, _, Some(_)) => out.push(bad(
            Severity::Error,
            &subj,
            format!(
                "namespace {ns_name} asks for sidecar injection, which overrides the pods' {} labels",
                v.enrolment.mode_name()
            ),
            format!("kubectl label namespace {ns_name} istio-injection- istio.io/rev-"),
        )),
        (Enrolment::Sidecar { .. }, Some("disabled"), _) => out.push(bad(
            Severity::Error,
            &subj,
            format!("namespace {ns_name} has istio-injection=disabled, so no sidecar is injected"),
            format!("kubectl label namespace {ns_name} istio-injection-"),
        )),
        (Enrolment::Sidecar { revision }, _, Some(r)) if revision.as_deref().unwrap_or("default") != r => {
            out.push(bad(
                Severity::Warning,
                &subj,
                format!(
                    "namespace {ns_name} selects revision {r}, the component asks for {}",
                    revision.as_deref().unwrap_or("default")
                ),
                "use one revision: set istio.revision on the component or relabel the namespace",
            ))
        }
        _ => {}
    }
}

fn ztunnel(s: &Snapshot, out: &mut Vec<Finding>) {
    let subj = "istio-system/DaemonSet/ztunnel";
    match &s.ztunnel {
        None => out.push(bad(
            Severity::Error,
            subj,
            "ztunnel is not installed, ambient pods get no mTLS",
            "install Istio with the ambient profile (istioctl install --set profile=ambient)",
        )),
        Some(ds) => {
            let st = ds.status.clone().unwrap_or_default();
            if st.number_ready < s.nodes || st.desired_number_scheduled < s.nodes {
                out.push(bad(
                    Severity::Error,
                    subj,
                    format!("ztunnel ready on {} of {} nodes", st.number_ready, s.nodes),
                    "check ztunnel's tolerations and its pods: kubectl -n istio-system get pods -l app=ztunnel",
                ));
            } else {
                out.push(ok(subj, format!("ready on all {} nodes", s.nodes)));
            }
        }
    }
}

fn hbone(s: &Snapshot, out: &mut Vec<Finding>) {
    let subj = "istio-system/ConfigMap/istio";
    if s.proxy_metadata.get("ISTIO_META_ENABLE_HBONE").map(String::as_str) == Some("true") {
        out.push(ok(subj, "sidecars speak HBONE to ambient pods"));
    } else {
        out.push(bad(
            Severity::Error,
            subj,
            "sidecars run without ISTIO_META_ENABLE_HBONE=true, so they cannot reach ambient pods under STRICT mTLS",
            "set meshConfig.defaultConfig.proxyMetadata.ISTIO_META_ENABLE_HBONE: \"true\" and restart the sidecar pods",
        ));
    }
}

/// The operator builds every in-cluster name in its own --cluster-domain;
/// a published name in another domain than the cluster's does not resolve.
fn cluster_domain_check(s: &Snapshot, subj: &str, url: &str, out: &mut Vec<Finding>) {
    let domain = if s.cluster_domain.is_empty() {
        magnetar_desired::names::DEFAULT_CLUSTER_DOMAIN
    } else {
        s.cluster_domain.as_str()
    };
    let host = url.split("://").nth(1).unwrap_or(url).split([':', '/']).next().unwrap_or_default();
    if !host.ends_with(&format!(".svc.{domain}")) {
        out.push(bad(
            Severity::Error,
            subj,
            format!("in-cluster endpoint {url} is not in the cluster DNS domain {domain}"),
            format!(
                "run the operator with --cluster-domain {domain} (or MAGNETAR_CLUSTER_DOMAIN), or pass doctor the domain the operator uses"
            ),
        ));
    }
}

fn broker(s: &Snapshot, b: &PulsarBroker, out: &mut Vec<Finding>) {
    let ns = b.namespace().unwrap_or_default();
    let subj = format!("{ns}/PulsarBroker/{}", b.name_any());
    let status = b.status.as_ref();
    let endpoints = status.and_then(|st| st.service_endpoints.as_ref());
    let listeners = BrokerListeners::of(b);
    match endpoints {
        None => out.push(bad(
            Severity::Warning,
            &subj,
            "no serviceEndpoints in status yet",
            "check that magnetar runs: kubectl get pods -n magnetar-system; kubectl describe pulsarbroker",
        )),
        Some(e) if listeners.external.is_some() && e.external.is_none() => out.push(bad(
            Severity::Warning,
            &subj,
            "external endpoints not published",
            "kubectl describe pulsarbroker: the conditions say why",
        )),
        Some(_) => out.push(ok(&subj, "service endpoints published")),
    }
    if let Some(e) = endpoints {
        cluster_domain_check(s, &subj, &e.cluster.web_service_url, out);
    }
    let Some(ext) = listeners.external else { return };
    let gw = ext.gateway;
    if gw.gateway_api.is_some() {
        gateway_routes(s, &subj, (ns.clone(), b.name_any()), out);
    }
    // What external access needs, as the operator decides it.
    for need in prerequisites::of(gw, &ns) {
        let Prerequisite::GatewayPods { namespace, selector } = need else { continue };
        match s.gateway_pods.get(&(namespace.clone(), selector.clone())).copied().unwrap_or(0) {
            0 => out.push(bad(
                Severity::Error,
                &subj,
                format!("no ingress gateway pod in {namespace} matches {selector}"),
                "fix istio.gateway.selector / namespace, or install the ingress gateway",
            )),
            n => out.push(ok(&subj, format!("{n} ingress gateway pod(s) match {selector}"))),
        }
    }
    let Some((secret_ns, secret)) = prerequisites::certificate_secret(gw, &ns) else { return };
    let mut hosts = vec![ext.hosts.main.clone()];
    hosts.extend(ext.hosts.hosts(b.spec.replicas));
    match s.secrets.get(&(secret_ns.clone(), secret.clone())) {
        None | Some(None) => out.push(bad(
            Severity::Error,
            &subj,
            format!("TLS secret {secret_ns}/{secret} is missing"),
            format!("create it in namespace {secret_ns} (the gateway reads credentialName from its own namespace)"),
        )),
        Some(Some(cert)) => {
            let uncovered: Vec<&String> =
                hosts.iter().filter(|h| !cert.dns_names.iter().any(|p| covers(p, h))).collect();
            if uncovered.is_empty() {
                out.push(ok(&subj, format!("certificate {secret_ns}/{secret} covers {} host(s)", hosts.len())));
            } else {
                out.push(bad(
                    Severity::Error,
                    &subj,
                    format!(
                        "certificate {secret_ns}/{secret} does not cover {}",
                        uncovered.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    format!(
                        "reissue it with these names or a wildcard such as *.{}",
                        ext.hosts.main.split_once('.').map_or(ext.hosts.main.as_str(), |(_, r)| r)
                    ),
                ));
            }
        }
    }
    let mesh_hosts = b.spec.istio.as_ref().and_then(|i| i.gateway.as_ref()).is_some_and(|g| g.mesh_internal_hosts());
    let ambient = b.spec.istio.as_ref().is_some_and(|i| i.dataplane_mode() == DataplaneMode::Ambient);
    if mesh_hosts && !ambient && s.mesh_dns.capture_off() {
        out.push(bad(
            Severity::Warning,
            &subj,
            "per-broker ServiceEntries need DNS capture with address auto-allocation, which is off on this Istio version",
            "set proxyMetadata ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE to \"true\", or istio.gateway.meshInternalHosts: false",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_one_label_only() {
        assert!(covers("*.example.com", "pb0-pulsar.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(covers("pulsar.example.com", "pulsar.example.com"));
        assert!(!covers("*.pulsar.example.com", "pulsar.example.com"));
    }

    fn broker() -> PulsarBroker {
        serde_norway::from_str(
            "apiVersion: pulsar.streamnative.io/v1alpha1\nkind: PulsarBroker\nmetadata: {name: pc, namespace: pulsar}\nspec:\n  replicas: 2\n  zkServers: pc-zk:2181\n  config: {advertisedDomain: pulsar.example.com, serviceURLGenerationPolicy: OrdinalPrefix}\n  istio: {enabled: true, gateway: {tls: {certSecretName: gw-tls}}}\n",
        )
        .unwrap()
    }

    #[test]
    fn in_cluster_endpoints_must_be_in_the_cluster_domain() {
        let mut b = broker();
        let url = "http://pc-broker.pulsar.svc.cluster.local:8080";
        b.status = Some(magnetar_api::status::ComponentStatus {
            service_endpoints: Some(magnetar_api::status::ServiceEndpoints {
                cluster: magnetar_api::status::ClusterEndpoints { web_service_url: url.into(), ..Default::default() },
                ..Default::default()
            }),
            ..Default::default()
        });
        let s = Snapshot { brokers: vec![b.clone()], ..Default::default() };
        assert!(!check(&s).iter().any(|f| f.message.contains("cluster DNS domain")));
        let s = Snapshot { brokers: vec![b], cluster_domain: "k8s.example.com".into(), ..Default::default() };
        let f = check(&s);
        let f = f.iter().find(|f| f.message.contains("not in the cluster DNS domain")).expect("finding");
        assert!(f.fix.contains("--cluster-domain k8s.example.com"), "{}", f.fix);
    }

    #[test]
    fn certificate_must_cover_every_broker_host() {
        let mut s = Snapshot { brokers: vec![broker()], ..Default::default() };
        s.secrets.insert(
            ("istio-system".into(), "gw-tls".into()),
            Some(CertInfo { dns_names: vec!["pulsar.example.com".into(), "pb0-pulsar.example.com".into()] }),
        );
        let f = check(&s);
        let cert = f.iter().find(|f| f.message.contains("does not cover")).expect("finding");
        assert_eq!(cert.severity, Severity::Error);
        assert!(cert.message.ends_with("pb1-pulsar.example.com"), "{}", cert.message);
    }

    #[test]
    fn exposure_without_pulsar_authentication_is_a_warning() {
        let warned = |b: PulsarBroker| {
            check(&Snapshot { brokers: vec![b], ..Default::default() })
                .into_iter()
                .any(|f| f.severity == Severity::Warning && f.message.contains("Pulsar's authentication off"))
        };
        assert!(warned(broker()));
        let mut with_auth = broker();
        with_auth.spec.config.as_mut().unwrap().custom.insert("authenticationEnabled".into(), "true".into());
        assert!(!warned(with_auth));
        let mut inside = broker();
        inside.spec.istio.as_mut().unwrap().gateway = None;
        assert!(!warned(inside));
    }

    /// Gateway API: CRDs absent is an error; routes no implementation has
    /// accepted yet a warning naming the route; all accepted is fine. The
    /// ingress gateway's pods are no longer looked for.
    #[test]
    fn gateway_api_routes_are_judged_by_their_conditions() {
        let mut b = broker();
        let gw = b.spec.istio.as_mut().unwrap().gateway.as_mut().unwrap();
        gw.gateway_api =
            Some(magnetar_api::istio::GatewayApi { gateway_class_name: Some("istio".into()), ..Default::default() });
        let key = (b.namespace().unwrap_or_default(), b.name_any());
        let findings = |routes: Option<Vec<serde_json::Value>>| {
            let mut s = Snapshot { brokers: vec![b.clone()], ..Default::default() };
            s.routes.insert(key.clone(), routes);
            check(&s)
        };
        let f = findings(None);
        assert!(
            f.iter().any(|f| f.severity == Severity::Error && f.message.contains("does not serve the Gateway API"))
        );
        assert!(!f.iter().any(|f| f.message.contains("ingress gateway pod")), "no pods to look for");
        let route = |status: serde_json::Value| serde_json::json!({"kind": "TLSRoute", "metadata": {"name": "pc-broker-0-pulsar"}, "status": status});
        let f = findings(Some(vec![route(serde_json::json!({}))]));
        assert!(f.iter().any(|f| f.severity == Severity::Warning && f.message.contains("TLSRoute/pc-broker-0-pulsar")));
        let accepted = serde_json::json!({"parents": [{"parentRef": {"name": "gw"},
            "conditions": [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "True"}]}]});
        let f = findings(Some(vec![route(accepted)]));
        assert!(f.iter().any(|f| f.severity == Severity::Ok && f.message.contains("accepted all 1 route")), "{f:?}");
    }

    #[test]
    fn missing_gateway_pods_and_secret_are_errors_with_fixes() {
        let s = Snapshot { brokers: vec![broker()], ..Default::default() };
        let f = check(&s);
        assert!(f.iter().any(|f| f.severity == Severity::Error
            && f.message.contains("no ingress gateway pod in istio-system matches istio=ingressgateway")));
        assert!(
            f.iter()
                .any(|f| f.message == "TLS secret istio-system/gw-tls is missing" && f.fix.contains("istio-system"))
        );
    }
}
