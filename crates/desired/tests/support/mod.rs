//! Helpers shared by the schema and property tests: the real schemas
//! ([`schemas`]), the input manifests, and checks of what SPEC §3 promises
//! about every generated object that a schema cannot express (names, labels,
//! port names, selectors that must match).
#![allow(dead_code)]

pub mod schemas;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use magnetar_desired::Object;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use schemas::Schemas;

/// `../shared/compat` next to the repository (override: MAGNETAR_COMPAT_DIR).
pub fn compat_dir() -> PathBuf {
    match std::env::var_os("MAGNETAR_COMPAT_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/compat")),
    }
}

fn yaml_files(dir: &std::path::Path, what: &str) -> Vec<(String, String)> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "{what} directory {} is missing ({e}): the compatibility manifests live in ../shared/compat next to the repository \
             (or set MAGNETAR_COMPAT_DIR)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{what} directory {} holds no *.yaml", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), text)
        })
        .collect()
}

/// Every compat manifest (`../shared/compat/*.yaml`).
pub fn compat_manifests() -> Vec<(String, String)> {
    yaml_files(&compat_dir(), "compat")
}

/// Every example (`examples/*.yaml`).
pub fn example_manifests() -> Vec<(String, String)> {
    yaml_files(&PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")), "examples")
}

/// Schema violations of every object (both Istio versions for Istio kinds).
pub fn schema_errors(objects: &[Object]) -> Vec<String> {
    let s = Schemas::get();
    objects.iter().flat_map(|o| s.errors(&o.value)).collect()
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static pattern"))
}

/// RFC 1123 label (Kubernetes DNS_LABEL).
pub fn dns1123_label(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63 && re(&R, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").is_match(s)
}

/// RFC 1035 label (Service names).
pub fn dns1035_label(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63 && re(&R, r"^[a-z]([-a-z0-9]*[a-z0-9])?$").is_match(s)
}

/// RFC 1123 subdomain.
pub fn dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && !s.is_empty() && s.split('.').all(dns1123_label)
}

/// IANA_SVC_NAME (container port names).
pub fn iana_svc_name(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    s.len() <= 15
        && re(&R, r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$").is_match(s)
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.contains("--")
}

fn qualified_name_part(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63 && re(&R, r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$").is_match(s)
}

/// A label or annotation key: `[prefix/]name`.
pub fn qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => dns1123_subdomain(prefix) && qualified_name_part(name),
        None => qualified_name_part(s),
    }
}

/// A label value.
pub fn label_value(s: &str) -> bool {
    s.is_empty() || qualified_name_part(s)
}

pub const APP_NAMES: [&str; 5] = ["zookeeper", "bookkeeper", "pulsar-broker", "pulsar-proxy", "pulsar-toolset"];
pub const COMMON_LABELS: [&str; 4] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
];

fn id(o: &Object) -> String {
    format!("{} {}/{}", o.api_version, o.kind, o.name)
}

fn label_map_errors(out: &mut Vec<String>, who: &str, at: &str, map: &Value) {
    let Some(m) = map.as_object() else { return };
    for (k, v) in m {
        if !qualified_name(k) {
            out.push(format!("{who}: {at}: label key {k:?} is not a valid qualified name"));
        }
        match v.as_str() {
            Some(v) if label_value(v) => {}
            _ => out.push(format!(
                "{who}: {at}.{k}: label value {v} is not a valid label value (<= 63 chars, alphanumeric ends)"
            )),
        }
    }
}

fn annotation_errors(out: &mut Vec<String>, who: &str, at: &str, map: &Value) {
    let Some(m) = map.as_object() else { return };
    for (k, v) in m {
        if !qualified_name(k) {
            out.push(format!("{who}: {at}: annotation key {k:?} is not a valid qualified name"));
        }
        if !v.is_string() {
            out.push(format!("{who}: {at}.{k}: annotation value must be a string"));
        }
    }
}

/// The pod template of a workload, if `o` is one.
pub fn pod_template(o: &Object) -> Option<&Value> {
    matches!(o.kind.as_str(), "StatefulSet" | "Deployment").then(|| &o.value["spec"]["template"])
}

