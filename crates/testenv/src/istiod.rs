//! Istio's own control plane in the test control plane: `pilot-discovery`
//! (istiod), built from the pinned `istio.io/istio` module by
//! `tools/build-istio.sh`, runs outside the cluster against the test API
//! server, as Istio's developers run it locally (`--kubeconfig`).
//!
//! What a cluster install would deploy, and what stands in here:
//! - the mesh configuration (ConfigMap `istio`) and the injection templates
//!   (ConfigMap `istio-sidecar-injector`) are taken unmodified from
//!   `istioctl manifest generate --set profile=minimal` of the same build;
//! - the webhook configurations of that manifest (`istio-sidecar-injector`,
//!   `istio-validator-istio-system`) are registered with the API server by
//!   URL on loopback instead of through the `istiod` Service (no pod network
//!   here), with the test CA as their `caBundle` and istiod serving a
//!   certificate from the test PKI (`--tlsCertFile`). Two changes, both
//!   stricter than an install: every webhook fails closed
//!   (`failurePolicy: Fail`), and the validator judges every Istio object,
//!   not only those labelled `istio.io/rev: default` (what the chart's
//!   `istiod-default-validator` does for a default revision);
//! - istiod acts with the admin identity of the test PKI rather than its
//!   chart's ClusterRole.
//!
//! Ready means the path a test relies on works end to end: the API server
//! sends a deliberately invalid VirtualService (dry run) to istiod's webhook
//! and istiod refuses it; and `/ready` and `/metrics` answer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::apply::Applier;
use crate::crds::yaml_documents;
use crate::pki::Pki;

/// The namespace istiod runs for and reads its configuration from.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// The validating webhook's name in Istio's manifest: a refusal names it.
pub const VALIDATION_WEBHOOK: &str = "rev.validation.istio.io";

/// The loopback ports of a running istiod.
#[derive(Clone, Debug)]
pub struct Istiod {
    /// Plain HTTP: `/ready` and the `/debug/*` endpoints (istiod's 8080).
    pub http_port: u16,
    /// xDS over plain gRPC (istiod's 15010).
    pub grpc_port: u16,
    /// Webhooks (`/inject`, `/validate`) over TLS (istiod's 15017).
    pub webhook_port: u16,
    /// Prometheus metrics (istiod's 15014).
    pub monitoring_port: u16,
}

impl Istiod {
    /// istiod's own metrics, Prometheus text (`galley_validation_passed`, ...).
    pub async fn metrics(&self) -> anyhow::Result<String> {
        http_get(self.monitoring_port, "/metrics").await
    }

    /// How many objects istiod's validating webhook has admitted and
    /// refused so far (`galley_validation_passed` and `_failed`, summed
    /// over every kind).
    pub async fn validations(&self) -> anyhow::Result<Validations> {
        let text = self.metrics().await?;
        Ok(Validations {
            passed: counter(&text, "galley_validation_passed"),
            failed: counter(&text, "galley_validation_failed"),
        })
    }

    /// A debug endpoint of the HTTP port (`/debug/configz`, ...).
    pub async fn debug(&self, path: &str) -> anyhow::Result<String> {
        http_get(self.http_port, path).await
    }
}

/// Counts of istiod's validating webhook; see [`Istiod::validations`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validations {
    pub passed: f64,
    pub failed: f64,
}

