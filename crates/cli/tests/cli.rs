//! The `magnetar` binary as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

fn magnetar(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_magnetar"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

const COMPAT: &str = "../../../shared/compat/streamnative-ksn-mtls-passthrough.yaml";

#[test]
fn render_json_is_one_v1_list_and_skips_foreign_kinds() {
    let (code, out, err) = magnetar(&["render", "-f", COMPAT, "-o", "json"], None);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["kind"] == "Gateway"));
    assert!(items.iter().all(|i| i["kind"] != "Certificate" && i["kind"] != "Secret"));
    assert!(err.contains("skipped Certificate/generic-tls (cert-manager.io/v1)"), "{err}");
    assert!(err.contains("skipped Secret/jks-password-secret (v1)"), "{err}");
}

#[test]
fn render_is_deterministic_and_reads_stdin() {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMPAT)).unwrap();
    let (c1, a, _) = magnetar(&["render", "-f", COMPAT], None);
    let (c2, b, _) = magnetar(&["render", "-f", "-"], Some(&text));
    assert_eq!((c1, c2), (0, 0));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn invalid_input_prints_nothing_on_stdout_and_fails() {
    let bad = |name: &str| {
        format!(
            "apiVersion: pulsar.streamnative.io/v1alpha1\nkind: PulsarBroker\nmetadata: {{name: {name}, namespace: x}}\nspec:\n  image: i\n  zkServers: zk:2181\n  replicas: 0\n"
        )
    };
    let (code, out, err) =
        magnetar(&["render", "-f", "-", "-o", "json"], Some(&format!("{}---\n{}", bad("b"), bad("c"))));
    assert_ne!(code, 0);
    assert!(out.is_empty(), "stdout must stay empty: {out}");
    assert!(err.contains("<stdin>: document 1 (PulsarBroker/b): spec.replicas: must be at least 1, got 0"), "{err}");
    assert!(err.contains("<stdin>: document 2 (PulsarBroker/c): spec.replicas: must be at least 1, got 0"), "{err}");
}

#[test]
fn the_same_resource_twice_is_refused() {
    let doc = "apiVersion: pulsar.streamnative.io/v1alpha1\nkind: PulsarBroker\nmetadata: {name: b, namespace: x}\nspec:\n  image: i\n  zkServers: zk:2181\n";
    let (code, out, err) = magnetar(&["render", "-f", "-"], Some(&format!("{doc}---\n{doc}")));
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(
        err.contains("<stdin>: document 2 (PulsarBroker/b): metadata.name: duplicate: <stdin> document 1 already defines PulsarBroker/b in namespace x; remove one"),
        "{err}"
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let (code, out, err) = magnetar(&["render", "-f", "does-not-exist.yaml"], None);
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(err.contains("reading does-not-exist.yaml"), "{err}");
}

#[test]
fn crds_prints_all_five_kinds() {
    let (code, out, _) = magnetar(&["crds"], None);
    assert_eq!(code, 0);
    for kind in ["PulsarCoordinator", "ZooKeeperCluster", "BookKeeperCluster", "PulsarBroker", "PulsarProxy"] {
        assert!(out.contains(&format!("kind: {kind}\n")), "{kind}");
    }
}
