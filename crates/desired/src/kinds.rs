//! Every kind of object the desired state can hold, in one table: where it
//! lives in the API and where it goes in the apply order (SPEC 4.1). The
//! operator watches, applies and prunes exactly these, and
//! deploy/operator/rbac.yaml grants exactly these.

use kube::core::{ApiResource, GroupVersionKind};

/// When a kind is applied, and when its stale objects are deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Identities, configuration, Services and the Istio security objects:
    /// applied first, and their stale objects deleted before any workload
    /// changes (a DestinationRule is gone before a pod moves to ambient,
    /// SPEC 4.5).
    Foundation,
    /// Workloads, their autoscalers and routing.
    Workloads,
}

/// A kind of generated object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildKind {
    pub group: &'static str,
    /// Version used to list and watch (Istio kinds: replaced by discovery).
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// Place in the apply order; kinds of one rank go out together.
    pub rank: u8,
}

impl ChildKind {
    pub fn is_istio(&self) -> bool {
        is_istio_group(self.group)
    }

    /// A Gateway API kind (present only where its CRDs are installed).
    pub fn is_gateway_api(&self) -> bool {
        self.group == GATEWAY_API
    }

    /// A prometheus-operator kind (present only where its CRDs are installed).
    pub fn is_monitoring(&self) -> bool {
        self.group == MONITORING
    }

    pub fn phase(&self) -> Phase {
        if self.rank <= LAST_FOUNDATION_RANK { Phase::Foundation } else { Phase::Workloads }
    }

    /// The resource at `version` (or the kind's own version).
    pub fn resource(&self, version: Option<&str>) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, version.unwrap_or(self.version), self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    rank: u8,
) -> ChildKind {
    ChildKind { group, version, kind, plural, rank }
}

pub const SECURITY_ISTIO: &str = "security.istio.io";
pub const NETWORKING_ISTIO: &str = "networking.istio.io";
pub const GATEWAY_API: &str = "gateway.networking.k8s.io";
pub const MONITORING: &str = "monitoring.coreos.com";

/// Rank of the last [`Phase::Foundation`] kind (DestinationRule).
const LAST_FOUNDATION_RANK: u8 = 6;

/// Kubernetes kinds.
pub const CORE: [ChildKind; 7] = [
    k("", "v1", "ServiceAccount", "serviceaccounts", 0),
    k("", "v1", "ConfigMap", "configmaps", 1),
    k("", "v1", "Service", "services", 2),
    k("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", 3),
    k("apps", "v1", "StatefulSet", "statefulsets", 7),
    k("apps", "v1", "Deployment", "deployments", 8),
    // After its StatefulSet, which it scales.
    k("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", 9),
];

/// Istio kinds.
pub const ISTIO: [ChildKind; 6] = [
    k(SECURITY_ISTIO, "v1", "PeerAuthentication", "peerauthentications", 4),
    k(SECURITY_ISTIO, "v1", "AuthorizationPolicy", "authorizationpolicies", 5),
    k(NETWORKING_ISTIO, "v1", "DestinationRule", "destinationrules", LAST_FOUNDATION_RANK),
    k(NETWORKING_ISTIO, "v1", "Gateway", "gateways", 11),
    k(NETWORKING_ISTIO, "v1", "VirtualService", "virtualservices", 12),
    k(NETWORKING_ISTIO, "v1", "ServiceEntry", "serviceentries", 10),
];

/// Gateway API kinds (standard channel, v1: TLSRoute since Gateway API
/// 1.5), ranked with their Istio counterparts: the Gateway with Istio's
/// Gateway, the routes with the VirtualServices.
pub const GATEWAY_API_KINDS: [ChildKind; 3] = [
    k(GATEWAY_API, "v1", "Gateway", "gateways", 11),
    k(GATEWAY_API, "v1", "TLSRoute", "tlsroutes", 12),
    k(GATEWAY_API, "v1", "HTTPRoute", "httproutes", 12),
];

/// prometheus-operator's kinds, applied last (they only watch).
pub const MONITORING_KINDS: [ChildKind; 1] = [k(MONITORING, "v1", "PodMonitor", "podmonitors", 13)];

/// Every kind, Kubernetes' first.
pub fn all() -> impl Iterator<Item = ChildKind> {
    CORE.into_iter().chain(ISTIO).chain(GATEWAY_API_KINDS).chain(MONITORING_KINDS)
}

pub fn is_istio_group(group: &str) -> bool {
    group == SECURITY_ISTIO || group == NETWORKING_ISTIO
}

/// The child kind of `kind` in `group`, if the desired state can hold it.
pub fn child(group: &str, kind: &str) -> Option<ChildKind> {
    all().find(|c| c.group == group && c.kind == kind)
}

/// Rank of a kind in the apply order; a kind not in the table goes last.
/// (Istio's Gateway and the Gateway API's share the name and the rank.)
pub fn apply_rank(kind: &str) -> u8 {
    all().find(|c| c.kind == kind).map_or(u8::MAX, |c| c.rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_and_resolve() {
        assert_eq!(child("apps", "StatefulSet").map(|c| c.plural), Some("statefulsets"));
        assert_eq!(child("networking.istio.io", "VirtualService").map(|c| c.is_istio()), Some(true));
        assert!(child("apps", "DaemonSet").is_none());
        assert_eq!(ISTIO[0].resource(Some("v1beta1")).api_version, "security.istio.io/v1beta1");
        assert_eq!(CORE[0].resource(None).api_version, "v1");
    }

    /// The apply order of SPEC 4.1.
    #[test]
    fn the_apply_order_is_spec_4_1() {
        let mut kinds: Vec<ChildKind> = all().collect();
        kinds.sort_by_key(|c| c.rank);
        let order: Vec<(&str, Phase)> = kinds.iter().map(|c| (c.kind, c.phase())).collect();
        use Phase::*;
        assert_eq!(
            order,
            [
                ("ServiceAccount", Foundation),
                ("ConfigMap", Foundation),
                ("Service", Foundation),
                ("PodDisruptionBudget", Foundation),
                ("PeerAuthentication", Foundation),
                ("AuthorizationPolicy", Foundation),
                ("DestinationRule", Foundation),
                ("StatefulSet", Workloads),
                ("Deployment", Workloads),
                ("HorizontalPodAutoscaler", Workloads),
                ("ServiceEntry", Workloads),
                ("Gateway", Workloads),
                ("Gateway", Workloads),
                ("VirtualService", Workloads),
                ("TLSRoute", Workloads),
                ("HTTPRoute", Workloads),
                ("PodMonitor", Workloads),
            ]
        );
        // One rank per kind, a Gateway API kind sharing its Istio
        // counterpart's: an object is either one or the other.
        let ranks: Vec<u8> = kinds.iter().filter(|c| !c.is_gateway_api()).map(|c| c.rank).collect();
        assert_eq!(ranks, (0..14).collect::<Vec<u8>>());
        assert_eq!(
            GATEWAY_API_KINDS.map(|c| c.rank),
            [apply_rank("Gateway"), apply_rank("VirtualService"), apply_rank("VirtualService")]
        );
        assert_eq!(apply_rank("NoSuchKind"), u8::MAX);
    }
}
