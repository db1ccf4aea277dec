//! The offline render pipeline behind `magnetar render`: YAML documents in,
//! every object the operator would create out — through the same
//! propagation, validation and build as the live operator.

use std::fmt;

use kube::{Resource, ResourceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use magnetar_api::{MainKind, PulsarBroker, PulsarCoordinator};

use crate::cluster::{ClusterKey, Inventory};
use crate::schema;
use crate::{BuildContext, FieldError, Invalid, Object, OperatorIdentity, propagate};

/// The objects, plus notes for stderr (skipped kinds, provisional hosts).
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    pub objects: Vec<Object>,
    pub notes: Vec<String>,
}

/// An invalid input document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentError {
    pub source: String,
    /// 1-based position of the document in its file.
    pub document: usize,
    /// `Kind/name`, when the document got that far.
    pub object: Option<String>,
    pub error: FieldError,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.source, self.document)?;
        if let Some(o) = &self.object {
            write!(f, " ({o})")?;
        }
        write!(f, ": {}", self.error)
    }
}

/// Every invalid document found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError(pub Vec<DocumentError>);

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for RenderError {}

/// One input document.
struct Doc {
    source: String,
    index: usize,
    kind: MainKind,
    value: Value,
}

impl Doc {
    fn label(&self) -> String {
        format!(
            "{}/{}",
            self.value["kind"].as_str().unwrap_or("?"),
            self.value["metadata"]["name"].as_str().unwrap_or("?")
        )
    }

    fn error(&self, e: FieldError) -> DocumentError {
        DocumentError { source: self.source.clone(), document: self.index, object: Some(self.label()), error: e }
    }
}

/// Settings of the environment `render` stands in for (the live operator
/// gets the same from its command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// The cluster DNS domain (checked by the caller, see
    /// [`crate::names::check_cluster_domain`]).
    pub cluster_domain: String,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { cluster_domain: crate::names::DEFAULT_CLUSTER_DOMAIN.into() }
    }
}

/// Renders `(source name, content)` inputs with the default options.
pub fn render(inputs: &[(String, String)]) -> Result<Rendered, RenderError> {
    render_with(inputs, &RenderOptions::default())
}

/// Renders `(source name, content)` inputs.
pub fn render_with(inputs: &[(String, String)], options: &RenderOptions) -> Result<Rendered, RenderError> {
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    let docs = parse(inputs, &mut notes, &mut errors);
    duplicates(&docs, &mut errors);

    // Coordinators first: components need them for propagation.
    let mut inventory = Inventory::default();
    for d in docs.iter().filter(|d| d.kind == MainKind::Coordinator) {
        match typed::<PulsarCoordinator>(&d.value) {
            Ok(c) => inventory.coordinators.push(c),
            Err(e) => errors.push(d.error(e)),
        }
    }
    let mut components = Vec::new();
    for d in docs.iter().filter(|d| d.kind != MainKind::Coordinator) {
        let mut value = d.value.clone();
        let meta: kube::core::ObjectMeta = serde_json::from_value(value["metadata"].clone()).unwrap_or_default();
        if let Some(c) = inventory.coordinator_of(&meta) {
            propagate::apply(&c.spec, &mut value);
        }
        let res = match d.kind {
            MainKind::ZooKeeper => typed(&value).map(|r| inventory.zookeepers.push(r)),
            MainKind::BookKeeper => typed(&value).map(|r| inventory.bookkeepers.push(r)),
            MainKind::Broker => typed(&value).map(|r| inventory.brokers.push(r)),
            MainKind::Proxy => typed(&value).map(|r| inventory.proxies.push(r)),
            MainKind::Coordinator => Ok(()),
        };
        match res {
            Ok(()) => components.push(d),
            Err(e) => errors.push(d.error(e)),
        }
    }
    if !errors.is_empty() {
        return Err(RenderError(errors));
    }

    let objects = build_all(&inventory, &docs, options, &mut notes, &mut errors);
    if errors.is_empty() { Ok(Rendered { objects, notes }) } else { Err(RenderError(errors)) }
}

