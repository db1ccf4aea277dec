//! The real Kubernetes and Istio schemas, loaded at test time (never
//! committed) from the Go module cache, turned into strict JSON Schema
//! validators that emulate the API server's strict field validation.
//!
//! * Istio: `kubernetes/customresourcedefinitions.gen.yaml` of the Go module
//!   `istio.io/api` at [`ISTIO_VERSIONS`]; each CRD version's
//!   `schema.openAPIV3Schema`, with `apiVersion`, `kind` and `metadata`
//!   (Kubernetes' ObjectMeta) added at the root as the API server does.
//! * Gateway API: the standard channel's CRDs (`config/crd/standard`) of the
//!   Go module `sigs.k8s.io/gateway-api` at [`GATEWAY_API_VERSION`], the
//!   same way.
//! * prometheus-operator: the PodMonitor CRD
//!   (`example/prometheus-operator-crd`) of its Go module at
//!   [`PROMETHEUS_OPERATOR_VERSION`].
//! * Kubernetes: `api/openapi-spec/v3/*.json` of `k8s.io/kubernetes` at
//!   [`KUBERNETES_VERSION`], `#/components/schemas/...` refs resolved by the
//!   validator.
//!
//! Strictness: every object schema that declares `properties` gets
//! `additionalProperties: false` unless it has `additionalProperties` or
//! `x-kubernetes-preserve-unknown-fields`; in CRD schemas (structural
//! schemas) a `type: object` without properties gets it too (the API server
//! would prune, hence refuse, every field there). `x-kubernetes-list-type:
//! set` becomes `uniqueItems`, and `x-kubernetes-list-map-keys` is checked by
//! a custom keyword (duplicate or missing keys are refused). Null-valued
//! fields are dropped before validation, as the API server does. Kubernetes'
//! OpenAPI has no enums; [`K8S_ENUMS`] adds those of the fields magnetar
//! uses. CEL
//! (`x-kubernetes-validations`) is not evaluated here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::paths::Location;
use jsonschema::{Draft, Keyword, ValidationError, Validator};
use serde_json::{Map, Value, json};

pub const ISTIO_VERSIONS: [&str; 2] = ["v1.24.2", "v1.32.0"];
pub const KUBERNETES_VERSION: &str = "v1.36.3";
/// Keep in step with magnetar_testenv::GATEWAY_API_VERSION.
pub const GATEWAY_API_VERSION: &str = "v1.6.3";
/// Keep in step with magnetar_testenv::PROMETHEUS_OPERATOR_VERSION.
pub const PROMETHEUS_OPERATOR_VERSION: &str = "v0.85.0";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Which schemas to validate against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Set {
    Kubernetes,
    /// Index into [`ISTIO_VERSIONS`].
    Istio(usize),
    GatewayApi,
    PrometheusOperator,
}

impl Set {
    fn label(self) -> String {
        match self {
            Set::Kubernetes => format!("Kubernetes {KUBERNETES_VERSION}"),
            Set::Istio(i) => format!("Istio {}", ISTIO_VERSIONS[i]),
            Set::GatewayApi => format!("Gateway API {GATEWAY_API_VERSION}"),
            Set::PrometheusOperator => format!("prometheus-operator {PROMETHEUS_OPERATOR_VERSION}"),
        }
    }
}

type Key = (Set, String, String);
type Components = Arc<Map<String, Value>>;

pub struct Schemas {
    openapi_dir: PathBuf,
    /// Strict `components.schemas` of the core group (ObjectMeta lives there).
    core: Arc<Map<String, Value>>,
    /// Per Istio version: (apiVersion, kind) -> raw openAPIV3Schema.
    istio: Vec<HashMap<(String, String), Value>>,
    /// The Gateway API's standard channel: (apiVersion, kind) -> schema.
    gateway_api: HashMap<(String, String), Value>,
    /// prometheus-operator's PodMonitor: (apiVersion, kind) -> schema.
    prometheus_operator: HashMap<(String, String), Value>,
    /// Strict `components.schemas` per Kubernetes group version.
    k8s_components: Mutex<HashMap<String, Option<Components>>>,
    validators: Mutex<HashMap<Key, Arc<Result<Validator, String>>>>,
}

