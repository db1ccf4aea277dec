//! Names and labels of generated objects (SPEC 3).

use std::collections::BTreeMap;

use magnetar_api::MainKind;
use magnetar_api::labels::*;

/// The parts of a Pulsar cluster, each with its own pods and identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    ZooKeeper,
    BookKeeper,
    AutoRecovery,
    Broker,
    Proxy,
    Toolset,
}

impl Component {
    /// The main kind whose reconcile builds this component.
    pub fn main_kind(self) -> MainKind {
        match self {
            Self::ZooKeeper => MainKind::ZooKeeper,
            Self::BookKeeper | Self::AutoRecovery => MainKind::BookKeeper,
            Self::Broker => MainKind::Broker,
            Self::Proxy => MainKind::Proxy,
            Self::Toolset => MainKind::Coordinator,
        }
    }

    /// `app.kubernetes.io/name`: the main kind's.
    pub fn app_name(self) -> &'static str {
        self.main_kind().app_name()
    }

    /// `app.kubernetes.io/component`.
    pub fn component_label(self) -> &'static str {
        match self {
            Self::ZooKeeper => "zookeeper",
            Self::BookKeeper => "bookie",
            Self::AutoRecovery => "autorecovery",
            Self::Broker => "broker",
            Self::Proxy => "proxy",
            Self::Toolset => "toolset",
        }
    }

    /// Suffix of object names: `<n>-<suffix>`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::ZooKeeper => "zk",
            Self::BookKeeper => "bk",
            Self::AutoRecovery => "bk-auto-recovery",
            Self::Broker => "broker",
            Self::Proxy => "proxy",
            Self::Toolset => "toolset",
        }
    }

    /// `<instance>-<suffix>`: the workload, main Service, ConfigMap, PDB,
    /// ServiceAccount and Istio security objects share this name.
    pub fn object_name(self, instance: &str) -> String {
        [instance, "-", self.suffix()].concat()
    }

    /// `<instance>-<suffix>-headless`.
    pub fn headless_name(self, instance: &str) -> String {
        [instance, "-", self.suffix(), "-headless"].concat()
    }
}

/// Labels every generated object of a component carries.
pub fn labels(component: Component, instance: &str) -> BTreeMap<String, String> {
    let mut l = selector(component, instance);
    l.insert(APP_MANAGED_BY.into(), MANAGED_BY.into());
    l
}

/// Labels that select a component's pods (a subset of [`labels`]; never
/// changes for a running workload, since selectors are immutable).
pub fn selector(component: Component, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (APP_NAME.to_string(), component.app_name().to_string()),
        (APP_INSTANCE.to_string(), instance.to_string()),
        (APP_COMPONENT.to_string(), component.component_label().to_string()),
    ])
}

/// Label selector string of a component's pods (`k=v,k=v`).
pub fn selector_string(component: Component, instance: &str) -> String {
    label_selector(&selector(component, instance))
}

/// Any equality selector as a label selector string (`k=v,k=v`), as the
/// API's `labelSelector` parameter and the scale subresource write it.
pub fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The ServiceAccount a component's pods run as: the user's
/// `pod.serviceAccountName`, or `<instance>-<suffix>` which magnetar creates.
pub fn service_account(component: Component, instance: &str, user: Option<&str>) -> String {
    match user.filter(|s| !s.is_empty()) {
        Some(sa) => sa.to_string(),
        None => component.object_name(instance),
    }
}

/// The Kubernetes cluster DNS domain unless configured otherwise.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// In-cluster DNS name of a Service, `<service>.<namespace>.svc.<domain>`
/// (a pod of a headless Service is `<pod>.` + this). Every in-cluster host
/// magnetar writes (configuration, listeners, Istio hosts, the operator's
/// own connections and status) is built here, so the cluster DNS domain
/// (`BuildContext::cluster_domain`, `--cluster-domain`) reaches all of them.
/// Not to be confused with Istio's trust domain (`istio.trustDomain`,
/// used in principals), which is a separate setting that merely has the
/// same default.
pub fn service_host(service: &str, namespace: &str, cluster_domain: &str) -> String {
    [service, ".", namespace, ".svc.", cluster_domain].concat()
}

/// A cluster DNS domain is one or more lower-case DNS labels
/// (`cluster.local`, `k8s.example.com`); the reason when it is not.
pub fn check_cluster_domain(domain: &str) -> Result<(), String> {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.len() <= 253 && domain.split('.').all(label) {
        Ok(())
    } else {
        Err(format!(
            "{domain:?} is not a cluster DNS domain: give lower-case DNS labels separated by dots, as in the kubelet's --cluster-domain (default cluster.local)"
        ))
    }
}

/// Istio principal of a ServiceAccount.
pub fn principal(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    [trust_domain, "/ns/", namespace, "/sa/", service_account].concat()
}

/// Name of the per-broker Service, VirtualService and ServiceEntry.
pub fn broker_pod_name(instance: &str, ordinal: i32) -> String {
    [instance, "-broker-", &ordinal.to_string()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_joined() {
        assert_eq!(Component::AutoRecovery.object_name("pc"), "pc-bk-auto-recovery");
        assert_eq!(Component::ZooKeeper.headless_name("pc"), "pc-zk-headless");
        assert_eq!(broker_pod_name("pc", 12), "pc-broker-12");
        assert_eq!(principal("td", "ns", "sa"), "td/ns/ns/sa/sa");
        assert_eq!(service_host("b", "ns", "k8s.example.com"), "b.ns.svc.k8s.example.com");
    }

    #[test]
    fn cluster_domains_are_dns_names() {
        for ok in ["cluster.local", "k8s", "a-1.example.com"] {
            assert!(check_cluster_domain(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Cluster.Local", "a..b", "-a.b", "a.b.", "a b"] {
            assert!(check_cluster_domain(bad).is_err(), "{bad:?}");
        }
    }
}
