//! Deciding, without a request, whether a desired object must be applied.
//!
//! A reconcile that changes nothing must write nothing, yet a managed object
//! someone edited by hand must be put back. Two signals decide:
//!
//! - after every apply the operator remembers the desired object's hash and
//!   a fingerprint of the live object *projected onto the desired object's
//!   shape* (only the fields magnetar sets, as the API server returned them,
//!   defaults and normalisation included). The object is unchanged when the
//!   desired hash is the same and the projection of the live object still
//!   has the same fingerprint; a hand edit of any field magnetar sets changes
//!   the projection, an edit elsewhere is not magnetar's.
//! - with no memory (after a restart) the object is unchanged when its
//!   `magnetar.io/applied-hash` annotation equals the desired hash and every
//!   desired field is present in the live object with the same value. A
//!   field the API server normalises makes this say "changed" once: the
//!   operator then applies (a no-op for the server) and remembers.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Annotation with the hash of the desired object last applied.
pub const APPLIED_HASH: &str = "magnetar.io/applied-hash";

fn digest(v: &Value) -> [u8; 32] {
    let text = serde_json::to_string(v).unwrap_or_default();
    Sha256::digest(text.as_bytes()).into()
}

/// Stable hash of a desired object (16 hex digits).
pub fn desired_hash(desired: &Value) -> String {
    digest(desired).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Adds the applied-hash annotation to a desired object.
pub fn annotate(desired: &mut Value, hash: &str) {
    if !desired.is_object() {
        return;
    }
    // Indexing a JSON object inserts the key; each level is made an object
    // first (indexing any other value but null would panic).
    let meta = &mut desired["metadata"];
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let annotations = &mut meta["annotations"];
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations[APPLIED_HASH] = Value::String(hash.into());
}

/// The applied-hash annotation of a live object.
pub fn live_hash(live: &Value) -> Option<&str> {
    live["metadata"]["annotations"][APPLIED_HASH].as_str()
}

/// `live` reduced to the shape of `desired`: the value of every field the
/// desired object sets (Null where the live object lacks it). Arrays of the
/// same length are projected element by element, others are kept whole.
pub fn project(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => Value::Object(
            d.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "status"))
                .map(|(k, dv)| (k.clone(), project(dv, l.get(k).unwrap_or(&Value::Null))))
                .collect(),
        ),
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            Value::Array(d.iter().zip(l).map(|(dv, lv)| project(dv, lv)).collect())
        }
        (_, l) => l.clone(),
    }
}

/// Fingerprint of the projection of `live` onto `desired`.
pub fn fingerprint(desired: &Value, live: &Value) -> u64 {
    let d = digest(&project(desired, live));
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Go's zero values, which the API server omits from its output.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// Every field of `desired` is in `live` with the same value (absent zero
/// values match: the API server drops them).
pub fn contains(desired: &Value, live: &Value) -> bool {
    first_difference(desired, live).is_none()
}

/// The first path where `desired` is not contained in `live` (for logs).
pub fn first_difference(desired: &Value, live: &Value) -> Option<String> {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "status"))
            .find_map(|(k, dv)| match l.get(k) {
                Some(lv) => first_difference(dv, lv).map(|p| format!(".{k}{p}")),
                None if is_zero(dv) => None,
                None => Some(format!(".{k} (absent)")),
            }),
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            d.iter().zip(l).enumerate().find_map(|(i, (a, b))| first_difference(a, b).map(|p| format!("[{i}]{p}")))
        }
        (Value::Number(a), Value::Number(b)) if a == b || a.as_f64() == b.as_f64() => None,
        (d, Value::Null) if is_zero(d) => None,
        (d, l) if d == l => None,
        _ => Some(format!(": {desired} != {live}")),
    }
}

/// What the operator remembers of an object it applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub hash: String,
    pub fingerprint: u64,
}