fn containers(pod_spec: &Value) -> impl Iterator<Item = &Value> {
    let c = pod_spec["containers"].as_array().into_iter().flatten();
    c.chain(pod_spec["initContainers"].as_array().into_iter().flatten())
}

/// What SPEC §3 and Kubernetes' own validation demand of one object beyond
/// its schema: the common labels, valid names, label syntax, port names.
pub fn object_errors(o: &Object) -> Vec<String> {
    let mut out = Vec::new();
    let who = id(o);
    let who = who.as_str();
    let meta = &o.value["metadata"];
    // Identity.
    if o.api_version.is_empty() || o.kind.is_empty() {
        out.push(format!("{who}: apiVersion and kind must be set"));
    }
    if !dns1123_label(&o.namespace) {
        out.push(format!("{who}: namespace {:?} is not a DNS label", o.namespace));
    }
    if meta["name"].as_str() != Some(o.name.as_str()) || meta["namespace"].as_str() != Some(o.namespace.as_str()) {
        out.push(format!("{who}: Object identity fields disagree with metadata"));
    }
    let name_ok = match o.kind.as_str() {
        "Service" => dns1035_label(&o.name),
        // Pods are <name>-<ordinal> and the controller-revision-hash label
        // is <name>-<10 chars>: both must fit 63.
        "StatefulSet" => dns1123_label(&o.name) && o.name.len() <= 52,
        _ => dns1123_subdomain(&o.name) && o.name.len() <= 63,
    };
    if !name_ok {
        let rule = match o.kind.as_str() {
            "Service" => "an RFC 1035 label: lower-case letter first, at most 63 chars",
            "StatefulSet" => "a DNS label of at most 52 chars",
            _ => "a DNS subdomain of at most 63 chars",
        };
        out.push(format!(
            "{who}: name {:?} ({} chars) is not valid for a {}: must be {rule}",
            o.name,
            o.name.len(),
            o.kind
        ));
    }
    // Common labels (SPEC 3).
    for l in COMMON_LABELS {
        if meta["labels"][l].as_str().is_none_or(str::is_empty) {
            out.push(format!("{who}: missing label {l}"));
        }
    }
    if let Some(n) = meta["labels"]["app.kubernetes.io/name"].as_str().filter(|n| !APP_NAMES.contains(n)) {
        out.push(format!("{who}: app.kubernetes.io/name {n:?} is none of {APP_NAMES:?}"));
    }
    if meta["labels"]["app.kubernetes.io/managed-by"].as_str().is_some_and(|m| m != "magnetar") {
        out.push(format!("{who}: app.kubernetes.io/managed-by must be magnetar"));
    }
    // Label and annotation syntax wherever labels live.
    label_map_errors(&mut out, who, "metadata.labels", &meta["labels"]);
    annotation_errors(&mut out, who, "metadata.annotations", &meta["annotations"]);
    label_map_errors(&mut out, who, "spec.selector.matchLabels", &o.value["spec"]["selector"]["matchLabels"]);
    if matches!(o.kind.as_str(), "Service" | "Gateway") {
        label_map_errors(&mut out, who, "spec.selector", &o.value["spec"]["selector"]);
    }
    if let Some(t) = pod_template(o) {
        label_map_errors(&mut out, who, "spec.template.metadata.labels", &t["metadata"]["labels"]);
        annotation_errors(&mut out, who, "spec.template.metadata.annotations", &t["metadata"]["annotations"]);
        let mut port_names = BTreeSet::new();
        let mut container_names = BTreeSet::new();
        for c in containers(&t["spec"]) {
            let cname = c["name"].as_str().unwrap_or_default();
            if !dns1123_label(cname) || !container_names.insert(cname) {
                out.push(format!("{who}: container name {cname:?} is not a unique DNS label"));
            }
            for p in c["ports"].as_array().into_iter().flatten() {
                if let Some(n) = p["name"].as_str() {
                    if !iana_svc_name(n) {
                        out.push(format!("{who}: container {cname} port name {n:?} is not an IANA_SVC_NAME (<= 15 chars, lower-case, a letter)"));
                    }
                    if !port_names.insert(n) {
                        out.push(format!("{who}: container port name {n:?} is used twice in the pod"));
                    }
                }
            }
        }
        // Every mount names a volume of the pod (or a claim template).
        let mut volumes: BTreeSet<&str> = BTreeSet::new();
        for v in t["spec"]["volumes"].as_array().into_iter().flatten() {
            let n = v["name"].as_str().unwrap_or_default();
            if !volumes.insert(n) {
                out.push(format!("{who}: volume {n:?} is declared twice"));
            }
        }
        for v in o.value["spec"]["volumeClaimTemplates"].as_array().into_iter().flatten() {
            volumes.insert(v["metadata"]["name"].as_str().unwrap_or_default());
        }
        for c in containers(&t["spec"]) {
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                let n = m["name"].as_str().unwrap_or_default();
                if !volumes.contains(n) {
                    out.push(format!(
                        "{who}: container {} mounts volume {n:?}, which the pod does not declare",
                        c["name"]
                    ));
                }
            }
        }
    }
    if o.kind == "Service" {
        let ports = o.value["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let mut names = BTreeSet::new();
        for p in &ports {
            let n = p["name"].as_str().unwrap_or_default();
            let prefixed =
                ["tcp-", "tls-", "http-", "https-"].iter().any(|pre| n.starts_with(pre) && n.len() > pre.len())
                    || ["tcp", "tls", "http", "https"].contains(&n);
            if n.len() > 15 || !dns1123_label(n) || !prefixed {
                out.push(format!(
                    "{who}: port {} name {n:?} must be a DNS label of at most 15 chars with a tcp-/tls-/http-/https- prefix",
                    p["port"]
                ));
            }
            if !names.insert(n) {
                out.push(format!("{who}: port name {n:?} is used twice"));
            }
            if p["appProtocol"].as_str().is_none_or(str::is_empty) {
                out.push(format!("{who}: port {n:?} has no appProtocol"));
            }
            if let Some(tp) = p["targetPort"].as_str().filter(|tp| !iana_svc_name(tp)) {
                out.push(format!("{who}: port {n:?} targetPort {tp:?} is not an IANA_SVC_NAME"));
            }
        }
    }
    out
}

