//! The pure build step of magnetar: validate a resource, then build every
//! Kubernetes and Istio object it implies. No I/O, no async: the operator and
//! `magnetar render` both call this, so what render prints is what the
//! operator applies.
//!
//! Pipeline per component: [`validate`] → workloads ([`components`]) + mesh
//! objects ([`istio`]) → [`customize`] (merge patches) → [`object::sort`].

pub mod cluster;
pub mod components;
pub mod context;
pub mod customize;
pub mod endpoints;
pub mod error;
pub mod hosts;
pub mod istio;
pub mod kinds;
pub mod listeners;
pub mod mesh;
pub mod names;
pub mod object;
pub mod paths;
pub mod ports;
pub mod propagate;
pub mod render;
pub mod schema;
pub mod validate;

pub use context::{BuildContext, OperatorIdentity, Owner, Peer};
pub use error::{FieldError, Invalid};
pub use object::Object;

use magnetar_api::common::Customization;
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};

/// Builds every object of a ZooKeeperCluster.
pub fn build_zookeeper(zk: &ZooKeeperCluster, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    validate::zookeeper(zk)?;
    let owner = Owner::of(zk);
    let mut out = components::zookeeper::build(zk, &owner, ctx);
    out.extend(istio::zookeeper(zk, &owner, ctx));
    finish(out, &zk.spec.customization)
}

/// Builds every object of a BookKeeperCluster (bookies and auto-recovery).
pub fn build_bookkeeper(bk: &BookKeeperCluster, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    validate::bookkeeper(bk)?;
    let owner = Owner::of(bk);
    let mut out = components::bookkeeper::build(bk, &owner, ctx);
    out.extend(istio::bookkeeper(bk, &owner, ctx));
    finish(out, &bk.spec.customization)
}

/// Builds every object of a PulsarBroker, external access included.
pub fn build_broker(broker: &PulsarBroker, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    validate::broker(broker)?;
    let owner = Owner::of(broker);
    let mut out = components::broker::build(broker, &owner, ctx);
    out.extend(istio::broker(broker, &owner, ctx));
    finish(out, &broker.spec.customization)
}

/// Builds every object of a PulsarProxy.
pub fn build_proxy(proxy: &PulsarProxy, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    validate::proxy(proxy)?;
    let owner = Owner::of(proxy);
    let mut out = components::proxy::build(proxy, &owner, ctx);
    out.extend(istio::proxy(proxy, &owner, ctx));
    finish(out, &proxy.spec.customization)
}

/// Builds the coordinator's own objects (the toolset). `brokers` are the
/// brokers it manages: the toolset's client.conf points at the first.
pub fn build_coordinator(
    coordinator: &PulsarCoordinator,
    brokers: &[&PulsarBroker],
    ctx: &BuildContext,
) -> Result<Vec<Object>, Invalid> {
    validate::coordinator(coordinator)?;
    let owner = Owner::of(coordinator);
    let out = components::toolset::build(coordinator, brokers, &owner, ctx);
    finish(out, &[])
}

fn finish(mut out: Vec<Object>, customization: &[Customization]) -> Result<Vec<Object>, Invalid> {
    customize::apply(&mut out, customization)?;
    object::sort(&mut out);
    Ok(out)
}
