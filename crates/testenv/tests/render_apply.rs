//! Against a real API server with magnetar's CRDs and Istio's (full OpenAPI
//! schemas and CEL rules), under strict field validation:
//! - every object `render` produces for the compatibility manifests
//!   (`../shared/compat/*.yaml`) and the examples (`examples/*.yaml`) is
//!   accepted by server-side apply, under Istio 1.24.2's CRDs and under the
//!   newest Istio's;
//! - every manifest of the bad-input table (`testdata/bad-input.yaml`) that
//!   names an `apiserver` message is refused with that message, and every
//!   other one is accepted (only magnetar can judge it).

use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use magnetar_testenv::apply::{Applier, ensure_namespace, server_message};
use magnetar_testenv::crds::yaml_documents;
use magnetar_testenv::{ControlPlane, ISTIO_GUIDE, ISTIO_NEWEST, Options, repo_root, shared};
use serde::Deserialize;
use serde_json::Value;

const MANAGER: &str = "magnetar-test";
const MAGNETAR_GROUPS: [&str; 4] = [
    "k8s.streamnative.io",
    "zookeeper.streamnative.io",
    "bookkeeper.streamnative.io",
    "pulsar.streamnative.io",
];

async fn env(istio: &str) -> &'static ControlPlane {
    shared(Options::default().istio(istio).label(&format!("istio-{istio}"))).await.expect("control plane")
}

fn is_magnetar(doc: &Value) -> bool {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    MAGNETAR_GROUPS.iter().any(|g| api_version.starts_with(&format!("{g}/")))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    files
}

/// The compatibility manifests and the examples.
fn manifests() -> Vec<PathBuf> {
    let root = repo_root().unwrap();
    let compat = root.parent().unwrap().join("shared/compat");
    let mut files = Vec::new();
    if compat.is_dir() {
        files.extend(yaml_files(&compat));
    } else {
        eprintln!("SKIPPED: {} is absent; only examples/ is checked", compat.display());
    }
    let examples = yaml_files(&root.join("examples"));
    if examples.is_empty() {
        eprintln!("note: {} holds no manifest", root.join("examples").display());
    }
    files.extend(examples);
    files
}

/// A namespace of its own for each manifest (they reuse names such as
/// `private-cloud` in `pulsar`), so that one environment holds them all.
fn namespace_for(path: &Path) -> String {
    let stem = path.file_stem().unwrap().to_string_lossy().to_lowercase();
    let clean: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let ns = format!("t-{}", clean.trim_matches('-'));
    ns[..ns.len().min(63)].trim_end_matches('-').to_string()
}

