//! The operator's identity on the control plane, and the API server's count
//! of its requests by verb.
//!
//! The operator runs as the ServiceAccount `magnetar-system/magnetar` with
//! the RBAC of `deploy/operator/rbac.yaml` and a token from the TokenRequest
//! API, so that the API server can tell its requests from everyone else's
//! (the bench and the controllers run as other users). The API server counts
//! requests by flow schema (`apiserver_flowcontrol_dispatched_requests_total`,
//! API Priority and Fairness), not by user, so the bench installs one
//! FlowSchema per verb that matches only that ServiceAccount
//! (`magnetar-bench-<verb>`), one before them for Leases (the leader
//! election's renewals, counted apart) and one for non-resource URLs
//! (discovery), all on a priority level of their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use magnetar_testenv::ControlPlane;
use magnetar_testenv::apply::Applier;

pub const SA_NAMESPACE: &str = "magnetar-system";
pub const SA_NAME: &str = "magnetar";
const PRIORITY_LEVEL: &str = "magnetar-bench";
const PREFIX: &str = "magnetar-bench-";

/// Resource verbs counted one by one.
pub const VERBS: [&str; 8] = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
/// The verbs that write.
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
/// Flow schemas counted apart from the verbs.
pub const LEASE: &str = "lease";
pub const NON_RESOURCE: &str = "nonresource";

/// Applies the operator's RBAC and the flow schemas, and writes a
/// kubeconfig with a token of the operator's ServiceAccount.
pub async fn prepare_operator_identity(env: &ControlPlane, client: &kube::Client) -> anyhow::Result<PathBuf> {
    let applier = Applier::new(client.clone(), "magnetar-bench");
    let rbac_path = magnetar_testenv::repo_root()?.join("deploy/operator/rbac.yaml");
    let rbac = std::fs::read_to_string(&rbac_path).with_context(|| format!("reading {}", rbac_path.display()))?;
    for doc in magnetar_testenv::crds::yaml_documents(&rbac)? {
        applier.apply(&doc).await.with_context(|| format!("applying {} from rbac.yaml", doc["kind"]))?;
    }
    for obj in flow_control_objects() {
        applier.apply(&obj).await.with_context(|| format!("applying {}", obj["metadata"]["name"]))?;
    }

    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), SA_NAMESPACE);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec { expiration_seconds: Some(24 * 3600), ..TokenRequestSpec::default() }),
        ..TokenRequest::default()
    };
    let token = sas
        .create_token_request(SA_NAME, &PostParams::default(), &request)
        .await
        .context("requesting a token for the operator's ServiceAccount")?
        .status
        .and_then(|s| s.token)
        .ok_or_else(|| anyhow!("the TokenRequest came back without a token"))?;

    let admin = kube::config::Kubeconfig::read_from(env.kubeconfig())?;
    let ca = admin
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .ok_or_else(|| anyhow!("the admin kubeconfig has no certificate-authority-data"))?;
    let path = env.log_dir().join("magnetar-operator.kubeconfig");
    write_kubeconfig(&path, env.server(), &ca, &token)?;
    Ok(path)
}

fn write_kubeconfig(path: &Path, server: &str, ca_data: &str, token: &str) -> anyhow::Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_data}\n\
         users:\n- name: {SA_NAME}\n  user:\n    token: {token}\n\
         contexts:\n- name: bench\n  context:\n    cluster: bench\n    user: {SA_NAME}\n    namespace: {SA_NAMESPACE}\n\
         current-context: bench\n"
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn flow_control_objects() -> Vec<Value> {
    let subjects = json!([{"kind": "ServiceAccount", "serviceAccount": {"name": SA_NAME, "namespace": SA_NAMESPACE}}]);
    let schema = |name: &str, precedence: u32, rule: Value| {
        let mut rule = rule;
        rule["subjects"] = subjects.clone();
        json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": format!("{PREFIX}{name}")},
            "spec": {
                "priorityLevelConfiguration": {"name": PRIORITY_LEVEL},
                "matchingPrecedence": precedence,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [rule]
            }
        })
    };
    let mut out = vec![json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": PRIORITY_LEVEL},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 100,
                "lendablePercent": 0,
                "limitResponse": {"type": "Queue", "queuing": {"queues": 64, "handSize": 6, "queueLengthLimit": 50}}
            }
        }
    })];
    out.push(schema(
        LEASE,
        10,
        json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "clusterScope": true, "namespaces": ["*"]}]}),
    ));
    for verb in VERBS {
        out.push(schema(
            verb,
            20,
            json!({"resourceRules": [{"verbs": [verb], "apiGroups": ["*"], "resources": ["*"],
                "clusterScope": true, "namespaces": ["*"]}]}),
        ));
    }
    out.push(schema(NON_RESOURCE, 30, json!({"nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]})));
    out
}

/// The operator's requests so far, by verb (and `lease`, `nonresource`),
/// from the API server's `/metrics`.
pub async fn operator_requests(client: &kube::Client) -> anyhow::Result<BTreeMap<String, u64>> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await.context("GET /metrics of kube-apiserver")?;
    let mut out: BTreeMap<String, u64> =
        VERBS.iter().chain([LEASE, NON_RESOURCE].iter()).map(|v| (v.to_string(), 0)).collect();
    for (name, labels, value) in crate::operator::parse_prometheus(&text) {
        if name != "apiserver_flowcontrol_dispatched_requests_total" {
            continue;
        }
        if let Some(key) = labels.get("flow_schema").and_then(|f| f.strip_prefix(PREFIX)) {
            *out.entry(key.to_string()).or_default() += value as u64;
        }
    }
    Ok(out)
}

/// `after - before`, per key.
pub fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0)))).collect()
}

/// Write requests (leases apart) in a count by verb.
pub fn writes(counts: &BTreeMap<String, u64>) -> u64 {
    WRITE_VERBS.iter().map(|v| counts.get(*v).copied().unwrap_or(0)).sum()
}
