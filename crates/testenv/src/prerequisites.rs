//! What StreamNative's Istio guide has a user install before the Pulsar
//! cluster, stood in for on the local control plane: an ingress gateway
//! Deployment (kwok runs its pods) with the guide's labels and identity, and
//! self-signed TLS secrets for the brokers' gateways. With them the operator's
//! checks (gateway pods exist, certificate secret present) pass as they
//! would on a real cluster.

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use magnetar_api::PulsarBroker;
use serde_json::json;

use crate::apply::ensure_namespace;

/// Namespace, ServiceAccount and labels of the stand-in gateway.
pub const GATEWAY_NAMESPACE: &str = "istio-system";
pub const GATEWAY_SERVICE_ACCOUNT: &str = "istio-ingressgateway-service-account";

/// Installs the ingress gateway stand-in (idempotent).
pub async fn install(client: &Client) -> anyhow::Result<()> {
    ensure_namespace(client, GATEWAY_NAMESPACE).await?;
    let pp = PatchParams::apply("magnetar-dev").force();
    let sa: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": GATEWAY_SERVICE_ACCOUNT, "namespace": GATEWAY_NAMESPACE}
    }))?;
    Api::<ServiceAccount>::namespaced(client.clone(), GATEWAY_NAMESPACE)
        .patch(GATEWAY_SERVICE_ACCOUNT, &pp, &Patch::Apply(&sa))
        .await?;
    // Both label sets the StreamNative examples select on.
    let labels = json!({"app": "istio-ingressgateway", "istio": "ingressgateway", "cloud.streamnative.io/role": "istio-ingressgateway"});
    let deploy: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istio-ingressgateway", "namespace": GATEWAY_NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "istio-ingressgateway"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": GATEWAY_SERVICE_ACCOUNT,
                    "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.2"}]
                }
            }
        }
    }))?;
    Api::<Deployment>::namespaced(client.clone(), GATEWAY_NAMESPACE)
        .patch("istio-ingressgateway", &pp, &Patch::Apply(&deploy))
        .await?;
    // Istio's gateway chart's Service, with the ports StreamNative's guide
    // adds for Pulsar, Kafka, MQTT and AMQP over TLS.
    let mut ports = vec![
        json!({"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}),
        json!({"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"}),
        json!({"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}),
    ];
    for (name, port) in [("tls-pulsar", 6651), ("tls-kafka", 9093), ("tls-mqtt", 8883), ("tls-amqp", 5671)] {
        ports.push(json!({"name": name, "port": port, "targetPort": port, "protocol": "TCP"}));
    }
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "istio-ingressgateway", "namespace": GATEWAY_NAMESPACE},
        "spec": {"type": "ClusterIP", "selector": {"app": "istio-ingressgateway", "istio": "ingressgateway"}, "ports": ports}
    }))?;
    Api::<Service>::namespaced(client.clone(), GATEWAY_NAMESPACE)
        .patch("istio-ingressgateway", &pp, &Patch::Apply(&service))
        .await?;
    Ok(())
}

/// A self-signed TLS secret `namespace/name` for `names` (idempotent: an
/// existing secret is left as it is). Returns whether it was created.
pub async fn ensure_tls_secret(client: &Client, ns: &str, name: &str, names: &[String]) -> anyhow::Result<bool> {
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    if api.get_opt(name).await?.is_some() {
        return Ok(false);
    }
    ensure_namespace(client, ns).await?;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(names.to_vec())?.self_signed(&key)?;
    let mut body: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": ns},
    }))?;
    body.data = Some(
        [
            ("tls.crt".to_string(), ByteString(cert.pem().into_bytes())),
            ("tls.key".to_string(), ByteString(key.serialize_pem().into_bytes())),
        ]
        .into(),
    );
    api.patch(name, &PatchParams::apply("magnetar-dev").force(), &Patch::Apply(&body)).await?;
    Ok(true)
}

/// Creates a self-signed TLS secret for every broker gateway whose secret is
/// missing, covering the main host and `*.<parent domain>` (which covers
/// OrdinalPrefix hosts) and `*.<domain>` (FQDN and NameUIDPrefix hosts).
pub async fn ensure_tls_secrets(client: &Client) -> anyhow::Result<Vec<String>> {
    let mut created = Vec::new();
    let brokers = Api::<PulsarBroker>::all(client.clone()).list(&ListParams::default()).await?;
    for b in brokers.items {
        let Some(istio) = b.spec.istio.as_ref() else { continue };
        let Some(gw) = istio.gateway.as_ref() else { continue };
        let Some(secret) = gw.cert_secret_name() else { continue };
        let Some(domain) = b.spec.config.as_ref().and_then(|c| c.advertised_domain.clone()) else { continue };
        let ns = match gw.tls_mode() {
            magnetar_api::istio::GatewayTlsMode::Simple => gw.namespace().to_string(),
            magnetar_api::istio::GatewayTlsMode::Passthrough => b.namespace().unwrap_or_default(),
        };
        let mut names = vec![domain.clone(), format!("*.{domain}")];
        if let Some((_, parent)) = domain.split_once('.') {
            names.push(format!("*.{parent}"));
        }
        if !ensure_tls_secret(client, &ns, secret, &names).await? {
            continue;
        }
        created.push(format!("{ns}/{secret}"));
    }
    Ok(created)
}
