//! What a broker's or proxy's external access needs from outside magnetar
//! (decided here, once): the ingress gateway's pods when magnetar generates
//! the Gateway, and in SIMPLE mode the TLS secret in the gateway's
//! namespace. The operator checks them against the cluster and holds back
//! only the external part while one is missing; `magnetar doctor` reports
//! the same list.

use magnetar_api::istio::{GatewaySpec, GatewayTlsMode};

use crate::names;

/// Condition reason when the gateway's pods are missing.
pub const REASON_GATEWAY_PODS: &str = "GatewayPodsMissing";
/// Condition reason when the gateway's TLS secret is missing.
pub const REASON_GATEWAY_SECRET: &str = "GatewaySecretMissing";

/// A prerequisite of external access: something outside magnetar that
/// must exist for the gateway to route to the component.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prerequisite {
    /// A pod in `namespace` matching the gateway's `selector` (`k=v,...`).
    GatewayPods { namespace: String, selector: String },
    /// Secret `name` in the gateway's `namespace` (SIMPLE mode).
    TlsSecret { namespace: String, name: String },
}

impl Prerequisite {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Prerequisite::GatewayPods { .. } => REASON_GATEWAY_PODS,
            Prerequisite::TlsSecret { .. } => REASON_GATEWAY_SECRET,
        }
    }

    /// When it is missing: what, the field that names it, and the fix.
    pub fn message(&self, path: &str) -> String {
        match self {
            Prerequisite::GatewayPods { namespace, selector } => format!(
                "{path}.selector matches no pod in namespace {namespace} ({selector}): install the Istio ingress gateway there, or set gateway.selector to its pod labels and gateway.namespace to its namespace"
            ),
            Prerequisite::TlsSecret { namespace, name } => format!(
                "{path}.tls.certSecretName: Secret {name} does not exist in namespace {namespace}, where the gateway reads it: create it there (kubectl -n {namespace} create secret tls {name} --cert=... --key=...)"
            ),
        }
    }
}

/// The prerequisites of external access through `gw`.
pub fn of(gw: &GatewaySpec) -> Vec<Prerequisite> {
    let namespace = gw.namespace().to_string();
    let mut out = Vec::new();
    // With user-named gateways (gw.gateways) magnetar generates no Gateway
    // and selects no pods: the user's Gateway is theirs to run.
    if gw.gateways.is_empty() {
        out.push(Prerequisite::GatewayPods {
            namespace: namespace.clone(),
            selector: names::label_selector(&gw.selector()),
        });
    }
    if gw.tls_mode() == GatewayTlsMode::Simple
        && let Some((namespace, name)) = certificate_secret(gw, &namespace)
    {
        out.push(Prerequisite::TlsSecret { namespace, name });
    }
    out
}

/// The Secret `(namespace, name)` with the certificate the external hosts
/// are served with: the gateway's own in SIMPLE mode, read from the
/// gateway's namespace; in PASSTHROUGH mode the one the brokers or proxies
/// mount, from their namespace `own_namespace`.
pub fn certificate_secret(gw: &GatewaySpec, own_namespace: &str) -> Option<(String, String)> {
    let name = gw.cert_secret_name()?;
    let namespace = match gw.tls_mode() {
        GatewayTlsMode::Simple => gw.namespace(),
        GatewayTlsMode::Passthrough => own_namespace,
    };
    Some((namespace.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(yaml: &str) -> GatewaySpec {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn simple_mode_needs_pods_and_the_secret_in_the_gateway_namespace() {
        let needs = of(&gw("{namespace: gw, selector: {istio: ingressgateway}, tls: {certSecretName: t}}"));
        assert_eq!(
            needs,
            [
                Prerequisite::GatewayPods { namespace: "gw".into(), selector: "istio=ingressgateway".into() },
                Prerequisite::TlsSecret { namespace: "gw".into(), name: "t".into() },
            ]
        );
        let passthrough = of(&gw("{tls: {mode: passthrough, certSecretName: t}}"));
        assert!(passthrough.iter().all(|p| matches!(p, Prerequisite::GatewayPods { .. })), "{passthrough:?}");
        assert!(of(&gw("{gateways: [istio-system/shared], tls: {mode: passthrough}}")).is_empty());
        let secret = |y: &str| certificate_secret(&gw(y), "pulsar");
        assert_eq!(secret("{namespace: gw, tls: {certSecretName: t}}"), Some(("gw".into(), "t".into())));
        assert_eq!(
            secret("{namespace: gw, tls: {mode: passthrough, certSecretName: t}}"),
            Some(("pulsar".into(), "t".into()))
        );
    }
}