/// The sum of every sample of a counter family in Prometheus text.
fn counter(metrics: &str, family: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The objects and the command line of one istiod, before it starts.
pub(crate) struct Plan {
    pub istiod: Istiod,
    pub objects: Vec<Value>,
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Generates istiod's certificate and configuration into `dir` and decides
/// its ports. `kubeconfig` is the identity istiod acts with.
pub(crate) fn plan(tools: &Path, pki: &Pki, dir: &Path, kubeconfig: &Path, ports: [u16; 6]) -> anyhow::Result<Plan> {
    let [http_port, grpc_port, secure_grpc_port, webhook_port, monitoring_port, ctrlz_port] = ports;
    let dir = dir.join("istiod");
    std::fs::create_dir_all(&dir)?;
    let serving = pki.serving("istiod", &["127.0.0.1", "istiod.istio-system.svc"])?;
    let write = |name: &str, content: &str| -> anyhow::Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    };
    let cert = write("tls.crt", &serving.cert_pem)?;
    let key = write("tls.key", &serving.key_pem)?;
    let ca = write("ca.crt", &pki.ca_pem)?;

    let istioctl = tools.join("bin/istioctl");
    let out = Command::new(&istioctl)
        .args(["manifest", "generate", "--set", "profile=minimal"])
        .output()
        .with_context(|| format!("running {}", istioctl.display()))?;
    if !out.status.success() {
        bail!("istioctl manifest generate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let manifest = String::from_utf8(out.stdout).context("istioctl's manifest is not UTF-8")?;
    write("manifest.yaml", &manifest)?;
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(pki.ca_pem.as_bytes());
    let objects = objects(&yaml_documents(&manifest)?, webhook_port, &ca_bundle)?;

    let p = |flag: &str, port: u16| format!("--{flag}=127.0.0.1:{port}");
    let args = vec![
        // istiod reads these from the pod's environment.
        "REVISION=default".to_string(),
        format!("POD_NAMESPACE={ISTIO_NAMESPACE}"),
        "POD_NAME=istiod-testenv".to_string(),
        "SERVICE_ACCOUNT=istiod".to_string(),
        "PILOT_CERT_PROVIDER=istiod".to_string(),
        "CLUSTER_ID=Kubernetes".to_string(),
        tools.join("bin/pilot-discovery").display().to_string(),
        "discovery".to_string(),
        format!("--kubeconfig={}", kubeconfig.display()),
        p("httpAddr", http_port),
        p("grpcAddr", grpc_port),
        p("secureGRPCAddr", secure_grpc_port),
        p("httpsAddr", webhook_port),
        p("monitoringAddr", monitoring_port),
        format!("--ctrlz_port={ctrlz_port}"),
        format!("--tlsCertFile={cert}"),
        format!("--tlsKeyFile={key}"),
        format!("--caCertFile={ca}"),
        // Relative by default: point them at files that do not exist, so
        // istiod takes the ConfigMaps whatever the working directory.
        format!("--meshConfig={}", dir.join("no-mesh-file").display()),
        format!("--networksConfig={}", dir.join("no-networks-file").display()),
        "--domain=cluster.local".to_string(),
        "--log_output_level=default:info".to_string(),
    ];
    Ok(Plan {
        istiod: Istiod { http_port, grpc_port, webhook_port, monitoring_port },
        objects,
        program: PathBuf::from("/usr/bin/env"),
        args,
    })
}

/// From Istio's manifest: the namespace, the mesh and injection ConfigMaps,
/// and the two webhook configurations pointed at `https://127.0.0.1:<port>`.
fn objects(manifest: &[Value], webhook_port: u16, ca_bundle: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NAMESPACE}})];
    let find = |kind: &str, name: &str| -> anyhow::Result<Value> {
        manifest
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .cloned()
            .ok_or_else(|| anyhow!("istioctl's manifest has no {kind} {name}"))
    };
    out.push(find("ConfigMap", "istio")?);
    out.push(find("ConfigMap", "istio-sidecar-injector")?);
    for (kind, name) in [
        ("MutatingWebhookConfiguration", "istio-sidecar-injector"),
        ("ValidatingWebhookConfiguration", "istio-validator-istio-system"),
    ] {
        let mut config = find(kind, name)?;
        let webhooks = config["webhooks"].as_array_mut().ok_or_else(|| anyhow!("{kind} {name} has no webhooks"))?;
        for w in webhooks {
            let path = w["clientConfig"]["service"]["path"].as_str().unwrap_or("/").to_string();
            w["clientConfig"] =
                json!({"url": format!("https://127.0.0.1:{webhook_port}{path}"), "caBundle": ca_bundle});
            w["failurePolicy"] = json!("Fail");
            if kind == "ValidatingWebhookConfiguration" {
                w.as_object_mut().map(|o| o.remove("objectSelector"));
            }
        }
        out.push(config);
    }
    Ok(out)
}

/// Applies the plan's objects, then waits until istiod refuses an invalid
/// object the API server sends it, reports itself ready and serves metrics.
pub(crate) async fn install_and_wait(client: &kube::Client, plan: &Plan, timeout: Duration) -> anyhow::Result<()> {
    let applier = Applier::new(client.clone(), "magnetar-testenv");
    for obj in &plan.objects {
        applier.apply(obj).await.with_context(|| format!("applying {} {}", obj["kind"], obj["metadata"]["name"]))?;
    }
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let ready = async {
            refused_by_istiod(client).await?;
            plan.istiod.debug("/ready").await?;
            plan.istiod.metrics().await.map(drop)
        };
        match ready.await {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("istiod's validating webhook did not refuse an invalid VirtualService within {timeout:?}; last: {last}")
}

/// Ok when a dry-run create of an invalid VirtualService (a regular
/// expression RE2 cannot compile, which the CRD's schema accepts) is refused
/// by istiod's validating webhook.
pub async fn refused_by_istiod(client: &kube::Client) -> anyhow::Result<()> {
    let ar = kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "networking.istio.io",
        "v1",
        "VirtualService",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ISTIO_NAMESPACE, &ar);
    let bad = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "magnetar-testenv-invalid", "namespace": ISTIO_NAMESPACE},
        "spec": {"hosts": ["invalid.example.com"], "http": [{
            "match": [{"uri": {"regex": "(("}}],
            "route": [{"destination": {"host": "invalid.example.com"}}]
        }]}
    });
    let params = PatchParams::apply("magnetar-testenv").dry_run();
    match api.patch("magnetar-testenv-invalid", &params, &Patch::Apply(&bad)).await {
        Err(kube::Error::Api(e)) if e.message.contains(VALIDATION_WEBHOOK) => Ok(()),
        Err(e) => Err(anyhow!("not refused by istiod yet: {e}")),
        Ok(_) => Err(anyhow!("accepted: the validating webhook is not in the path yet")),
    }
}

/// A plain HTTP/1.0 GET on loopback (istiod's plain ports).
async fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("no HTTP response from port {port}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {path} on port {port}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}