/// True when `desired` (already annotated, with hash `hash`) needs no apply
/// given the `live` object and what was remembered of the last apply.
pub fn up_to_date(desired: &Value, hash: &str, live: Option<&Value>, memory: Option<&Applied>) -> bool {
    let Some(live) = live else { return false };
    if live["metadata"]["deletionTimestamp"].is_string() {
        return false;
    }
    match memory {
        Some(m) if m.hash == hash => m.fingerprint == fingerprint(desired, live),
        _ => live_hash(live) == Some(hash) && contains(desired, live),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired() -> Value {
        let mut d = json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"hosts": ["h"], "tcp": [{"match": [{"port": 6651}], "route": [{"destination": {"host": "x", "port": {"number": 6652}}}]}]}
        });
        let h = desired_hash(&d);
        annotate(&mut d, &h);
        d
    }

    fn live_of(d: &Value) -> Value {
        let mut l = d.clone();
        l["metadata"]["resourceVersion"] = json!("12");
        l["metadata"]["managedFields"] = json!([{"manager": "magnetar"}]);
        l["spec"]["tcp"][0]["route"][0]["weight"] = json!(100);
        l["status"] = json!({"x": 1});
        l
    }

    #[test]
    fn unchanged_object_needs_no_apply() {
        let d = desired();
        let h = live_hash(&d).unwrap().to_string();
        let l = live_of(&d);
        let m = Applied { hash: h.clone(), fingerprint: fingerprint(&d, &l) };
        assert!(up_to_date(&d, &h, Some(&l), Some(&m)));
        // After a restart: annotation plus containment.
        assert!(up_to_date(&d, &h, Some(&l), None));
    }

    #[test]
    fn hand_edit_is_detected_with_and_without_memory() {
        let d = desired();
        let h = live_hash(&d).unwrap().to_string();
        let l = live_of(&d);
        let m = Applied { hash: h.clone(), fingerprint: fingerprint(&d, &l) };
        let mut edited = l.clone();
        edited["spec"]["tcp"][0]["route"][0]["destination"]["port"]["number"] = json!(7000);
        assert!(!up_to_date(&d, &h, Some(&edited), Some(&m)));
        assert!(!up_to_date(&d, &h, Some(&edited), None));
        let mut extra = l.clone();
        extra["spec"]["hosts"] = json!(["h", "evil"]);
        assert!(!up_to_date(&d, &h, Some(&extra), Some(&m)));
        // A field magnetar does not set is not its business.
        let mut other = l.clone();
        other["metadata"]["labels"]["user"] = json!("x");
        assert!(up_to_date(&d, &h, Some(&other), Some(&m)));
    }

    #[test]
    fn changed_desired_object_or_missing_live_needs_apply() {
        let d = desired();
        let h = live_hash(&d).unwrap().to_string();
        let l = live_of(&d);
        let m = Applied { hash: "old".into(), fingerprint: fingerprint(&d, &l) };
        assert!(!up_to_date(&d, &h, None, None));
        let mut stale = l.clone();
        stale["metadata"]["annotations"][APPLIED_HASH] = json!("old");
        assert!(!up_to_date(&d, &h, Some(&stale), Some(&m)));
        assert!(!up_to_date(&d, &h, Some(&stale), None));
    }

    #[test]
    fn normalised_values_are_remembered() {
        let mut d = json!({"metadata": {"name": "x"}, "spec": {"cpu": "0.5", "empty": [], "flag": false}});
        let h = desired_hash(&d);
        annotate(&mut d, &h);
        let mut l = d.clone();
        l["spec"] = json!({"cpu": "500m"});
        // Without memory the normalised value looks different...
        assert!(!up_to_date(&d, &h, Some(&l), None));
        // ...and once applied the fingerprint of the response takes over.
        let m = Applied { hash: h.clone(), fingerprint: fingerprint(&d, &l) };
        assert!(up_to_date(&d, &h, Some(&l), Some(&m)));
        // Zero values the server omits still match.
        let mut l2 = d.clone();
        l2["spec"] = json!({"cpu": "0.5"});
        assert!(contains(&d, &l2));
    }

    #[test]
    fn deleting_objects_are_not_up_to_date() {
        let d = desired();
        let h = live_hash(&d).unwrap().to_string();
        let mut l = live_of(&d);
        l["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert!(!up_to_date(&d, &h, Some(&l), None));
    }

    #[test]
    fn projection_never_panics_on_odd_shapes() {
        for (d, l) in [(json!(1), json!({"a": 1})), (json!([1, 2]), json!([1])), (json!({"a": [1]}), json!("x"))] {
            let _ = project(&d, &l);
            let _ = contains(&d, &l);
            let _ = fingerprint(&d, &l);
        }
        let mut v = json!("not an object");
        annotate(&mut v, "h");
        let mut v = json!({"metadata": 3});
        annotate(&mut v, "h");
        assert_eq!(live_hash(&v), Some("h"));
    }
}
