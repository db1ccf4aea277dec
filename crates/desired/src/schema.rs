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

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<FieldError>, is_status: bool) {
    if schema.is_null() {
        if !is_status {
            out.push(FieldError {
                path: path.to_string(),
                message: "unknown field: magnetar does not implement it (remove it; see `kubectl explain`)".into(),
            });
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
