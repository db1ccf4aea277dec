//! Istio objects (SPEC 3.5): typed structs for what magnetar emits, the
//! security objects every enrolled component gets, and the gateway routing
//! of brokers and proxies.

pub mod routing;
pub mod security;
pub mod types;

use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarProxy, ZooKeeperCluster};

use crate::{BuildContext, Object, Owner};

pub fn zookeeper(_res: &ZooKeeperCluster, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}

pub fn bookkeeper(_res: &BookKeeperCluster, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}

pub fn broker(_res: &PulsarBroker, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}

pub fn proxy(_res: &PulsarProxy, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}
