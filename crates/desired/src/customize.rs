//! `customization[]`: JSON merge patches on generated objects (SPEC 1.1).

use magnetar_api::common::{Customization, GroupVersionKindMatch};
use regex::Regex;
use serde_json::Value;

use crate::{FieldError, Invalid, Object};

/// A customization entry, parsed and compiled.
#[derive(Debug)]
struct Compiled<'a> {
    kinds: &'a [GroupVersionKindMatch],
    name: Option<Regex>,
    patch: Value,
}

impl Compiled<'_> {
    fn matches(&self, object: &Object) -> bool {
        let kind_ok = self.kinds.iter().any(|k| {
            k.kind == object.kind
                && k.group == object.group()
                && k.version.as_deref().is_none_or(|v| v.is_empty() || v == object.version())
        });
        kind_ok && self.name.as_ref().is_none_or(|re| re.is_match(&object.name))
    }
}

/// A resource's `customization[]`, checked and compiled once, by
/// validation; the build applies it with [`Patches::apply`].
#[derive(Debug, Default)]
pub struct Patches<'a>(Vec<Compiled<'a>>);

impl Patches<'_> {
    /// Merges each entry's manifest (RFC 7386) into every object it
    /// matches, in the order the entries are listed. Identity fields cannot
    /// be patched away.
    pub fn apply(&self, objects: &mut [Object]) {
        if self.0.is_empty() {
            return;
        }
        for object in objects.iter_mut() {
            let matching: Vec<&Compiled> = self.0.iter().filter(|c| c.matches(object)).collect();
            for c in &matching {
                json_patch::merge(&mut object.value, &c.patch);
            }
            if !matching.is_empty() {
                restore_identity(object);
            }
        }
    }
}

/// `pattern` anchored at both ends (it must match the whole name).
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    // Compile the pattern alone first: `a)|(b` is only valid inside the
    // anchoring wrapper, where it would no longer be anchored.
    Regex::new(pattern).and_then(|_| Regex::new(&format!("^(?:{pattern})$")))
}

/// Parses and compiles every entry; errors name `spec.customization[i]`.
pub fn compile(customization: &[Customization]) -> Result<Patches<'_>, Invalid> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, c) in customization.iter().enumerate() {
        let at = |field: &str| format!("spec.customization[{i}].{field}");
        let name = match c.match_.name.as_deref().filter(|n| !n.is_empty()) {
            None => None,
            Some(n) => match anchored(n) {
                Ok(re) => Some(re),
                Err(e) => {
                    let reason = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                    errors.push(FieldError {
                        path: at("match.name"),
                        message: format!(
                            "invalid regular expression {n:?} ({reason}): write a regex such as .*-broker$"
                        ),
                    });
                    None
                }
            },
        };
        let patch = match serde_norway::from_str::<Value>(&c.manifest) {
            Ok(v @ Value::Object(_)) => Some(v),
            Ok(_) => {
                errors.push(FieldError {
                    path: at("manifest"),
                    message: "must be a YAML mapping (a partial object such as `spec: {...}`)".into(),
                });
                None
            }
            Err(e) => {
                errors.push(FieldError { path: at("manifest"), message: format!("is not valid YAML: {e}") });
                None
            }
        };
        if c.match_.group_version_kinds.is_empty() {
            errors.push(FieldError {
                path: at("match.groupVersionKinds"),
                message: "must list at least one {group, kind}".into(),
            });
        }
        if let Some(patch) = patch {
            out.push(Compiled { kinds: &c.match_.group_version_kinds, name, patch });
        }
    }
    if errors.is_empty() { Ok(Patches(out)) } else { Err(Invalid(errors)) }
}

/// A patch may not rename, move or retype an object: the operator tracks it
/// by these fields.
fn restore_identity(object: &mut Object) {
    let v = &mut object.value;
    v["apiVersion"] = Value::String(object.api_version.clone());
    v["kind"] = Value::String(object.kind.clone());
    v["metadata"]["name"] = Value::String(object.name.clone());
    v["metadata"]["namespace"] = Value::String(object.namespace.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(api_version: &str, kind: &str, name: &str) -> Object {
        Object::from_value(json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"rules": [{"from": []}], "keep": 1}
        }))
    }

    fn custom(yaml: &str) -> Vec<Customization> {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn patch_hits_only_matching_kind_and_full_name() {
        let mut objs = vec![
            object("security.istio.io/v1", "AuthorizationPolicy", "pc-broker"),
            object("security.istio.io/v1", "AuthorizationPolicy", "pc-broker-x"),
            object("security.istio.io/v1", "PeerAuthentication", "pc-broker"),
        ];
        let c = custom(
            "- manifest: 'spec: {rules: [{to: [{operation: {ports: [\"6650\"]}}]}]}'\n  match: {groupVersionKinds: [{group: security.istio.io, kind: AuthorizationPolicy}], name: .*-broker}\n",
        );
        compile(&c).unwrap().apply(&mut objs);
        assert_eq!(objs[0].value["spec"], json!({"rules": [{"to": [{"operation": {"ports": ["6650"]}}]}], "keep": 1}));
        assert_eq!(objs[1].value["spec"]["rules"], json!([{"from": []}]), "anchored: -x suffix must not match");
        assert_eq!(objs[2].value["spec"]["rules"], json!([{"from": []}]), "other kind untouched");
    }

    #[test]
    fn null_removes_a_field_and_identity_survives() {
        let mut objs = vec![object("v1", "Service", "a")];
        let c = custom(
            "- manifest: '{metadata: {name: b}, spec: {keep: null}}'\n  match: {groupVersionKinds: [{group: '', kind: Service}]}\n",
        );
        compile(&c).unwrap().apply(&mut objs);
        assert_eq!(objs[0].value["metadata"]["name"], "a");
        assert!(objs[0].value["spec"].get("keep").is_none());
    }

    #[test]
    fn a_pattern_that_only_parses_inside_the_anchors_is_refused() {
        let c = custom("- manifest: 'spec: {}'\n  match: {groupVersionKinds: [{kind: Service}], name: 'a)|(b'}\n");
        assert!(
            compile(&c)
                .err()
                .unwrap()
                .to_string()
                .contains("spec.customization[0].match.name: invalid regular expression")
        );
    }

    #[test]
    fn patterns_are_anchored_and_checked_alone() {
        assert!(anchored(".*-broker").unwrap().is_match("pc-broker"));
        assert!(!anchored(".*-broker").unwrap().is_match("pc-broker-x"));
        assert!(anchored("a)|(b").is_err());
    }

    #[test]
    fn bad_regex_and_manifest_are_reported_with_paths() {
        let c = custom("- manifest: '- a list'\n  match: {groupVersionKinds: [{kind: Service}], name: '(['}\n");
        let err = compile(&c).err().unwrap().to_string();
        assert!(err.contains("spec.customization[0].match.name: invalid regular expression"), "{err}");
        assert!(err.contains("spec.customization[0].manifest: must be a YAML mapping"), "{err}");
    }
}
