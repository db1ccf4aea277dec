//! Names and labels of generated objects (SPEC 3).

use std::collections::BTreeMap;

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
    /// `app.kubernetes.io/name`.
    pub fn app_name(self) -> &'static str {
        match self {
            Self::ZooKeeper => "zookeeper",
            Self::BookKeeper | Self::AutoRecovery => "bookkeeper",
            Self::Broker => "pulsar-broker",
            Self::Proxy => "pulsar-proxy",
            Self::Toolset => "pulsar-toolset",
        }
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
        format!("{instance}-{}", self.suffix())
    }

    /// `<instance>-<suffix>-headless`.
    pub fn headless_name(self, instance: &str) -> String {
        format!("{instance}-{}-headless", self.suffix())
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

/// Label selector string for the scale subresource (`k=v,k=v`).
pub fn selector_string(component: Component, instance: &str) -> String {
    selector(component, instance).into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The ServiceAccount a component's pods run as: the user's
/// `pod.serviceAccountName`, or `<instance>-<suffix>` which magnetar creates.
pub fn service_account(component: Component, instance: &str, user: Option<&str>) -> String {
    match user.filter(|s| !s.is_empty()) {
        Some(sa) => sa.to_string(),
        None => component.object_name(instance),
    }
}

/// Istio principal of a ServiceAccount.
pub fn principal(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    format!("{trust_domain}/ns/{namespace}/sa/{service_account}")
}

/// Name of the per-broker Service, VirtualService and ServiceEntry.
pub fn broker_pod_name(instance: &str, ordinal: i32) -> String {
    format!("{instance}-broker-{ordinal}")
}