/// Module directories, via `go mod download -json` (uses the module cache
/// when the modules are there already).
fn module_dirs() -> HashMap<String, PathBuf> {
    let mut modules: Vec<String> = ISTIO_VERSIONS.iter().map(|v| format!("istio.io/api@{v}")).collect();
    modules.push(format!("k8s.io/kubernetes@{KUBERNETES_VERSION}"));
    modules.push(format!("sigs.k8s.io/gateway-api@{GATEWAY_API_VERSION}"));
    modules.push(format!("github.com/prometheus-operator/prometheus-operator@{PROMETHEUS_OPERATOR_VERSION}"));
    let tmp = std::env::temp_dir().join(format!("magnetar-schema-modules-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("create a temporary directory");
    let out = Command::new("go")
        .args(["mod", "download", "-json"])
        .args(&modules)
        .current_dir(&tmp)
        .env("GOFLAGS", "-mod=mod")
        .output();
    let _ = std::fs::remove_dir_all(&tmp);
    let out = out.unwrap_or_else(|e| {
        panic!(
            "the schema tests need Go to fetch {modules:?} (`go mod download`): could not run `go`: {e}. \
             Install Go, or fill the module cache (GOMODCACHE) with those modules."
        )
    });
    let mut dirs = HashMap::new();
    let mut errors = Vec::new();
    for doc in serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>() {
        let doc = doc.unwrap_or_else(|e| panic!("`go mod download -json` printed invalid JSON: {e}"));
        let id = format!("{}@{}", doc["Path"].as_str().unwrap_or("?"), doc["Version"].as_str().unwrap_or("?"));
        match (doc["Dir"].as_str(), doc["Error"].as_str()) {
            (Some(dir), None) => {
                dirs.insert(id, PathBuf::from(dir));
            }
            (_, err) => errors.push(format!("{id}: {}", err.unwrap_or("no Dir"))),
        }
    }
    for m in &modules {
        if !dirs.contains_key(m) && !errors.iter().any(|e| e.starts_with(m.as_str())) {
            errors.push(format!("{m}: not reported"));
        }
    }
    assert!(
        errors.is_empty(),
        "`go mod download -json {}` failed (network or module proxy needed on a cold cache):\n{}\nstderr: {}",
        modules.join(" "),
        errors.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    dirs
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

impl Schemas {
    /// The schemas, loaded once per test binary.
    pub fn get() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(Schemas::load)
    }

    fn load() -> Schemas {
        let dirs = module_dirs();
        let k8s = &dirs[&format!("k8s.io/kubernetes@{KUBERNETES_VERSION}")];
        let openapi_dir = k8s.join("api/openapi-spec/v3");
        let core = Arc::new(load_components(&openapi_dir.join("api__v1_openapi.json")));
        assert!(core.contains_key(OBJECT_META), "{OBJECT_META} missing from api__v1_openapi.json");
        let istio = ISTIO_VERSIONS
            .iter()
            .map(|v| {
                let file = dirs[&format!("istio.io/api@{v}")].join("kubernetes/customresourcedefinitions.gen.yaml");
                let crds = istio_crds(&read(&file));
                assert!(
                    crds.contains_key(&("networking.istio.io/v1".into(), "Gateway".into())),
                    "{} has no Gateway CRD",
                    file.display()
                );
                crds
            })
            .collect();
        let standard = dirs[&format!("sigs.k8s.io/gateway-api@{GATEWAY_API_VERSION}")].join("config/crd/standard");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&standard)
            .unwrap_or_else(|e| panic!("{}: {e}", standard.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("gateway.networking.k8s.io_")))
            .filter(|p| !p.to_string_lossy().contains("vap_safeupgrades"))
            .collect();
        files.sort();
        let gateway_api = istio_crds(&files.iter().map(|f| read(f)).collect::<Vec<_>>().join("\n---\n"));
        assert!(
            gateway_api.contains_key(&("gateway.networking.k8s.io/v1".into(), "TLSRoute".into())),
            "no TLSRoute v1"
        );
        let po = &dirs[&format!("github.com/prometheus-operator/prometheus-operator@{PROMETHEUS_OPERATOR_VERSION}")];
        let prometheus_operator =
            istio_crds(&read(&po.join("example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml")));
        Schemas {
            openapi_dir,
            core,
            istio,
            gateway_api,
            prometheus_operator,
            k8s_components: Mutex::new(HashMap::new()),
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The schema sets an object of `api_version` is validated against.
    pub fn sets_for(api_version: &str) -> Vec<Set> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group.ends_with("istio.io") {
            (0..ISTIO_VERSIONS.len()).map(Set::Istio).collect()
        } else if group == "gateway.networking.k8s.io" {
            vec![Set::GatewayApi]
        } else if group == "monitoring.coreos.com" {
            vec![Set::PrometheusOperator]
        } else {
            vec![Set::Kubernetes]
        }
    }

    /// Every schema violation of `object`, each line naming the schema set,
    /// the object, the field path and the error. Empty when valid.
    pub fn errors(&self, object: &Value) -> Vec<String> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or("?");
        let instance = without_nulls(object);
        let mut out = Vec::new();
        for set in Schemas::sets_for(api_version) {
            let v = self.validator(set, api_version, kind);
            match v.as_ref() {
                Err(e) => out.push(format!("[{}] {kind}/{name}: {e}", set.label())),
                Ok(v) => {
                    for e in v.iter_errors(&instance) {
                        let path = e.instance_path().to_string();
                        let path = if path.is_empty() { "/".to_string() } else { path };
                        out.push(format!("[{}] {api_version} {kind}/{name} at {path}: {e}", set.label()));
                    }
                }
            }
        }
        out
    }

    fn validator(&self, set: Set, api_version: &str, kind: &str) -> Arc<Result<Validator, String>> {
        let key = (set, api_version.to_string(), kind.to_string());
        if let Some(v) = self.validators.lock().unwrap().get(&key) {
            return v.clone();
        }
        let built = Arc::new(self.compile(set, api_version, kind));
        self.validators.lock().unwrap().insert(key, built.clone());
        built
    }

    fn compile(&self, set: Set, api_version: &str, kind: &str) -> Result<Validator, String> {
        let root = match set {
            Set::Kubernetes => {
                let components = self
                    .k8s_components(api_version)
                    .ok_or_else(|| format!("no Kubernetes {KUBERNETES_VERSION} OpenAPI file serves {api_version}"))?;
                let (group, version) = split_api_version(api_version);
                let name = components
                    .iter()
                    .find(|(_, s)| {
                        s["x-kubernetes-group-version-kind"].as_array().is_some_and(|gvks| {
                            gvks.iter().any(|g| g["group"] == group && g["version"] == version && g["kind"] == kind)
                        })
                    })
                    .map(|(n, _)| n.clone())
                    .ok_or_else(|| format!("Kubernetes {KUBERNETES_VERSION} has no kind {kind} in {api_version}"))?;
                json!({"$ref": format!("#/components/schemas/{name}"), "components": {"schemas": &*components}})
            }
            Set::Istio(_) | Set::GatewayApi | Set::PrometheusOperator => {
                let crds = match set {
                    Set::Istio(i) => &self.istio[i],
                    Set::GatewayApi => &self.gateway_api,
                    _ => &self.prometheus_operator,
                };
                let raw = crds
                    .get(&(api_version.to_string(), kind.to_string()))
                    .ok_or_else(|| format!("{} serves no {kind} in {api_version}", set.label()))?;
                let mut root = raw.clone();
                strict(&mut root, true);
                let props = root["properties"].as_object_mut().expect("CRD schema has properties");
                props.insert("apiVersion".into(), json!({"type": "string"}));
                props.insert("kind".into(), json!({"type": "string"}));
                props.insert("metadata".into(), json!({"$ref": format!("#/components/schemas/{OBJECT_META}")}));
                root["additionalProperties"] = json!(false);
                root["components"] = json!({"schemas": &*self.core});
                root
            }
        };
        jsonschema::options()
            .with_draft(Draft::Draft4)
            .with_keyword("x-kubernetes-list-map-keys", list_map_keys)
            .build(&root)
            .map_err(|e| format!("schema of {api_version} {kind} does not compile: {e}"))
    }

    fn k8s_components(&self, api_version: &str) -> Option<Components> {
        if api_version == "v1" {
            return Some(self.core.clone());
        }
        let mut cache = self.k8s_components.lock().unwrap();
        cache
            .entry(api_version.to_string())
            .or_insert_with(|| {
                let (group, version) = split_api_version(api_version);
                let file = self.openapi_dir.join(format!("apis__{group}__{version}_openapi.json"));
                file.exists().then(|| Arc::new(load_components(&file)))
            })
            .clone()
    }
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// `components.schemas` of an OpenAPI v3 file, made strict.
fn load_components(file: &Path) -> Map<String, Value> {
    let doc: Value = serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let Value::Object(mut schemas) = doc["components"]["schemas"].clone() else {
        panic!("{}: no components.schemas", file.display());
    };
    for (name, s) in schemas.iter_mut() {
        strict(s, false);
        for (schema, property, values) in K8S_ENUMS {
            if name == schema {
                let p = &mut s["properties"][property];
                let target = if p["type"] == "array" { &mut p["items"] } else { p };
                target["enum"] = json!(values);
            }
        }
    }
    schemas
}

/// Closed sets of the Kubernetes fields magnetar uses. Kubernetes' OpenAPI v3
/// carries no `enum` (its Go validation checks them), so they are listed here.
const K8S_ENUMS: &[(&str, &str, &[&str])] = &[
    ("io.k8s.api.core.v1.ServiceSpec", "type", &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]),
    ("io.k8s.api.core.v1.ServiceSpec", "sessionAffinity", &["ClientIP", "None"]),
    ("io.k8s.api.core.v1.ServiceSpec", "externalTrafficPolicy", &["Cluster", "Local"]),
    ("io.k8s.api.core.v1.ServiceSpec", "internalTrafficPolicy", &["Cluster", "Local"]),
    ("io.k8s.api.core.v1.ServicePort", "protocol", &["TCP", "UDP", "SCTP"]),
    ("io.k8s.api.core.v1.ContainerPort", "protocol", &["TCP", "UDP", "SCTP"]),
    ("io.k8s.api.core.v1.Container", "imagePullPolicy", &["Always", "IfNotPresent", "Never"]),
    ("io.k8s.api.core.v1.Container", "terminationMessagePolicy", &["File", "FallbackToLogsOnError"]),
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy", &["Always", "OnFailure", "Never"]),
    ("io.k8s.api.core.v1.PodSpec", "dnsPolicy", &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]),
    ("io.k8s.api.core.v1.HTTPGetAction", "scheme", &["HTTP", "HTTPS"]),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        "accessModes",
        &["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"],
    ),
    ("io.k8s.api.core.v1.Toleration", "operator", &["Exists", "Equal"]),
    ("io.k8s.api.core.v1.Toleration", "effect", &["NoSchedule", "PreferNoSchedule", "NoExecute"]),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "podManagementPolicy", &["OrderedReady", "Parallel"]),
    ("io.k8s.api.apps.v1.StatefulSetUpdateStrategy", "type", &["RollingUpdate", "OnDelete"]),
    ("io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy", "whenDeleted", &["Retain", "Delete"]),
    ("io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy", "whenScaled", &["Retain", "Delete"]),
    ("io.k8s.api.apps.v1.DeploymentStrategy", "type", &["Recreate", "RollingUpdate"]),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "unhealthyPodEvictionPolicy", &["IfHealthyBudget", "AlwaysAllow"]),
];

