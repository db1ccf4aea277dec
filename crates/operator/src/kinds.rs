//! The kinds the build step can produce, and the five kinds magnetar owns.

use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;

/// A kind of generated object: where it lives in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildKind {
    pub group: &'static str,
    /// Version used to list and watch (Istio kinds: replaced by discovery).
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl ChildKind {
    pub fn is_istio(&self) -> bool {
        is_istio_group(self.group)
    }

    /// The resource at `version` (or the kind's own version).
    pub fn resource(&self, version: Option<&str>) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, version.unwrap_or(self.version), self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

const fn k(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str) -> ChildKind {
    ChildKind { group, version, kind, plural }
}

/// Kubernetes kinds the build step produces (watched, applied and pruned;
/// deploy/operator/rbac.yaml grants exactly these).
pub const CORE: [ChildKind; 7] = [
    k("", "v1", "ServiceAccount", "serviceaccounts"),
    k("", "v1", "ConfigMap", "configmaps"),
    k("", "v1", "Service", "services"),
    k("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    k("apps", "v1", "StatefulSet", "statefulsets"),
    k("apps", "v1", "Deployment", "deployments"),
    k("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
];

pub const SECURITY_ISTIO: &str = "security.istio.io";
pub const NETWORKING_ISTIO: &str = "networking.istio.io";

/// Istio kinds the build step produces.
pub const ISTIO: [ChildKind; 6] = [
    k(SECURITY_ISTIO, "v1", "PeerAuthentication", "peerauthentications"),
    k(SECURITY_ISTIO, "v1", "AuthorizationPolicy", "authorizationpolicies"),
    k(NETWORKING_ISTIO, "v1", "DestinationRule", "destinationrules"),
    k(NETWORKING_ISTIO, "v1", "Gateway", "gateways"),
    k(NETWORKING_ISTIO, "v1", "VirtualService", "virtualservices"),
    k(NETWORKING_ISTIO, "v1", "ServiceEntry", "serviceentries"),
];

pub fn is_istio_group(group: &str) -> bool {
    group == SECURITY_ISTIO || group == NETWORKING_ISTIO
}

/// The child kind of `kind` in `group`, if the build step can produce it.
pub fn child(group: &str, kind: &str) -> Option<ChildKind> {
    CORE.iter().chain(ISTIO.iter()).find(|c| c.group == group && c.kind == kind).copied()
}

/// The five kinds magnetar reconciles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MainKind {
    Coordinator,
    ZooKeeper,
    BookKeeper,
    Broker,
    Proxy,
}

impl MainKind {
    pub const ALL: [MainKind; 5] = [Self::Coordinator, Self::ZooKeeper, Self::BookKeeper, Self::Broker, Self::Proxy];

    pub fn kind(self) -> &'static str {
        match self {
            Self::Coordinator => "PulsarCoordinator",
            Self::ZooKeeper => "ZooKeeperCluster",
            Self::BookKeeper => "BookKeeperCluster",
            Self::Broker => "PulsarBroker",
            Self::Proxy => "PulsarProxy",
        }
    }

    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.kind() == kind)
    }

    /// The kind whose objects carry `app.kubernetes.io/name: <app>`.
    pub fn from_app_name(app: &str) -> Option<Self> {
        match app {
            "zookeeper" => Some(Self::ZooKeeper),
            "bookkeeper" => Some(Self::BookKeeper),
            "pulsar-broker" => Some(Self::Broker),
            "pulsar-proxy" => Some(Self::Proxy),
            "pulsar-toolset" => Some(Self::Coordinator),
            _ => None,
        }
    }

    /// Rolling order of SPEC 4.3 (coordinator first: it rolls nothing).
    pub fn rank(self) -> u8 {
        match self {
            Self::Coordinator => 0,
            Self::ZooKeeper => 1,
            Self::BookKeeper => 2,
            Self::Broker => 3,
            Self::Proxy => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in MainKind::ALL {
            assert_eq!(MainKind::from_kind(k.kind()), Some(k));
        }
        assert_eq!(child("apps", "StatefulSet").map(|c| c.plural), Some("statefulsets"));
        assert_eq!(child("networking.istio.io", "VirtualService").map(|c| c.is_istio()), Some(true));
        assert!(child("apps", "DaemonSet").is_none());
        let ar = ISTIO[0].resource(Some("v1beta1"));
        assert_eq!(ar.api_version, "security.istio.io/v1beta1");
        assert_eq!(CORE[0].resource(None).api_version, "v1");
    }

    /// The build step's apply order and the operator's kinds agree: every
    /// kind the operator knows has its own place in the order (an unknown
    /// kind would fall to the last rank and be applied after routing).
    #[test]
    fn every_child_kind_has_an_apply_rank() {
        let fallback = magnetar_build::object::apply_rank("NoSuchKind");
        for c in CORE.iter().chain(ISTIO.iter()) {
            assert!(magnetar_build::object::apply_rank(c.kind) < fallback, "{} has no apply rank", c.kind);
        }
        assert!(
            magnetar_build::object::apply_rank("HorizontalPodAutoscaler")
                > magnetar_build::object::apply_rank("StatefulSet")
        );
    }
}
