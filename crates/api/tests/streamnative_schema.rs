//! magnetar's API against StreamNative's own CRDs
//! (`../shared/compat/sn-operator-crds/`, taken unmodified from their public
//! repository): every field magnetar accepts, three levels below `spec`,
//! either exists at the same path with the same type there, or is one of
//! magnetar's documented additions (`testdata/streamnative-schema-additions.txt`,
//! each with its reason; docs/compatibility.md explains them). A field that
//! exists in both with different types fails at once: a StreamNative
//! manifest using it would be refused or misread. The test prints, per kind,
//! the share of StreamNative's field paths magnetar accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// How deep below `spec` paths are compared: three levels, as the coverage
/// figure of issue 11 counts them. Below that live the Kubernetes types
/// both embed (containers, claims, affinity), whose own versions differ.
const DEPTH: usize = 3;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `spec`'s schema of each CRD in `dir`, by kind.
fn spec_schemas(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let crd: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone();
        out.insert(kind, spec);
    }
    out
}

/// The type a schema gives a value; int-or-string as its own type.
fn type_of(s: &Value) -> String {
    if s["x-kubernetes-int-or-string"] == true || s.get("anyOf").is_some() {
        return "int-or-string".into();
    }
    s["type"].as_str().unwrap_or("any").to_string()
}

/// Every field path (dotted, arrays see through) down to `depth` levels.
fn paths(s: &Value, prefix: &str, depth: usize, out: &mut BTreeMap<String, String>) {
    if depth == 0 {
        return;
    }
    if s["type"] == "array" {
        return paths(&s["items"], prefix, depth, out);
    }
    for (k, v) in s["properties"].as_object().into_iter().flatten() {
        let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        out.insert(p.clone(), type_of(v));
        paths(v, &p, depth - 1, out);
    }
}

/// `Kind<TAB>path<TAB>reason` lines; a path ending in `.*` covers what is
/// below it.
fn additions() -> Vec<(String, String, String)> {
    let file = root().join("testdata/streamnative-schema-additions.txt");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (kind, path, why) = (f.next().unwrap(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            assert!(!why.trim().is_empty(), "{}: {l:?} needs kind<TAB>path<TAB>reason", file.display());
            (kind.to_string(), path.to_string(), why.to_string())
        })
        .collect()
}

fn listed(additions: &[(String, String, String)], kind: &str, path: &str) -> bool {
    additions.iter().any(|(k, p, _)| {
        k == kind && (p == path || p.strip_suffix(".*").is_some_and(|base| path.starts_with(&format!("{base}."))))
    })
}

#[test]
fn magnetar_accepts_streamnative_fields_with_their_types_and_documents_its_own() {
    let theirs = spec_schemas(&root().join("../shared/compat/sn-operator-crds"));
    let ours = spec_schemas(&root().join("deploy/crds"));
    let additions = additions();
    let mut problems = Vec::new();
    let mut report = Vec::new();
    for (kind, our_spec) in &ours {
        let their_spec = theirs.get(kind).unwrap_or_else(|| panic!("StreamNative has no CRD of kind {kind}"));
        let (mut mine, mut sn) = (BTreeMap::new(), BTreeMap::new());
        paths(our_spec, "", DEPTH, &mut mine);
        paths(their_spec, "", DEPTH, &mut sn);
        for (path, ty) in &mine {
            match sn.get(path) {
                Some(t) if t == ty => {}
                Some(t) => problems.push(format!("{kind} spec.{path}: magnetar's type {ty}, StreamNative's {t}")),
                None if listed(&additions, kind, path) => {}
                None => problems.push(format!(
                    "{kind} spec.{path} ({ty}) is not in StreamNative's schema: rename it to StreamNative's field, or list it with its reason in testdata/streamnative-schema-additions.txt and docs/compatibility.md"
                )),
            }
        }
        for (k, p, _) in additions.iter().filter(|(k, _, _)| k == kind) {
            let base = p.strip_suffix(".*").unwrap_or(p);
            if !mine.contains_key(base) || sn.contains_key(p) {
                problems.push(format!(
                    "{k} {p}: listed as magnetar's addition, but magnetar has no such field or StreamNative has it too"
                ));
            }
        }
        let accepted = sn.keys().filter(|p| mine.contains_key(*p)).count();
        report.push(format!(
            "{kind:<18} {accepted:>4} of {:>4} StreamNative field paths ({:.0} %)",
            sn.len(),
            100.0 * accepted as f64 / sn.len() as f64
        ));
    }
    eprintln!("StreamNative field paths magnetar accepts, {DEPTH} levels below spec:\n{}", report.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
