//! The five kinds magnetar reconciles, in one table: kind, API version, app
//! name and rolling rank. Everything else that names a main kind (render,
//! the operator's watches, the doctor) reads it from here.

/// One of the five kinds magnetar reconciles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MainKind {
    Coordinator,
    ZooKeeper,
    BookKeeper,
    Broker,
    Proxy,
}

impl MainKind {
    /// In the rolling order of SPEC 4.3 (coordinator first: it rolls nothing).
    pub const ALL: [MainKind; 5] = [Self::Coordinator, Self::ZooKeeper, Self::BookKeeper, Self::Broker, Self::Proxy];

    /// `kind` (`PulsarBroker`, ...): the types' `#[kube(kind)]`, which a
    /// test keeps equal.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Coordinator => "PulsarCoordinator",
            Self::ZooKeeper => "ZooKeeperCluster",
            Self::BookKeeper => "BookKeeperCluster",
            Self::Broker => "PulsarBroker",
            Self::Proxy => "PulsarProxy",
        }
    }

    /// `apiVersion` (`pulsar.streamnative.io/v1alpha1`, ...).
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Coordinator => "k8s.streamnative.io/v1alpha1",
            Self::ZooKeeper => "zookeeper.streamnative.io/v1alpha1",
            Self::BookKeeper => "bookkeeper.streamnative.io/v1alpha1",
            Self::Broker | Self::Proxy => "pulsar.streamnative.io/v1alpha1",
        }
    }

    /// `app.kubernetes.io/name` of the objects built for this kind.
    pub fn app_name(self) -> &'static str {
        match self {
            Self::Coordinator => "pulsar-toolset",
            Self::ZooKeeper => "zookeeper",
            Self::BookKeeper => "bookkeeper",
            Self::Broker => "pulsar-broker",
            Self::Proxy => "pulsar-proxy",
        }
    }

    /// Rolling order of SPEC 4.3.
    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.kind() == kind)
    }

    /// The kind of a document with this `apiVersion` and `kind`.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        Self::from_kind(kind).filter(|k| k.api_version() == api_version)
    }

    /// The kind whose objects carry `app.kubernetes.io/name: <app>`.
    pub fn from_app_name(app: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.app_name() == app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_meta<K: kube::Resource<DynamicType = ()>>() -> (String, String) {
        (K::api_version(&()).into_owned(), K::kind(&()).into_owned())
    }

    #[test]
    fn the_table_matches_the_types() {
        use crate::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};
        let types = [
            type_meta::<PulsarCoordinator>(),
            type_meta::<ZooKeeperCluster>(),
            type_meta::<BookKeeperCluster>(),
            type_meta::<PulsarBroker>(),
            type_meta::<PulsarProxy>(),
        ];
        for (k, (api_version, kind)) in MainKind::ALL.into_iter().zip(types) {
            assert_eq!((k.api_version(), k.kind()), (api_version.as_str(), kind.as_str()));
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in MainKind::ALL {
            assert_eq!(MainKind::from_kind(k.kind()), Some(k));
            assert_eq!(MainKind::from_type(k.api_version(), k.kind()), Some(k));
            assert_eq!(MainKind::from_app_name(k.app_name()), Some(k));
        }
        assert_eq!(MainKind::Broker.kind(), "PulsarBroker");
        assert_eq!(MainKind::Broker.api_version(), "pulsar.streamnative.io/v1alpha1");
        assert_eq!(MainKind::Coordinator.api_version(), "k8s.streamnative.io/v1alpha1");
        assert_eq!(MainKind::from_type("pulsar.streamnative.io/v1", "PulsarBroker"), None);
        let ranks: Vec<u8> = MainKind::ALL.iter().map(|k| k.rank()).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
    }
}