/// (apiVersion, kind) -> openAPIV3Schema of every served CRD version.
fn istio_crds(yaml: &str) -> HashMap<(String, String), Value> {
    use serde::Deserialize;
    let mut out = HashMap::new();
    for de in serde_norway::Deserializer::from_str(yaml) {
        let crd = Value::deserialize(de).expect("Istio CRD YAML parses");
        if crd.is_null() {
            continue;
        }
        let group = crd["spec"]["group"].as_str().expect("CRD group");
        let kind = crd["spec"]["names"]["kind"].as_str().expect("CRD kind");
        for v in crd["spec"]["versions"].as_array().expect("CRD versions") {
            if v["served"] != json!(true) {
                continue;
            }
            let name = v["name"].as_str().expect("version name");
            let schema = v["schema"]["openAPIV3Schema"].clone();
            assert!(schema.is_object(), "{group}/{name} {kind} has no openAPIV3Schema");
            out.insert((format!("{group}/{name}"), kind.to_string()), schema);
        }
    }
    out
}

/// Adds `additionalProperties: false` where the API server refuses unknown
/// fields, and `uniqueItems` for set lists. Walks schema positions only.
fn strict(schema: &mut Value, crd: bool) {
    let Some(o) = schema.as_object_mut() else { return };
    if let Some(Value::Object(props)) = o.get_mut("properties") {
        for p in props.values_mut() {
            strict(p, crd);
        }
    }
    match o.get_mut("items") {
        Some(Value::Array(items)) => items.iter_mut().for_each(|i| strict(i, crd)),
        Some(item) => strict(item, crd),
        None => {}
    }
    if let Some(ap @ Value::Object(_)) = o.get_mut("additionalProperties") {
        strict(ap, crd);
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(a)) = o.get_mut(k) {
            a.iter_mut().for_each(|s| strict(s, crd));
        }
    }
    if let Some(n) = o.get_mut("not") {
        strict(n, crd);
    }
    let preserve = o.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let is_object = o.get("type").and_then(Value::as_str) == Some("object");
    if !preserve && !o.contains_key("additionalProperties") && (o.contains_key("properties") || (crd && is_object)) {
        o.insert("additionalProperties".into(), Value::Bool(false));
    }
    if o.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        o.insert("uniqueItems".into(), Value::Bool(true));
    }
}

