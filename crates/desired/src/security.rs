//! Pulsar's own security at the edge. Inside the cluster the mesh
//! authenticates every workload (STRICT mTLS) and the AuthorizationPolicies
//! say who may talk to whom; the ingress gateway, though, is allowed to
//! reach a broker's or proxy's external ports on behalf of anyone on the
//! internet. Past the gateway only Pulsar's own authentication tells one
//! client from another, so an exposed broker or proxy without it serves its
//! admin REST API and binary protocol to everybody (docs/security.md).

use std::collections::BTreeMap;

use magnetar_api::auth::Authentication;
use magnetar_api::common::PodSpec;

use crate::components::config_files::PULSAR_PREFIX;
use crate::components::pulsar_auth;

/// The configuration key that turns Pulsar's authentication on.
pub const AUTHENTICATION_ENABLED: &str = "authenticationEnabled";

/// Condition reason, and Event reason, of an exposed component without
/// Pulsar authentication.
pub const REASON_UNAUTHENTICATED: &str = "ExposedWithoutAuthentication";
/// Condition reason when an exposed component authenticates its clients.
pub const REASON_AUTHENTICATED: &str = "PulsarAuthenticationEnabled";

/// Whether the component's configuration turns Pulsar's authentication on:
/// `config.authentication` (JWT, or TLS certificates enabled),
/// `authenticationEnabled: "true"` in `config.custom` (as is or with
/// `PULSAR_PREFIX_`), or a `pod.vars` entry of either name, which the
/// start-up script's `apply-config-from-env.py` applies the same way.
pub fn authentication_enabled(
    typed: Option<&Authentication>,
    custom: &BTreeMap<String, String>,
    pod: Option<&PodSpec>,
) -> bool {
    let prefixed = format!("{PULSAR_PREFIX}{AUTHENTICATION_ENABLED}");
    let names = [AUTHENTICATION_ENABLED, prefixed.as_str()];
    let on = |v: &str| v.trim().eq_ignore_ascii_case("true");
    let in_custom = names.iter().any(|n| custom.get(*n).is_some_and(|v| on(v)));
    let in_vars = pod
        .into_iter()
        .flat_map(|p| &p.vars)
        .any(|v| names.contains(&v.name.as_str()) && v.value.as_deref().is_some_and(on));
    pulsar_auth::authenticates(typed) || in_custom || in_vars
}

/// Reachable through a gateway (`exposed`) with Pulsar's authentication off.
pub fn exposed_without_authentication(
    exposed: bool,
    typed: Option<&Authentication>,
    custom: &BTreeMap<String, String>,
    pod: Option<&PodSpec>,
) -> bool {
    exposed && !authentication_enabled(typed, custom, pod)
}

/// The warning for `kind` reachable through the gateway with Pulsar's
/// authentication off, naming the fix.
pub fn unauthenticated_exposure(kind: &str) -> String {
    format!(
        "this {kind} is reachable from outside the cluster through the Istio ingress gateway, but Pulsar's own authentication is off: anyone who reaches the gateway can use its admin REST API and binary protocol. Turn it on (config.authentication.jwt with tokenSecretKey or tokenPublicKey, config.authorization.superUserRoles, the key mounted through pod.secretRefs; see docs/security.md), or remove istio.gateway"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EnvVar;

    fn custom(k: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(k.to_string(), v.to_string())])
    }

    #[test]
    fn authentication_is_on_through_custom_prefix_or_vars() {
        assert!(authentication_enabled(None, &custom("authenticationEnabled", "true"), None));
        assert!(authentication_enabled(None, &custom("PULSAR_PREFIX_authenticationEnabled", " TRUE "), None));
        assert!(!authentication_enabled(None, &custom("authenticationEnabled", "false"), None));
        assert!(!authentication_enabled(None, &BTreeMap::new(), None));
        let var = |name: &str, value: &str| PodSpec {
            vars: vec![EnvVar { name: name.into(), value: Some(value.into()), value_from: None }],
            ..PodSpec::default()
        };
        assert!(authentication_enabled(None, &BTreeMap::new(), Some(&var("authenticationEnabled", "true"))));
        assert!(!authentication_enabled(None, &BTreeMap::new(), Some(&var("authorizationEnabled", "true"))));
    }
}