/// Builds every resource of the inventory; errors point at its document.
fn build_all(
    inv: &Inventory,
    docs: &[Doc],
    options: &RenderOptions,
    notes: &mut Vec<String>,
    errors: &mut Vec<DocumentError>,
) -> Vec<Object> {
    let operator = OperatorIdentity::default();
    let context_for = |meta: &kube::core::ObjectMeta| BuildContext {
        cluster_domain: options.cluster_domain.clone(),
        ..inv.context_for(meta, &operator)
    };
    let mut objects = Vec::new();
    let doc_of = |kind: MainKind, ns: Option<String>, name: String| {
        docs.iter().find(|d| {
            d.kind == kind
                && d.value["metadata"]["name"].as_str() == Some(name.as_str())
                && d.value["metadata"]["namespace"].as_str().map(str::to_string) == ns
        })
    };
    let mut collect = |kind: MainKind, meta: &kube::core::ObjectMeta, result: Result<Vec<Object>, Invalid>| match result
    {
        Ok(objs) => objects.extend(objs),
        Err(Invalid(errs)) => {
            if let Some(d) = doc_of(kind, meta.namespace.clone(), meta.name.clone().unwrap_or_default()) {
                errors.extend(errs.into_iter().map(|e| d.error(e)));
            }
        }
    };
    for r in &inv.zookeepers {
        collect(MainKind::ZooKeeper, r.meta(), crate::build_zookeeper(r, &context_for(r.meta())));
    }
    for r in &inv.bookkeepers {
        collect(MainKind::BookKeeper, r.meta(), crate::build_bookkeeper(r, &context_for(r.meta())));
    }
    for r in &inv.brokers {
        provisional_hosts(r, notes);
        collect(MainKind::Broker, r.meta(), crate::build_broker(r, &context_for(r.meta())));
    }
    for r in &inv.proxies {
        collect(MainKind::Proxy, r.meta(), crate::build_proxy(r, &context_for(r.meta())));
    }
    for c in &inv.coordinators {
        let ns = c.namespace().unwrap_or_default();
        let brokers = inv.brokers_of(&ns, &ClusterKey::Coordinator(c.name_any()));
        let ctx = context_for(c.meta());
        collect(MainKind::Coordinator, c.meta(), crate::build_coordinator(c, &brokers, &ctx));
    }
    let all = inv.coordinators.iter().map(|c| c.meta()).chain(inv.zookeepers.iter().map(|c| c.meta()));
    let all = all
        .chain(inv.bookkeepers.iter().map(|c| c.meta()))
        .chain(inv.brokers.iter().map(|c| c.meta()))
        .chain(inv.proxies.iter().map(|c| c.meta()));
    let without_uid: Vec<String> =
        all.filter(|m| m.uid.as_deref().is_none_or(str::is_empty)).filter_map(|m| m.name.clone()).collect();
    if !without_uid.is_empty() {
        notes.push(format!(
            "note: {} input resource(s) have no metadata.uid ({}); their objects carry no ownerReferences (the live operator adds them)",
            without_uid.len(),
            without_uid.join(", ")
        ));
    }
    crate::object::sort(&mut objects);
    objects
}

fn provisional_hosts(b: &PulsarBroker, notes: &mut Vec<String>) {
    let listeners = crate::listeners::BrokerListeners::of(b);
    if let Some(ext) = listeners.external
        && !ext.hosts.uid_known
    {
        notes.push(format!(
            "note: PulsarBroker/{}: per-broker hosts ({}, ...) are provisional: NameUIDPrefix needs metadata.uid, which the API server assigns",
            b.name_any(),
            ext.hosts.host(0)
        ));
    }
}

/// The same resource twice would make the output depend on input order.
fn duplicates(docs: &[Doc], errors: &mut Vec<DocumentError>) {
    for (i, d) in docs.iter().enumerate() {
        if let Some(first) = docs[..i].iter().find(|o| {
            o.kind == d.kind
                && o.value["metadata"]["name"] == d.value["metadata"]["name"]
                && o.value["metadata"]["namespace"] == d.value["metadata"]["namespace"]
        }) {
            errors.push(d.error(FieldError {
                path: "metadata.name".into(),
                message: format!(
                    "duplicate: {} document {} already defines {} in namespace {}; remove one",
                    first.source,
                    first.index,
                    d.label(),
                    d.value["metadata"]["namespace"].as_str().unwrap_or_default()
                ),
            }));
        }
    }
}

/// Splits inputs into documents; unmanaged kinds become notes.
fn parse(inputs: &[(String, String)], notes: &mut Vec<String>, errors: &mut Vec<DocumentError>) -> Vec<Doc> {
    let mut docs = Vec::new();
    for (source, text) in inputs {
        for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
            let index = i + 1;
            let err = |e: FieldError| DocumentError { source: source.clone(), document: index, object: None, error: e };
            let value = match Value::deserialize(de) {
                Ok(Value::Null) => continue,
                Ok(v) => v,
                Err(e) => {
                    errors.push(err(FieldError { path: String::new(), message: format!("not valid YAML: {e}") }));
                    break; // the parser cannot resynchronise after a syntax error
                }
            };
            let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind_name = value["kind"].as_str().unwrap_or_default().to_string();
            if api_version.is_empty() || kind_name.is_empty() {
                errors.push(err(FieldError {
                    path: if api_version.is_empty() { "apiVersion".into() } else { "kind".into() },
                    message: "is required in every document".into(),
                }));
                continue;
            }
            let Some(kind) = MainKind::from_type(&api_version, &kind_name) else {
                let name = value["metadata"]["name"].as_str().unwrap_or("?");
                notes.push(format!("note: {source}: document {index}: skipped {kind_name}/{name} ({api_version}): not a kind magnetar manages"));
                continue;
            };
            let mut value = value;
            if value["metadata"]["namespace"].as_str().is_none_or(str::is_empty) {
                value["metadata"]["namespace"] = Value::String("default".into());
            }
            let doc = Doc { source: source.clone(), index, kind, value };
            let unknown = schema::unknown_fields(&api_version, &kind_name, &doc.value);
            if unknown.is_empty() {
                docs.push(doc);
            } else {
                errors.extend(unknown.into_iter().map(|e| doc.error(e)));
            }
        }
    }
    docs
}

/// Deserializes a document into a typed resource, naming the field on error.
fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        FieldError { path: if path == "." { String::new() } else { path }, message: e.into_inner().to_string() }
    })
}
