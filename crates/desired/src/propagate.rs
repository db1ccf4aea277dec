//! Coordinator propagation (SPEC 1.7).
//!
//! A PulsarCoordinator writes `image` (where the component leaves it empty),
//! `istio.revision`, `istio.trustDomain`, `istio.dataplaneMode` and, where the
//! component sets none, `istio.mtls.mode` into the spec of every component
//! linked to it. The live operator sends [`fields`] as a server-side apply
//! patch under its own field manager; `render` merges the same fields into
//! its input with [`apply`], so both see the same component.

use serde_json::{Map, Value, json};

use magnetar_api::PulsarCoordinatorSpec;

/// Field manager the coordinator writes component specs with.
pub const FIELD_MANAGER: &str = "magnetar-coordinator";

/// What the coordinator already owns on a component (from its
/// managedFields): a field it owns stays in its patch even though the
/// component is no longer "empty" there — dropping it from the patch would
/// make server-side apply delete it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owned {
    pub image: bool,
    pub mtls_mode: bool,
}

/// The spec fields the coordinator sets on `component` (a component object
/// as JSON). Returns an empty map when it sets nothing.
pub fn fields(coordinator: &PulsarCoordinatorSpec, component: &Value, owned: Owned) -> Map<String, Value> {
    let spec = &component["spec"];
    let mut out = Map::new();
    if let Some(image) = coordinator.image.as_deref().filter(|i| !i.is_empty()) {
        let empty = spec["image"].as_str().is_none_or(str::is_empty);
        if empty || owned.image {
            out.insert("image".into(), json!(image));
        }
    }
    let mut istio = Map::new();
    if let Some(ci) = &coordinator.istio {
        if let Some(r) = &ci.revision {
            istio.insert("revision".into(), json!(r));
        }
        if let Some(t) = ci.trust_domain.as_deref().filter(|t| !t.is_empty()) {
            istio.insert("trustDomain".into(), json!(t));
        }
        if let Some(m) = ci.dataplane_mode {
            istio.insert("dataplaneMode".into(), json!(m.as_str()));
        }
        if let Some(mode) = ci.mtls.as_ref().and_then(|m| m.mode) {
            let unset = spec["istio"]["mtls"]["mode"].is_null();
            if unset || owned.mtls_mode {
                istio.insert("mtls".into(), json!({ "mode": mode }));
            }
        }
    }
    if !istio.is_empty() {
        out.insert("istio".into(), Value::Object(istio));
    }
    out
}

/// Merges the coordinator's fields into a component object in place (render).
pub fn apply(coordinator: &PulsarCoordinatorSpec, component: &mut Value) {
    let f = fields(coordinator, component, Owned::default());
    if f.is_empty() {
        return;
    }
    if !component["spec"].is_object() {
        component["spec"] = json!({});
    }
    json_patch::merge(&mut component["spec"], &Value::Object(f));
}

/// A server-side apply body for the component: identity plus `spec` with
/// only the coordinator's fields.
pub fn apply_body(component: &Value, fields: Map<String, Value>) -> Value {
    json!({
        "apiVersion": component["apiVersion"],
        "kind": component["kind"],
        "metadata": {
            "name": component["metadata"]["name"],
            "namespace": component["metadata"]["namespace"],
        },
        "spec": Value::Object(fields),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator(yaml: &str) -> PulsarCoordinatorSpec {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn image_is_written_only_where_the_component_has_none() {
        let c = coordinator("image: repo/pulsar:1\n");
        let mut with = json!({"spec": {"image": "mine:2"}});
        apply(&c, &mut with);
        assert_eq!(with["spec"]["image"], "mine:2");
        let mut without = json!({"spec": {}});
        apply(&c, &mut without);
        assert_eq!(without["spec"]["image"], "repo/pulsar:1");
    }

    #[test]
    fn mesh_settings_override_the_component() {
        let c = coordinator("istio: {revision: canary, trustDomain: td, dataplaneMode: ambient}\n");
        let mut zk = json!({"spec": {"istio": {"enabled": true, "revision": "default", "dataplaneMode": "sidecar"}}});
        apply(&c, &mut zk);
        assert_eq!(
            zk["spec"]["istio"],
            json!({"enabled": true, "revision": "canary", "trustDomain": "td", "dataplaneMode": "ambient"})
        );
    }

    #[test]
    fn owned_fields_stay_in_the_patch() {
        let c = coordinator("image: repo/pulsar:1\n");
        let zk = json!({"spec": {"image": "repo/pulsar:1"}});
        assert!(fields(&c, &zk, Owned::default()).is_empty());
        assert_eq!(fields(&c, &zk, Owned { image: true, mtls_mode: false })["image"], "repo/pulsar:1");
    }
}