fn describe(obj: &Value) -> String {
    format!(
        "{} {}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Applies the manifest's magnetar resources, renders it with their real
/// UIDs, applies every rendered object. Returns (objects applied, failures).
async fn render_and_apply(applier: &Applier, client: &kube::Client, path: &Path) -> (usize, Vec<String>) {
    let source = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let ns = namespace_for(path);
    let mut docs = yaml_documents(&text).unwrap_or_else(|e| panic!("{source}: {e:#}"));
    ensure_namespace(client, &ns).await.unwrap();

    let mut failures = Vec::new();
    let mut inputs = 0;
    for doc in &mut docs {
        doc["metadata"]["namespace"] = Value::String(ns.clone());
        if !is_magnetar(doc) {
            continue;
        }
        inputs += 1;
        match applier.apply(doc).await {
            Ok(applied) => {
                let DynamicObject { metadata, .. } = applied;
                doc["metadata"]["uid"] = Value::String(metadata.uid.expect("applied object has a uid"));
            }
            Err(e) => failures.push(format!("{source}: input {}: {}", describe(doc), server_message(&e))),
        }
    }
    assert!(inputs > 0, "{source} holds no magnetar resource");
    if !failures.is_empty() {
        return (0, failures);
    }

    let yaml: Vec<String> = docs.iter().map(|d| serde_norway::to_string(d).unwrap()).collect();
    let rendered = magnetar_build::render::render(&[(source.clone(), yaml.join("---\n"))])
        .unwrap_or_else(|e| panic!("render refused {source}:\n{e}"));
    assert!(!rendered.objects.is_empty(), "{source}: render produced nothing");
    for obj in &rendered.objects {
        assert_eq!(obj.namespace, ns, "{source}: {} is not in the CR's namespace", describe(&obj.value));
        if let Err(e) = applier.apply(&obj.value).await {
            failures.push(format!("{source}: {}: {}", describe(&obj.value), server_message(&e)));
        }
    }
    (rendered.objects.len(), failures)
}

async fn every_rendered_object_is_accepted(istio: &str) {
    let env = env(istio).await;
    let client = env.client().await.unwrap();
    let applier = Applier::new(client.clone(), MANAGER);
    let files = manifests();
    assert!(!files.is_empty(), "no manifest to check: neither ../shared/compat nor examples/ has any");
    let mut failures = Vec::new();
    let mut total = 0;
    for path in &files {
        let (n, f) = render_and_apply(&applier, &client, path).await;
        eprintln!("{}: {n} objects applied, {} refused (Istio {istio})", path.display(), f.len());
        total += n;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "under Istio {istio}'s CRDs, {} of {total} objects were refused (logs in {}):\n{}",
        failures.len(),
        env.log_dir().display(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn rendered_objects_are_accepted_under_istio_1_24_2() {
    assert_eq!(ISTIO_GUIDE, "1.24.2");
    every_rendered_object_is_accepted(ISTIO_GUIDE).await;
}

#[tokio::test]
async fn rendered_objects_are_accepted_under_the_newest_istio() {
    every_rendered_object_is_accepted(ISTIO_NEWEST).await;
}

#[derive(Deserialize)]
struct Case {
    name: String,
    manifest: String,
    #[allow(dead_code)]
    render: String,
    apiserver: Option<String>,
}

fn bad_input() -> Vec<Case> {
    let path = repo_root().unwrap().join("testdata/bad-input.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{} is missing ({e}): the bad-input table is what this test checks", path.display())
    });
    let cases: Vec<Case> = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!cases.is_empty(), "{} holds no case", path.display());
    cases
}

/// Applies one case's magnetar documents (in a namespace of its own, so no
/// case sees another's objects); the refusals' messages.
async fn apply_case(applier: &Applier, client: &kube::Client, index: usize, case: &Case) -> Vec<String> {
    let ns = format!("bad-{index}");
    ensure_namespace(client, &ns).await.unwrap();
    let docs = yaml_documents(&case.manifest).unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
    let mut refusals = Vec::new();
    let mut applied = 0;
    for mut doc in docs.into_iter().filter(is_magnetar) {
        doc["metadata"]["namespace"] = Value::String(ns.clone());
        applied += 1;
        if let Err(e) = applier.apply(&doc).await {
            refusals.push(server_message(&e));
        }
    }
    assert!(applied > 0, "{}: the manifest holds no magnetar resource", case.name);
    refusals
}

#[tokio::test]
async fn api_server_refuses_bad_input_with_the_expected_message() {
    let cases = bad_input();
    let env = env(ISTIO_NEWEST).await;
    let client = env.client().await.unwrap();
    let applier = Applier::new(client.clone(), MANAGER);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        let Some(want) = &case.apiserver else { continue };
        checked += 1;
        let refusals = apply_case(&applier, &client, i, case).await;
        if refusals.is_empty() {
            failures.push(format!("{}: accepted, but the table says the API server refuses it with: {want}", case.name));
        } else if !refusals.iter().any(|r| r.contains(want.as_str())) {
            failures.push(format!("{}:\n  want a refusal containing {want}\n  got {}", case.name, refusals.join("\n      ")));
        }
    }
    assert!(checked > 0, "no case of the bad-input table names an apiserver message");
    assert!(failures.is_empty(), "{} of {checked} cases:\n{}", failures.len(), failures.join("\n"));
}

/// The table leaves `apiserver` out where only magnetar can judge: then the
/// API server must accept the manifest (otherwise the table is stale).
#[tokio::test]
async fn api_server_accepts_bad_input_only_magnetar_can_judge() {
    let cases = bad_input();
    let env = env(ISTIO_NEWEST).await;
    let client = env.client().await.unwrap();
    let applier = Applier::new(client.clone(), MANAGER);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        if case.apiserver.is_some() {
            continue;
        }
        checked += 1;
        let refusals = apply_case(&applier, &client, i, case).await;
        if !refusals.is_empty() {
            failures.push(format!(
                "{}: the API server refuses it, so the table should say so (apiserver:): {}",
                case.name,
                refusals.join("; ")
            ));
        }
    }
    eprintln!("{checked} cases only magnetar judges");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
