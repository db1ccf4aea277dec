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
async fn env(istio: &str) -> &'static ControlPlane {
    shared(Options::default().istio(istio).label(&format!("istio-{istio}"))).await.expect("control plane")
}

/// A resource of one of magnetar's kinds (a StreamNative group holds others,
/// such as Console, that magnetar does not manage).
fn is_magnetar(doc: &Value) -> bool {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    magnetar_api::crds()
        .iter()
        .any(|crd| crd.spec.names.kind == kind && api_version.starts_with(&format!("{}/", crd.spec.group)))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    files
}

/// Compat manifests magnetar refuses (a field not implemented yet, or a
/// placeholder no API server accepts), with the field render names first
/// (`testdata/compat-refused.txt`).
fn refused_compat() -> Vec<(String, String)> {
    let path = repo_root().unwrap().join("testdata/compat-refused.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t').map(|(f, x)| (f.to_string(), x.to_string())))
        .collect()
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
    let rendered = magnetar_desired::render::render(&[(source.clone(), yaml.join("---\n"))])
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
    let pending = refused_compat();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some((_, field)) = pending.iter().find(|(f, _)| *f == name) {
            // Refused (testdata/compat-refused.txt says why): the render still refuses it,
            // naming the field; nothing of it can be applied.
            let text = std::fs::read_to_string(path).unwrap();
            match magnetar_desired::render::render(&[(name.clone(), text)]) {
                Err(e) if e.to_string().contains(field.as_str()) => {
                    eprintln!("{name}: not yet supported ({field}), skipped");
                }
                other => failures.push(format!(
                    "{name}: listed in testdata/compat-refused.txt for {field}, but render gave {:?}",
                    other.map(|r| r.objects.len())
                )),
            }
            continue;
        }
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

/// One case's magnetar documents, each in a namespace of its own so that no
/// case sees another's objects.
/// `None` for a manifest that is not YAML at all (kubectl refuses it before
/// any request).
async fn case_documents(client: &kube::Client, index: usize, case: &Case) -> Option<Vec<Value>> {
    let ns = format!("bad-{index}");
    ensure_namespace(client, &ns).await.unwrap();
    let docs: Vec<Value> = yaml_documents(&case.manifest)
        .ok()?
        .into_iter()
        .filter(is_magnetar)
        .map(|mut d| {
            d["metadata"]["namespace"] = Value::String(ns.clone());
            d
        })
        .collect();
    assert!(!docs.is_empty(), "{}: the manifest holds no magnetar resource", case.name);
    Some(docs)
}

/// The refusals of a create (POST, strict, dry run: what `kubectl apply`
/// does for a new object) and of a server-side apply (strict, forced).
async fn refusals(applier: &Applier, docs: &[Value]) -> (Vec<String>, Vec<String>) {
    let (mut create, mut ssa) = (Vec::new(), Vec::new());
    for doc in docs {
        if let Err(e) = applier.create(doc, true).await {
            create.push(server_message(&e));
        }
        if let Err(e) = applier.apply(doc).await {
            ssa.push(server_message(&e));
        }
    }
    (create, ssa)
}

/// The field a table message is about, for refusals that server-side apply
/// reports in its own words (unknown fields and wrong types are found while
/// building the typed patch: `.spec.x: field not declared in schema`).
fn field_of(message: &str) -> Option<&str> {
    if let Some(rest) = message.strip_prefix("unknown field \"") {
        return rest.split('"').next();
    }
    message.starts_with("spec.").then(|| message.split(':').next().unwrap_or(message))
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
        let Some(docs) = case_documents(&client, i, case).await else {
            failures.push(format!("{}: not YAML, so no API server can judge it; drop `apiserver:`", case.name));
            continue;
        };
        let (create, ssa) = refusals(&applier, &docs).await;
        if create.is_empty() {
            failures.push(format!("{}: create accepted it; the table says: {want}", case.name));
        } else if !create.iter().any(|r| r.contains(want.as_str())) {
            failures.push(format!(
                "{}: create\n  want a refusal containing {want}\n  got {}",
                case.name,
                create.join("\n      ")
            ));
        }
        let ssa_ok = |r: &String| r.contains(want.as_str()) || field_of(want).is_some_and(|f| r.contains(f));
        if ssa.is_empty() {
            failures.push(format!("{}: server-side apply accepted it; the table says: {want}", case.name));
        } else if !ssa.iter().any(ssa_ok) {
            failures.push(format!(
                "{}: server-side apply\n  want a refusal containing {want}{}\n  got {}",
                case.name,
                field_of(want).map(|f| format!(" (or naming {f})")).unwrap_or_default(),
                ssa.join("\n      ")
            ));
        }
    }
    assert!(checked > 0, "no case of the bad-input table names an apiserver message");
    assert!(failures.is_empty(), "{} problems in {checked} cases:\n{}", failures.len(), failures.join("\n"));
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
    for (i, case) in cases.iter().enumerate().filter(|(_, c)| c.apiserver.is_none()) {
        let Some(docs) = case_documents(&client, i, case).await else {
            eprintln!("{}: not YAML, skipped", case.name);
            continue;
        };
        checked += 1;
        let (create, ssa) = refusals(&applier, &docs).await;
        if let Some(r) = create.first().or(ssa.first()) {
            failures
                .push(format!("{}: the API server refuses it, so the table should give `apiserver:`: {r}", case.name));
        }
    }
    eprintln!("{checked} cases only magnetar judges");
    assert!(checked > 0, "every case names an apiserver message: nothing checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