/// Drops null-valued fields (the API server treats them as unset).
pub fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// `x-kubernetes-list-map-keys`: every item has the keys (`protocol`
/// defaults to TCP) and no two items share them.
struct ListMapKeys(Vec<String>);

impl ListMapKeys {
    fn problem(&self, instance: &Value) -> Option<String> {
        let items = instance.as_array()?;
        let mut seen: Vec<Vec<Value>> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let mut key = Vec::new();
            for k in &self.0 {
                match item.get(k) {
                    Some(v) if !v.is_null() => key.push(v.clone()),
                    _ if k == "protocol" => key.push(json!("TCP")),
                    _ => return Some(format!("item {i} lacks list-map key {k:?}")),
                }
            }
            if seen.contains(&key) {
                return Some(format!("duplicate entry for list-map keys {:?} = {}", self.0, Value::Array(key)));
            }
            seen.push(key);
        }
        None
    }
}

impl<'i> Keyword<'i> for ListMapKeys {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match self.problem(instance) {
            Some(p) => Err(ValidationError::custom(p)),
            None => Ok(()),
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        self.problem(instance).is_none()
    }
}

fn list_map_keys<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _path: Location,
) -> Result<Box<dyn for<'i> Keyword<'i>>, ValidationError<'a>> {
    let keys =
        value.as_array().map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default();
    Ok(Box::new(ListMapKeys(keys)))
}
