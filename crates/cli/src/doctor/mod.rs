//! `magnetar doctor`: reads the live cluster, runs [`checks`], prints
//! findings with their fixes. Exits non-zero when any finding is an error.

pub mod checks;

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use magnetar_desired::listeners::BrokerListeners;
use magnetar_desired::prerequisites::{self, Prerequisite};
use magnetar_operator::watch::api_for as api;

use checks::{CertInfo, Severity, Snapshot};

#[derive(clap::Args)]
pub struct Args {
    /// Only this namespace (default: every namespace).
    #[arg(short, long)]
    namespace: Option<String>,
    /// The cluster's DNS domain: the in-cluster names the operator published
    /// must be in it.
    #[arg(long, env = crate::CLUSTER_DOMAIN_ENV, default_value = magnetar_desired::names::DEFAULT_CLUSTER_DOMAIN, value_parser = crate::cluster_domain)]
    cluster_domain: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::try_default().await.context("connecting to the cluster (KUBECONFIG or in-cluster)")?;
    let mut snapshot = snapshot(&client, args.namespace.as_deref()).await?;
    snapshot.cluster_domain = args.cluster_domain;
    let findings = checks::check(&snapshot);
    if findings.is_empty() {
        println!("no magnetar components found");
    }
    for f in &findings {
        let mark = match f.severity {
            Severity::Ok => "ok     ",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR  ",
        };
        println!("{mark} {}: {}", f.subject, f.message);
        if !f.fix.is_empty() {
            println!("        fix: {}", f.fix);
        }
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn snapshot(client: &Client, ns: Option<&str>) -> anyhow::Result<Snapshot> {
    let lp = ListParams::default();
    let mut s = Snapshot {
        zookeepers: api(client, ns).list(&lp).await?.items,
        bookkeepers: api(client, ns).list(&lp).await?.items,
        brokers: api(client, ns).list(&lp).await?.items,
        proxies: api(client, ns).list(&lp).await?.items,
        namespaces: Api::<Namespace>::all(client.clone()).list(&lp).await?.items,
        nodes: Api::<Node>::all(client.clone()).list(&lp).await?.items.len() as i32,
        ..Snapshot::default()
    };
    let managed = ListParams::default().labels("app.kubernetes.io/managed-by=magnetar");
    s.pods = api::<Pod>(client, ns).list(&managed).await?.items;
    let istio_system = "istio-system";
    s.ztunnel = Api::<DaemonSet>::namespaced(client.clone(), istio_system).get_opt("ztunnel").await?;
    if let Some(cm) = Api::<ConfigMap>::namespaced(client.clone(), istio_system).get_opt("istio").await? {
        s.proxy_metadata = proxy_metadata(cm.data.as_ref().and_then(|d| d.get("mesh")).map(String::as_str));
    }
    s.mesh_dns = magnetar_operator::discovery::mesh_dns(client).await?;
    for b in &s.brokers.clone() {
        let Some(ext) = BrokerListeners::of(b).external else { continue };
        let gw = ext.gateway;
        for need in prerequisites::of(gw, &b.namespace().unwrap_or_default()) {
            let Prerequisite::GatewayPods { namespace, selector } = need else { continue };
            if let std::collections::btree_map::Entry::Vacant(slot) = s.gateway_pods.entry((namespace, selector)) {
                let (ns, selector) = slot.key();
                let pods =
                    Api::<Pod>::namespaced(client.clone(), ns).list(&ListParams::default().labels(selector)).await?;
                let running = pods
                    .items
                    .iter()
                    .filter(|p| p.status.as_ref().and_then(|st| st.phase.as_deref()) == Some("Running"))
                    .count();
                slot.insert(running);
            }
        }
        if gw.gateway_api.is_some() {
            let key = (b.namespace().unwrap_or_default(), b.name_any());
            let routes = gateway_routes(client, &key.0, &key.1).await?;
            s.routes.insert(key, routes);
        }
        if let Some((secret_ns, secret)) = prerequisites::certificate_secret(gw, &b.namespace().unwrap_or_default()) {
            let found = Api::<Secret>::namespaced(client.clone(), &secret_ns).get_opt(&secret).await?;
            s.secrets.insert((secret_ns, secret), found.map(|sec| cert_info(&sec)));
        }
    }
    Ok(s)
}

/// The TLSRoutes and HTTPRoutes magnetar made for broker `name`; None when
/// the API server does not serve them.
async fn gateway_routes(client: &Client, ns: &str, name: &str) -> anyhow::Result<Option<Vec<serde_json::Value>>> {
    use magnetar_desired::kinds::GATEWAY_API_KINDS;
    let labels = format!(
        "app.kubernetes.io/managed-by=magnetar,app.kubernetes.io/instance={name},app.kubernetes.io/component=broker"
    );
    let mut out = Vec::new();
    for kind in GATEWAY_API_KINDS.iter().filter(|k| k.kind.ends_with("Route")) {
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource(None));
        match api.list(&ListParams::default().labels(&labels)).await {
            Ok(list) => out.extend(list.items.into_iter().map(|o| {
                let mut v = serde_json::to_value(o).unwrap_or_default();
                v["kind"] = serde_json::Value::String(kind.kind.to_string());
                v
            })),
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(out))
}

/// `defaultConfig.proxyMetadata` from the mesh config YAML.
fn proxy_metadata(mesh: Option<&str>) -> BTreeMap<String, String> {
    let Some(mesh) = mesh else { return BTreeMap::new() };
    let v: serde_json::Value = serde_norway::from_str(mesh).unwrap_or_default();
    v["defaultConfig"]["proxyMetadata"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// DNS names of the certificate in a TLS secret.
fn cert_info(secret: &Secret) -> CertInfo {
    let pem = secret.data.as_ref().and_then(|d| d.get("tls.crt")).map(|b| b.0.clone()).unwrap_or_default();
    let mut dns_names = Vec::new();
    if let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem)
        && let Ok(cert) = pem.parse_x509()
        && let Ok(Some(san)) = cert.subject_alternative_name()
    {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = name {
                dns_names.push(d.to_string());
            }
        }
    }
    CertInfo { dns_names }
}