/// Whether `selector` selects the pods of workload `w`. Labels the
/// StatefulSet controller adds to each pod (`statefulset.kubernetes.io/
/// pod-name`, `apps.kubernetes.io/pod-index`) match an existing ordinal.
fn selects_pods_of(selector: &Value, w: &Object) -> bool {
    let Some(s) = selector.as_object().filter(|s| !s.is_empty()) else { return false };
    let labels = &pod_template(w).expect("workload")["metadata"]["labels"];
    let replicas = w.value["spec"]["replicas"].as_i64().unwrap_or(1);
    let ordinal_ok = |o: Option<i64>| o.is_some_and(|o| (0..replicas).contains(&o));
    s.iter().all(|(k, v)| match k.as_str() {
        "statefulset.kubernetes.io/pod-name" if w.kind == "StatefulSet" => {
            ordinal_ok(v.as_str().and_then(|p| p.strip_prefix(&format!("{}-", w.name))).and_then(|o| o.parse().ok()))
        }
        "apps.kubernetes.io/pod-index" if w.kind == "StatefulSet" => {
            ordinal_ok(v.as_str().and_then(|o| o.parse().ok()))
        }
        _ => labels.get(k) == Some(v),
    })
}

fn subset(selector: &Value, labels: &Value) -> bool {
    match selector.as_object() {
        Some(s) if !s.is_empty() => s.iter().all(|(k, v)| labels.get(k) == Some(v)),
        _ => false,
    }
}

