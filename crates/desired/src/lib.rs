//! The pure build step of magnetar: validate a resource, then build every
//! Kubernetes and Istio object it implies. No I/O, no async: the operator and
//! `magnetar render` both call this, so what render prints is what the
//! operator applies.
//!
//! Pipeline per component: [`validate`] (a validated view: the resource,
//! its listeners, its compiled customization) → workloads ([`components`]) +
//! mesh objects ([`istio`]) → [`customize`] (merge patches) → [`object::sort`].
//! `build_*` runs all of it; `*_objects` starts from a view the caller
//! already validated (the operator, which also reads the view's gateway).

pub mod cluster;
pub mod components;
pub mod context;
pub mod customize;
pub mod endpoints;
pub mod error;
pub mod gateway_api;
pub mod hosts;
pub mod istio;
pub mod kinds;
pub mod listeners;
pub mod mesh;
pub mod names;
pub mod object;
pub mod paths;
pub mod ports;
pub mod prerequisites;
pub mod propagate;
pub mod render;
pub mod schema;
pub mod security;
pub mod validate;

pub use context::{BuildContext, OperatorIdentity, Owner, Peer};
pub use error::{FieldError, Invalid};
pub use object::Object;

use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};
use validate::{ValidBookKeeper, ValidBroker, ValidCoordinator, ValidProxy, ValidZooKeeper};

/// Builds every object of a ZooKeeperCluster.
pub fn build_zookeeper(zk: &ZooKeeperCluster, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    Ok(zookeeper_objects(&validate::zookeeper(zk)?, ctx))
}

/// Every object of a validated ZooKeeperCluster.
pub fn zookeeper_objects(valid: &ValidZooKeeper, ctx: &BuildContext) -> Vec<Object> {
    let owner = Owner::of(valid.resource).with_labels(&valid.resource.spec.labels);
    let mut out = components::zookeeper::build(valid.resource, &owner, ctx);
    out.extend(istio::zookeeper(valid.resource, &owner, ctx));
    finish(out, &valid.patches)
}

/// Builds every object of a BookKeeperCluster (bookies and auto-recovery).
pub fn build_bookkeeper(bk: &BookKeeperCluster, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    Ok(bookkeeper_objects(&validate::bookkeeper(bk)?, ctx))
}

/// Every object of a validated BookKeeperCluster.
pub fn bookkeeper_objects(valid: &ValidBookKeeper, ctx: &BuildContext) -> Vec<Object> {
    let owner = Owner::of(valid.resource).with_labels(&valid.resource.spec.labels);
    let mut out = components::bookkeeper::build(valid.resource, &owner, ctx);
    out.extend(istio::bookkeeper(valid.resource, &owner, ctx));
    finish(out, &valid.patches)
}

/// Builds every object of a PulsarBroker, external access included.
pub fn build_broker(broker: &PulsarBroker, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    Ok(broker_objects(&validate::broker(broker)?, ctx))
}

/// Every object of a validated PulsarBroker.
pub fn broker_objects(valid: &ValidBroker, ctx: &BuildContext) -> Vec<Object> {
    let owner = Owner::of(valid.resource).with_labels(&valid.resource.spec.labels);
    let mut out = components::broker::build(valid, &owner, ctx);
    out.extend(istio::broker(valid, &owner, ctx));
    finish(out, &valid.patches)
}

/// Builds every object of a PulsarProxy.
pub fn build_proxy(proxy: &PulsarProxy, ctx: &BuildContext) -> Result<Vec<Object>, Invalid> {
    Ok(proxy_objects(&validate::proxy(proxy)?, ctx))
}

/// Every object of a validated PulsarProxy.
pub fn proxy_objects(valid: &ValidProxy, ctx: &BuildContext) -> Vec<Object> {
    let owner = Owner::of(valid.resource).with_labels(&valid.resource.spec.labels);
    let mut out = components::proxy::build(valid, &owner, ctx);
    out.extend(istio::proxy(valid, &owner, ctx));
    finish(out, &valid.patches)
}

/// Builds the coordinator's own objects (the toolset). `brokers` are the
/// brokers it manages: the toolset's client.conf points at the first.
pub fn build_coordinator(
    coordinator: &PulsarCoordinator,
    brokers: &[&PulsarBroker],
    ctx: &BuildContext,
) -> Result<Vec<Object>, Invalid> {
    Ok(coordinator_objects(&validate::coordinator(coordinator)?, brokers, ctx))
}

/// The objects of a validated PulsarCoordinator.
pub fn coordinator_objects(valid: &ValidCoordinator, brokers: &[&PulsarBroker], ctx: &BuildContext) -> Vec<Object> {
    let owner = Owner::of(valid.resource);
    let out = components::toolset::build(valid.resource, brokers, &owner, ctx);
    finish(out, &valid.patches)
}

fn finish(mut out: Vec<Object>, patches: &customize::Patches) -> Vec<Object> {
    patches.apply(&mut out);
    object::sort(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::test_util::resource;

    /// `spec.labels` reach every object built for the resource, Istio's
    /// included, but not its pods (`pod.labels` are theirs); magnetar's
    /// keys are refused, as is a key the API server would refuse.
    #[test]
    fn spec_labels_go_on_every_object_but_not_the_pods() {
        let b: PulsarBroker = resource(
            "pc",
            "  image: img\n  zkServers: zk:2181\n  labels: {team: streams, example.com/cost-center: \"42\"}\n  istio: {enabled: true}\n",
        );
        let objects = build_broker(&b, &BuildContext::default()).unwrap();
        assert!(objects.iter().any(|o| o.kind == "AuthorizationPolicy"));
        for o in &objects {
            let labels = &o.value["metadata"]["labels"];
            assert_eq!(labels["team"], "streams", "{} {}", o.kind, o.name);
            assert_eq!(labels["example.com/cost-center"], "42", "{} {}", o.kind, o.name);
            assert_eq!(labels["app.kubernetes.io/managed-by"], "magnetar", "{} {}", o.kind, o.name);
        }
        let sts = objects.iter().find(|o| o.kind == "StatefulSet").unwrap();
        assert!(sts.value["spec"]["template"]["metadata"]["labels"].get("team").is_none());

        let refused = |labels: &str| {
            let b: PulsarBroker = resource("pc", &format!("  image: img\n  zkServers: zk:2181\n  labels: {labels}\n"));
            build_broker(&b, &BuildContext::default()).unwrap_err().to_string()
        };
        let e = refused("{app.kubernetes.io/instance: other}");
        assert!(e.contains("spec.labels.app.kubernetes.io/instance: is a label magnetar sets"), "{e}");
        let e = refused("{\"-bad\": x}");
        assert!(e.contains("spec.labels.-bad: \"-bad\" is not a label key"), "{e}");
        let e = refused("{ok: \"has space\"}");
        assert!(e.contains("spec.labels.ok: \"has space\" is not a label value"), "{e}");
    }
}
