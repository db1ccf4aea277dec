//! The CRDs checked in under deploy/crds/ are what the code generates.
//! Regenerate with: cargo run --bin magnetar -- crds --dir deploy/crds

use std::path::Path;

#[test]
fn checked_in_crds_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let crds = magnetar_api::crds();
    let mut expected: Vec<String> = crds.iter().map(magnetar_api::crd_file_name).collect();
    expected.sort();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    present.sort();
    assert_eq!(
        present, expected,
        "deploy/crds has stale or missing files: regenerate with `cargo run --bin magnetar -- crds --dir deploy/crds` (and `--dir charts/magnetar/crds`, which chart.rs keeps equal)"
    );
    for crd in &crds {
        let path = dir.join(magnetar_api::crd_file_name(crd));
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert!(
            on_disk == magnetar_api::crd_yaml(crd),
            "{} is stale: regenerate with `cargo run --bin magnetar -- crds --dir deploy/crds` (and `--dir charts/magnetar/crds`, which chart.rs keeps equal)",
            path.display()
        );
    }
}

#[test]
fn every_kind_has_its_names_and_subresources() {
    let crds = magnetar_api::crds();
    let by_kind = |k: &str| crds.iter().find(|c| c.spec.names.kind == k).unwrap();
    let short = |k: &str| by_kind(k).spec.names.short_names.clone().unwrap_or_default();
    assert_eq!(short("PulsarCoordinator"), ["pcoord"]);
    assert_eq!(short("ZooKeeperCluster"), ["zk"]);
    assert_eq!(short("BookKeeperCluster"), ["bk"]);
    assert_eq!(short("PulsarBroker"), ["pb", "broker"]);
    assert_eq!(short("PulsarProxy"), ["pp", "proxy"]);
    for crd in &crds {
        let v = &crd.spec.versions[0];
        let sub = v.subresources.as_ref().unwrap();
        assert!(sub.status.is_some(), "{} has status", crd.spec.names.kind);
        assert_eq!(sub.scale.is_some(), crd.spec.names.kind != "PulsarCoordinator");
        let cols: Vec<&str> = v.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        if crd.spec.names.kind == "PulsarCoordinator" {
            assert_eq!(cols, ["IMAGE", "DATAPLANE", "READY", "AGE"]);
        } else {
            assert_eq!(cols, ["REPLICAS", "READY REPLICAS", "MESH", "DESIRED IMAGE", "AGE"]);
        }
    }
}

/// `kubectl explain` documents every field: walk the schema and require a
/// description on each property.
#[test]
fn every_field_has_a_description() {
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        if !schema.is_object() {
            return;
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, v) in props {
                let p = format!("{path}.{k}");
                if v["description"].as_str().is_none_or(str::is_empty) {
                    missing.push(p.clone());
                }
                walk(&p, v, missing);
            }
        }
        walk(path, &schema["items"], missing);
        if schema["additionalProperties"].is_object() {
            walk(path, &schema["additionalProperties"], missing);
        }
    }
    let mut missing = Vec::new();
    for crd in magnetar_api::crds() {
        let schema =
            serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap())
                .unwrap();
        walk(&crd.spec.names.kind, &schema["properties"]["spec"], &mut missing);
        walk(&crd.spec.names.kind, &schema["properties"]["status"], &mut missing);
    }
    assert!(missing.is_empty(), "fields without description: {missing:#?}");
}