/// Whether the output holds a workload of the component `selector` names
/// (same app.kubernetes.io/name and instance); while the builders of a
/// component are not written yet, selectors of its pods cannot be checked.
fn component_built(workloads: &[&Object], namespace: &str, selector: &Value) -> bool {
    let keys = ["app.kubernetes.io/name", "app.kubernetes.io/instance"];
    workloads.iter().any(|w| {
        let labels = &pod_template(w).expect("workload")["metadata"]["labels"];
        w.namespace == namespace && keys.iter().all(|k| selector.get(*k).is_none_or(|v| labels.get(*k) == Some(v)))
    })
}

/// Checks across the objects of one build: unique identities, selectors
/// that select the workloads they are meant for, named target ports that
/// exist, StatefulSets' governing Services. With `complete` (a whole
/// render), ConfigMaps that pods mount must be in the output too.
pub fn set_errors(objects: &[Object], complete: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for o in objects {
        let key = (o.group().to_string(), o.kind.clone(), o.namespace.clone(), o.name.clone());
        if seen.insert(key, ()).is_some() {
            out.push(format!("{}: generated twice in namespace {}", id(o), o.namespace));
        }
    }
    let workloads: Vec<&Object> = objects.iter().filter(|o| pod_template(o).is_some()).collect();
    for w in &workloads {
        let t = pod_template(w).expect("workload");
        if !subset(&w.value["spec"]["selector"]["matchLabels"], &t["metadata"]["labels"]) {
            out.push(format!("{}: spec.selector.matchLabels does not match the pod template's labels", id(w)));
        }
        if let Some(svc) = w.value["spec"]["serviceName"].as_str().filter(|s| !s.is_empty()) {
            let exists = objects.iter().any(|s| s.kind == "Service" && s.namespace == w.namespace && s.name == svc);
            if !exists {
                out.push(format!("{}: spec.serviceName {svc:?} names no Service of the output", id(w)));
            }
        }
        if complete {
            // magnetar's own ConfigMap volume is "config"; a user's
            // pod.volumes entry names a ConfigMap the user provides.
            for v in t["spec"]["volumes"].as_array().into_iter().flatten().filter(|v| v["name"] == "config") {
                let Some(cm) = v["configMap"]["name"].as_str() else { continue };
                if !objects.iter().any(|c| c.kind == "ConfigMap" && c.namespace == w.namespace && c.name == cm) {
                    out.push(format!("{}: mounts ConfigMap {cm:?}, which is not generated", id(w)));
                }
            }
        }
    }
    let selects = |o: &Object, selector: &Value| -> Vec<&Object> {
        workloads.iter().copied().filter(|w| w.namespace == o.namespace && selects_pods_of(selector, w)).collect()
    };
    for o in objects {
        match o.kind.as_str() {
            "Service" => {
                let selector = &o.value["spec"]["selector"];
                if selector.as_object().is_none_or(|s| s.is_empty()) {
                    continue;
                }
                if !component_built(&workloads, &o.namespace, selector) {
                    continue;
                }
                let targets = selects(o, selector);
                if targets.is_empty() {
                    out.push(format!("{}: spec.selector {selector} selects no generated workload", id(o)));
                    continue;
                }
                for p in o.value["spec"]["ports"].as_array().into_iter().flatten() {
                    let Some(tp) = p["targetPort"].as_str() else { continue };
                    let declared = targets.iter().any(|w| {
                        containers(&pod_template(w).expect("workload")["spec"])
                            .any(|c| c["ports"].as_array().into_iter().flatten().any(|cp| cp["name"] == tp))
                    });
                    if !declared {
                        out.push(format!(
                            "{}: targetPort {tp:?} is no container port name of the selected pods",
                            id(o)
                        ));
                    }
                }
            }
            "PodDisruptionBudget" => {
                let selector = &o.value["spec"]["selector"]["matchLabels"];
                if component_built(&workloads, &o.namespace, selector) && selects(o, selector).is_empty() {
                    out.push(format!("{}: spec.selector selects no generated workload", id(o)));
                }
            }
            _ => {}
        }
    }
    out
}

/// Every problem of a build's output: schema, per-object and set checks.
pub fn all_errors(objects: &[Object], complete: bool) -> Vec<String> {
    let mut out = schema_errors(objects);
    out.extend(objects.iter().flat_map(object_errors));
    out.extend(set_errors(objects, complete));
    out
}

