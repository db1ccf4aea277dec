//! Checks the schema cannot do, made against the live cluster before
//! anything is applied: a `zkServers` that names no ZooKeeper Service (the
//! spec is invalid: nothing is applied), and the prerequisites of external
//! access, a gateway selector that matches no pod and a TLS secret missing
//! from the gateway's namespace (only the external part waits). Each
//! failure names the field and the fix.

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::ListParams;
use kube::{Api, Client};

use magnetar_api::istio::GatewaySpec;
use magnetar_desired::FieldError;
use magnetar_desired::names::Component;

use crate::prerequisites::Missing;

/// A Service a `zkServers` entry refers to, inside the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    pub name: String,
    pub namespace: String,
}

/// The in-cluster Services named by a `host:port[,host:port]` list. Hosts
/// outside the cluster (IP addresses, other domains) are not checked.
pub fn zk_service_refs(zk_servers: &str, own_namespace: &str) -> Vec<ServiceRef> {
    let mut out = Vec::new();
    for entry in zk_servers.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let host = match entry.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => entry,
        };
        if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            continue;
        }
        let host = host.trim_end_matches('.');
        let labels: Vec<&str> = host.split('.').collect();
        let (name, ns) = match labels.as_slice() {
            [name] => (*name, own_namespace),
            [name, ns] => (*name, *ns),
            [name, ns, "svc", ..] => (*name, *ns),
            _ => continue,
        };
        let r = ServiceRef { name: name.to_string(), namespace: ns.to_string() };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Checks `zkServers` (at `path`): every in-cluster host must be a Service
/// of a ZooKeeperCluster (`zookeepers`: names of those in `namespace`) or an
/// existing Service.
pub async fn zk_servers(
    client: &Client,
    path: &str,
    zk_servers: &str,
    namespace: &str,
    zookeepers: &[String],
) -> Result<Option<FieldError>, kube::Error> {
    for r in zk_service_refs(zk_servers, namespace) {
        let ours = r.namespace == namespace
            && zookeepers.iter().any(|zk| {
                r.name == Component::ZooKeeper.object_name(zk) || r.name == Component::ZooKeeper.headless_name(zk)
            });
        if ours {
            continue;
        }
        let api: Api<Service> = Api::namespaced(client.clone(), &r.namespace);
        if api.get_metadata_opt(&r.name).await?.is_some() {
            continue;
        }
        let hint = match zookeepers.first() {
            Some(zk) => format!("for the ZooKeeperCluster {zk} use {}:2181", Component::ZooKeeper.object_name(zk)),
            None => format!(
                "create a ZooKeeperCluster in namespace {namespace} or point zkServers at an existing ZooKeeper Service"
            ),
        };
        return Ok(Some(FieldError {
            path: path.to_string(),
            message: format!(
                "names no ZooKeeper Service: Service {} does not exist in namespace {}; {hint}",
                r.name, r.namespace
            ),
        }));
    }
    Ok(None)
}

/// The prerequisites of a broker's or proxy's external access that are
/// missing: a pod matching the gateway's selector in the gateway's namespace
/// (when magnetar generates the Gateway) and, in SIMPLE mode, the
/// certificate secret there. Missing ones hold back only the external part
/// (see [`crate::prerequisites`]).
pub async fn gateway(client: &Client, gw: &GatewaySpec, namespace: &str) -> Result<Vec<Missing>, kube::Error> {
    let mut missing = Vec::new();
    for need in magnetar_desired::prerequisites::of(gw, namespace) {
        let there = match &need {
            Missing::GatewayPods { namespace, selector } => {
                let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
                !pods.list_metadata(&ListParams::default().labels(selector).limit(1)).await?.items.is_empty()
            }
            Missing::TlsSecret { namespace, name } => {
                let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
                secrets.get_metadata_opt(name).await?.is_some()
            }
            // prerequisites::of never lists it (the operator's discovery decides).
            Missing::GatewayApiCrds => true,
        };
        if !there {
            missing.push(need);
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, ns: &str) -> ServiceRef {
        ServiceRef { name: name.into(), namespace: ns.into() }
    }

    #[test]
    fn parses_zk_servers() {
        assert_eq!(zk_service_refs("private-cloud-zk:2181", "pulsar"), [r("private-cloud-zk", "pulsar")]);
        assert_eq!(
            zk_service_refs("a.other:2181, b.ns2.svc.cluster.local:2181,a.other:2182", "pulsar"),
            [r("a", "other"), r("b", "ns2")]
        );
        assert!(zk_service_refs("10.0.0.1:2181,zk.example.com:2181,[::1]:2181", "p").is_empty());
        assert_eq!(zk_service_refs("zk", "p"), [r("zk", "p")]);
        assert!(zk_service_refs("", "p").is_empty());
        assert!(zk_service_refs(",,:", "p").is_empty());
    }
}
