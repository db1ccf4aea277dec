//! Coordinator propagation, pure part: what the coordinator already owns on
//! a component, whether its fields would change the component, and the
//! rolling gate of SPEC 4.3 (ZooKeeper → BookKeeper → brokers → proxies,
//! one kind at a time).

use serde_json::{Map, Value};

use magnetar_desired::propagate::{FIELD_MANAGER, Owned};

/// Leaf paths under `spec` that `manager` owns by server-side apply,
/// read from the object's managedFields (`f:spec` → `f:istio` → `f:mtls` …).
pub fn owned_paths(object: &Value, manager: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let Some(entries) = object["metadata"]["managedFields"].as_array() else { return out };
    for e in entries {
        if e["manager"].as_str() != Some(manager) || e["operation"].as_str() != Some("Apply") {
            continue;
        }
        if let Some(spec) = e["fieldsV1"]["f:spec"].as_object() {
            collect(spec, &mut Vec::new(), &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

fn collect(node: &Map<String, Value>, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut leaf = true;
    for (k, v) in node {
        let Some(name) = k.strip_prefix("f:") else { continue };
        leaf = false;
        prefix.push(name.to_string());
        match v.as_object() {
            Some(child) if child.keys().any(|k| k.starts_with("f:")) => collect(child, prefix, out),
            _ => out.push(prefix.clone()),
        }
        prefix.pop();
    }
    if leaf && !prefix.is_empty() {
        out.push(prefix.clone());
    }
}

/// The coordinator's [`Owned`] flags for a component.
pub fn owned(object: &Value) -> Owned {
    let paths = owned_paths(object, FIELD_MANAGER);
    let has = |p: &[&str]| paths.iter().any(|q| q.iter().map(String::as_str).eq(p.iter().copied()));
    Owned { image: has(&["image"]), mtls_mode: has(&["istio", "mtls", "mode"]) }
}

/// Leaf paths and values of a propagated field set.
pub fn leaves(fields: &Map<String, Value>) -> Vec<(Vec<String>, Value)> {
    let mut out = Vec::new();
    fn walk(m: &Map<String, Value>, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
        for (k, v) in m {
            prefix.push(k.clone());
            match v.as_object() {
                Some(child) if !child.is_empty() => walk(child, prefix, out),
                _ => out.push((prefix.clone(), v.clone())),
            }
            prefix.pop();
        }
    }
    walk(fields, &mut Vec::new(), &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn at<'a>(spec: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(spec, |v, k| &v[k.as_str()])
}

/// What applying the coordinator's fields would do to a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing: same values, same ownership.
    None,
    /// Changes nothing the pods run with (trust domain, mTLS mode, or only
    /// ownership).
    Free,
    /// Changes the pod template: image, revision or data-plane mode.
    Rolling,
}

/// Compares the coordinator's `fields` with the component (as JSON).
pub fn change(component: &Value, fields: &Map<String, Value>) -> Change {
    let spec = &component["spec"];
    let wanted = leaves(fields);
    let owned = owned_paths(component, FIELD_MANAGER);
    let mut result = Change::None;
    for (path, value) in &wanted {
        if at(spec, path) != value {
            let rolling = matches!(
                path.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
                ["image"] | ["istio", "revision"] | ["istio", "dataplaneMode"]
            );
            if rolling {
                return Change::Rolling;
            }
            result = Change::Free;
        }
    }
    let wanted_paths: Vec<&Vec<String>> = wanted.iter().map(|(p, _)| p).collect();
    if owned.iter().collect::<Vec<_>>() != wanted_paths {
        // The patch would take or give up ownership (dropping a field from
        // the patch deletes it, SPEC 1.7).
        if result == Change::None {
            result = Change::Free;
        }
    }
    result
}

/// One component linked to the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Rolling order: ZooKeeper 1, BookKeeper 2, brokers 3, proxies 4.
    pub rank: u8,
    pub change: Change,
    /// Ready, with every replica updated, for its current generation.
    pub settled: bool,
    /// Has pods (a component that runs nothing yet has nothing to roll).
    pub running: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    Apply,
    /// A rolling change waits for the earlier kinds to settle.
    Hold,
}

/// The rolling gate: a rolling change reaches a kind only when every earlier
/// kind is settled and none of them is being changed in this pass.
pub fn plan(members: &[Member]) -> Vec<Decision> {
    let mut ranks: Vec<u8> = members.iter().map(|m| m.rank).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut decisions = vec![Decision::Nothing; members.len()];
    let mut blocked = false;
    for rank in ranks {
        let mut block_next = false;
        for (i, m) in members.iter().enumerate().filter(|(_, m)| m.rank == rank) {
            decisions[i] = match m.change {
                Change::None => Decision::Nothing,
                Change::Rolling if blocked && m.running => Decision::Hold,
                _ => Decision::Apply,
            };
            let rolls = m.change == Change::Rolling && m.running;
            if !m.settled || rolls {
                block_next = true;
            }
        }
        blocked |= block_next;
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn managed(spec_fields: Value) -> Value {
        json!([
            {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:image": {}}}},
            {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": spec_fields}},
        ])
    }

    #[test]
    fn ownership_from_managed_fields() {
        let c = json!({"metadata": {"managedFields": managed(json!({"f:image": {}, "f:istio": {"f:mtls": {"f:mode": {}}, "f:revision": {}}}))}});
        assert_eq!(owned(&c), Owned { image: true, mtls_mode: true });
        assert_eq!(owned_paths(&c, FIELD_MANAGER).len(), 3);
        assert_eq!(owned(&json!({})), Owned::default());
        let only_kubectl = json!({"metadata": {"managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:image": {}}}}]}});
        assert_eq!(owned(&only_kubectl), Owned::default());
    }

    #[test]
    fn change_classification() {
        let fields = |v: Value| v.as_object().cloned().unwrap();
        let c = json!({"spec": {"image": "a:1", "istio": {"revision": "default"}}, "metadata": {"managedFields": managed(json!({"f:istio": {"f:revision": {}}}))}});
        assert_eq!(change(&c, &fields(json!({"istio": {"revision": "default"}}))), Change::None);
        assert_eq!(change(&c, &fields(json!({"istio": {"revision": "default", "trustDomain": "td"}}))), Change::Free);
        assert_eq!(change(&c, &fields(json!({"istio": {"revision": "canary"}}))), Change::Rolling);
        assert_eq!(change(&c, &fields(json!({"image": "a:2", "istio": {"revision": "default"}}))), Change::Rolling);
        // Giving up a field it owns is a change too.
        assert_eq!(change(&c, &Map::new()), Change::Free);
        assert_eq!(change(&json!({"spec": {}}), &Map::new()), Change::None);
    }

    fn m(rank: u8, change: Change, settled: bool, running: bool) -> Member {
        Member { rank, change, settled, running }
    }

    #[test]
    fn rolls_one_kind_at_a_time() {
        use Decision::*;
        let r = Change::Rolling;
        // Everything running and settled: only ZooKeeper rolls now.
        let ms =
            [m(1, r, true, true), m(2, r, true, true), m(3, r, true, true), m(3, r, true, true), m(4, r, true, true)];
        assert_eq!(plan(&ms), [Apply, Hold, Hold, Hold, Hold]);
        // ZooKeeper done and settled: BookKeeper next.
        let ms = [m(1, Change::None, true, true), m(2, r, true, true), m(3, r, true, true)];
        assert_eq!(plan(&ms), [Nothing, Apply, Hold]);
        // ZooKeeper updated but still rolling: nothing else moves.
        let ms = [m(1, Change::None, false, true), m(2, r, true, true)];
        assert_eq!(plan(&ms), [Nothing, Hold]);
        // Free changes are never held.
        let ms = [m(1, r, true, true), m(2, Change::Free, true, true)];
        assert_eq!(plan(&ms), [Apply, Apply]);
    }

    #[test]
    fn components_without_pods_are_not_held() {
        use Decision::*;
        let ms = [
            m(1, Change::Rolling, false, false),
            m(2, Change::Rolling, false, false),
            m(4, Change::Rolling, false, false),
        ];
        assert_eq!(plan(&ms), [Apply, Apply, Apply]);
        assert!(plan(&[]).is_empty());
    }
}
