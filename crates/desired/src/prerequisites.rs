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
pub const REASON_GATEWAY_API: &str = "GatewayAPIMissing";

/// A prerequisite of external access: something outside magnetar that
/// must exist for the gateway to route to the component.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prerequisite {
    /// A pod in `namespace` matching the gateway's `selector` (`k=v,...`).
    GatewayPods { namespace: String, selector: String },
    /// Secret `name` in the gateway's `namespace` (SIMPLE mode).
    TlsSecret { namespace: String, name: String },
    /// `gatewayAPI` is set but the API server does not serve the Gateway
    /// API's v1 kinds (the operator's discovery finds them when they come).
    GatewayApiCrds,
}

impl Prerequisite {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Prerequisite::GatewayPods { .. } => REASON_GATEWAY_PODS,
            Prerequisite::TlsSecret { .. } => REASON_GATEWAY_SECRET,
            Prerequisite::GatewayApiCrds => REASON_GATEWAY_API,
        }
    }

    /// When it is missing: what, the field that names it, and the fix.
    pub fn message(&self, path: &str) -> String {
        match self {
            Prerequisite::GatewayPods { namespace, selector } => format!(
                "{path}.selector matches no pod in namespace {namespace} ({selector}): install the Istio ingress gateway there, or set gateway.selector to its pod labels and gateway.namespace to its namespace"
            ),
            Prerequisite::GatewayApiCrds => format!(
                "{path}.gatewayAPI: the cluster does not serve the Gateway API's v1 Gateway, HTTPRoute and TLSRoute: install the standard channel of Gateway API 1.5 or later (kubectl apply --server-side -f standard-install.yaml from its release), or remove gatewayAPI to use Istio's Gateway and VirtualServices"
            ),
            Prerequisite::TlsSecret { namespace, name } => format!(
                "{path}.tls.certSecretName: Secret {name} does not exist in namespace {namespace}, where the gateway reads it: create it there (kubectl -n {namespace} create secret tls {name} --cert=... --key=...)"
            ),
        }
    }
}

/// The prerequisites of external access through `gw`.
pub fn of(gw: &GatewaySpec, own_namespace: &str) -> Vec<Prerequisite> {
    let namespace = gw.namespace().to_string();
    let mut out = Vec::new();
    // Gateway API: the implementation runs the Gateway's pods (istiod
    // creates them for a Gateway of class istio), or the user's Gateways
    // serve the routes; there is no selector to look for.
    if gw.gateways.is_empty() && gw.gateway_api.is_none() {
        out.push(Prerequisite::GatewayPods {
            namespace: namespace.clone(),
            selector: names::label_selector(&gw.selector()),
        });
    }
    if gw.tls_mode() == GatewayTlsMode::Simple
        && let Some((namespace, name)) = certificate_secret(gw, own_namespace)
    {
        out.push(Prerequisite::TlsSecret { namespace, name });
    }
    out
}

/// The certificate Secret of the gateway, and where it must be: in SIMPLE
/// mode where the gateway reads it (the Istio ingress gateway's namespace,
/// or the namespace of the Gateway API Gateway magnetar creates, the
/// component's), in PASSTHROUGH mode beside the component, which serves it.
/// None when the user's own Gateway API Gateways hold the certificates.
pub fn certificate_secret(gw: &GatewaySpec, own_namespace: &str) -> Option<(String, String)> {
    let name = gw.cert_secret_name()?;
    let api = gw.gateway_api.as_ref();
    if api.is_some_and(|a| a.gateway_class_name.is_none()) && gw.tls_mode() == GatewayTlsMode::Simple {
        return None;
    }
    let namespace = match gw.tls_mode() {
        GatewayTlsMode::Simple if api.is_some() => own_namespace,
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
        let needs = of(&gw("{namespace: gw, selector: {istio: ingressgateway}, tls: {certSecretName: t}}"), "pulsar");
        assert_eq!(
            needs,
            [
                Prerequisite::GatewayPods { namespace: "gw".into(), selector: "istio=ingressgateway".into() },
                Prerequisite::TlsSecret { namespace: "gw".into(), name: "t".into() },
            ]
        );
        let passthrough = of(&gw("{tls: {mode: passthrough, certSecretName: t}}"), "pulsar");
        assert!(passthrough.iter().all(|p| matches!(p, Prerequisite::GatewayPods { .. })), "{passthrough:?}");
        assert!(of(&gw("{gateways: [istio-system/shared], tls: {mode: passthrough}}"), "pulsar").is_empty());
        // Gateway API: no selector to look for; the created Gateway reads
        // its certificate beside it, the user's Gateways hold their own.
        let created = of(&gw("{gatewayAPI: {gatewayClassName: istio}, tls: {certSecretName: t}}"), "pulsar");
        assert_eq!(created, [Prerequisite::TlsSecret { namespace: "pulsar".into(), name: "t".into() }]);
        assert!(of(&gw("{gatewayAPI: {parentRefs: [{name: shared}]}, tls: {certSecretName: t}}"), "pulsar").is_empty());
        let secret = |y: &str| certificate_secret(&gw(y), "pulsar");
        assert_eq!(secret("{namespace: gw, tls: {certSecretName: t}}"), Some(("gw".into(), "t".into())));
        assert_eq!(
            secret("{namespace: gw, tls: {mode: passthrough, certSecretName: t}}"),
            Some(("pulsar".into(), "t".into()))
        );
    }
}
