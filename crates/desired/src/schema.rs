//! Strict field validation offline: fields the CRD schema does not declare
//! are refused, as the API server does with `fieldValidation=Strict`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::FieldError;

fn schemas() -> &'static HashMap<(String, String), Value> {
    static SCHEMAS: OnceLock<HashMap<(String, String), Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        magnetar_api::crds()
            .into_iter()
            .flat_map(|crd| {
                let kind = crd.spec.names.kind.clone();
                let group = crd.spec.group.clone();
                crd.spec.versions.into_iter().filter_map(move |v| {
                    let schema = serde_json::to_value(v.schema?.open_api_v3_schema?).ok()?;
                    Some(((format!("{group}/{}", v.name), kind.clone()), schema))
                })
            })
            .collect()
    })
}

/// Fields of `value` that the CRD schema of `api_version`/`kind` lacks.
pub fn unknown_fields(api_version: &str, kind: &str, value: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Some(schema) = schemas().get(&(api_version.to_string(), kind.to_string())) {
        for (key, v) in value.as_object().into_iter().flatten() {
            match key.as_str() {
                "apiVersion" | "kind" | "metadata" => {}
                _ => walk(&schema["properties"][key], v, key, &mut out, key == "status"),
            }
        }
    }
    out
}

/// Fields of StreamNative's CRDs that belong to StreamNative's platform
/// (their cloud services and closed engines), by path below `spec`, with
/// what to do instead. magnetar will not implement these, so the error says
/// so rather than "not implemented".
const PLATFORM_FEATURES: [(&str, &str); 19] = [
    ("apiObjects", "use spec.customization to patch the objects magnetar generates"),
    ("config.ursa", "the Ursa storage engine is StreamNative's; magnetar runs Apache Pulsar's BookKeeper storage"),
    ("config.useStorageCatalog", "storage catalogs belong to StreamNative's Ursa engine"),
    ("config.oxiaBasedSystemTopic", "set the system topic store through config.custom if your image supports it"),
    ("config.tieredStorageConfig", "lakehouse storage (delta, iceberg, hdfs) belongs to StreamNative's Ursa engine"),
    (
        "config.managedLedgerOffloadConfig",
        "its metadata stores are StreamNative's; Pulsar's own offloaders take their broker.conf keys through config.custom",
    ),
    ("config.readOnly", "read-only zones are StreamNative's"),
    ("interceptors", "configure broker interceptors through config.custom and pod.volumes"),
    ("auditLog", "StreamNative's audit log needs their platform services"),
    ("detector", "StreamNative's detector needs their platform services"),
    ("fullMetrics", "scrape the components' own /metrics endpoints instead"),
    ("kafkaConnect", "run Kafka Connect yourself against KoP"),
    ("pfsql", "StreamNative's Pulsar Functions SQL needs their platform services"),
    ("placement", "use pod.affinity, pod.nodeSelector and pod.topologySpreadConstraints"),
    ("troubleshootings", "use magnetar doctor"),
    ("authentication.apiKey", "StreamNative's API keys need their cloud identity service"),
    (
        "config.authentication.apiKey",
        "StreamNative's API keys need their cloud identity service; use config.authentication.jwt",
    ),
    (
        "config.authorization.rbac",
        "StreamNative's RBAC needs their platform services; use config.authorization.superUserRoles and Pulsar's namespace permissions",
    ),
    ("toolSet.isNativeKafka", "the toolset runs Pulsar's tools"),
];

/// StreamNative fields for work magnetar does another way, or leaves to
/// other tools, and what to do instead.
const DONE_OTHERWISE: [(&str, &str); 4] = [
    (
        "issuerRef",
        "magnetar does not request certificates from cert-manager: create a Certificate for dnsNames yourself and name its Secret in config.tls.certSecretName",
    ),
    (
        "initJobPod",
        "magnetar runs no initialization Job: each broker registers the cluster's metadata itself at start-up; pod settings go in spec.pod",
    ),
    (
        "pod.updateStrategy",
        "magnetar rolls the pods itself, one at a time, when their configuration changes; on brokers spec.updateStrategy.partition holds pods back",
    ),
    (
        "dnsNames",
        "the brokers' external host names come from config.advertisedDomain and config.serviceURLGenerationPolicy, one per broker",
    ),
];

/// The message for a field the schema lacks: StreamNative's platform
/// features are named as such, anything else is unknown.
fn unknown_field_message(path: &str) -> String {
    let below_spec = path.strip_prefix("spec.").unwrap_or(path);
    if let Some(instead) = entry_for(&DONE_OTHERWISE, below_spec) {
        return format!("is not supported: remove it ({instead})");
    }
    match entry_for(&PLATFORM_FEATURES, below_spec) {
        Some(instead) => {
            format!("is a StreamNative Platform feature that magnetar does not provide: remove it ({instead})")
        }
        None => {
            "unknown field: magnetar does not implement it (remove it; see `kubectl explain` and docs/compatibility.md)"
                .into()
        }
    }
}

/// The advice of the table row whose field is `path` or contains it.
fn entry_for(table: &[(&str, &'static str)], path: &str) -> Option<&'static str> {
    let within = |f: &str| path == f || path.strip_prefix(f).is_some_and(|r| r.starts_with(['.', '[']));
    table.iter().find(|(f, _)| within(f)).map(|(_, instead)| *instead)
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<FieldError>, is_status: bool) {
    if schema.is_null() {
        if !is_status {
            out.push(FieldError { path: path.to_string(), message: unknown_field_message(path) });
        }
        return;
    }
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in map {
                    let child = format!("{path}.{k}");
                    match props.get(k) {
                        Some(s) => walk(s, v, &child, out, false),
                        None => walk(&Value::Null, v, &child, out, false),
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for (k, v) in map {
                    walk(&schema["additionalProperties"], v, &format!("{path}.{k}"), out, false);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(&schema["items"], v, &format!("{path}[{i}]"), out, false);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_features_are_named_as_such_and_typos_are_unknown() {
        assert!(unknown_field_message("spec.config.ursa").starts_with("is a StreamNative Platform feature"));
        assert!(unknown_field_message("spec.apiObjects.statefulSet").contains("spec.customization"));
        assert!(unknown_field_message("spec.detector").contains("Platform"));
        assert!(unknown_field_message("spec.config.ursaX").starts_with("unknown field"));
        assert!(unknown_field_message("spec.replicaz").starts_with("unknown field"));
        assert!(unknown_field_message("spec.initJobPod.resources").contains("no initialization Job"));
        assert!(unknown_field_message("spec.pod.updateStrategy").contains("rolls the pods itself"));
        assert!(unknown_field_message("spec.config.tieredStorageConfig.type").contains("Platform"));
        let issuer = unknown_field_message("spec.issuerRef.name");
        assert!(issuer.starts_with("is not supported") && issuer.contains("config.tls.certSecretName"), "{issuer}");
        assert!(unknown_field_message("spec.issuerRefs").starts_with("unknown field"));
    }
}