/// Compat manifests magnetar refuses (a field not implemented yet, or a
/// placeholder no API server accepts), with the field render names first
/// (`testdata/compat-refused.txt`).
pub fn refused_compat() -> Vec<(String, String)> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/compat-refused.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (file, field) =
                l.split_once('\t').unwrap_or_else(|| panic!("{}: {l:?} is not file<TAB>field", path.display()));
            (file.to_string(), field.to_string())
        })
        .collect()
}

// ---------------------------------------------------------------- typed access
//
// Tests assert on objects read back as their k8s-openapi (or Istio) types,
// so that a misspelt field does not compile.

/// The object `kind` `name` of the output.
pub fn object<'a>(objects: &'a [Object], kind: &str, name: &str) -> &'a Object {
    objects.iter().find(|o| o.kind == kind && o.name == name).unwrap_or_else(|| {
        panic!("no {kind}/{name} in {:?}", objects.iter().map(|o| format!("{}/{}", o.kind, o.name)).collect::<Vec<_>>())
    })
}

/// `o` read back as `K`.
pub fn as_typed<K: DeserializeOwned>(o: &Object) -> K {
    serde_json::from_value(o.value.clone())
        .unwrap_or_else(|e| panic!("{}/{} is no {}: {e}", o.kind, o.name, std::any::type_name::<K>()))
}

/// The object `name` of `K`'s kind, read back as `K`.
pub fn typed<K: k8s_openapi::Resource + DeserializeOwned>(objects: &[Object], name: &str) -> K {
    as_typed(object(objects, K::KIND, name))
}

/// The metadata of any object.
pub fn metadata(o: &Object) -> ObjectMeta {
    #[derive(serde::Deserialize)]
    struct WithMetadata {
        metadata: ObjectMeta,
    }
    as_typed::<WithMetadata>(o).metadata
}

/// The value of `key` in a label or annotation map.
pub fn entry<'a>(map: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    map.get(key).map(String::as_str)
}

/// The pod template of StatefulSet or Deployment `o`.
pub fn workload_template(o: &Object) -> PodTemplateSpec {
    let spec = match o.kind.as_str() {
        "StatefulSet" => as_typed::<StatefulSet>(o).spec.map(|s| s.template),
        "Deployment" => as_typed::<Deployment>(o).spec.map(|s| s.template),
        kind => panic!("{kind}/{} is no workload", o.name),
    };
    spec.unwrap_or_else(|| panic!("{}/{} has no spec", o.kind, o.name))
}

/// Labels of the pod template of workload `o`.
pub fn pod_labels(o: &Object) -> BTreeMap<String, String> {
    workload_template(o).metadata.and_then(|m| m.labels).unwrap_or_default()
}

/// Annotations of the pod template of workload `o`.
pub fn pod_annotations(o: &Object) -> BTreeMap<String, String> {
    workload_template(o).metadata.and_then(|m| m.annotations).unwrap_or_default()
}

/// The pod spec of workload `o`.
pub fn pod_spec(o: &Object) -> PodSpec {
    workload_template(o).spec.unwrap_or_else(|| panic!("{}/{} has no pod spec", o.kind, o.name))
}

/// The first container of workload `o`'s pods.
pub fn first_container(o: &Object) -> Container {
    pod_spec(o).containers.into_iter().next().unwrap_or_else(|| panic!("{}/{} has no container", o.kind, o.name))
}

/// Port numbers of Service `name`.
pub fn service_ports(objects: &[Object], name: &str) -> Vec<i32> {
    let svc: Service = typed(objects, name);
    let ports = svc.spec.and_then(|s| s.ports).unwrap_or_else(|| panic!("Service {name} has no ports"));
    ports.iter().map(|p| p.port).collect()
}

/// File `key` of ConfigMap `name`.
pub fn config_file(objects: &[Object], name: &str, key: &str) -> String {
    let cm: ConfigMap = typed(objects, name);
    cm.data.and_then(|mut d| d.remove(key)).unwrap_or_else(|| panic!("ConfigMap {name} has no {key}"))
}
