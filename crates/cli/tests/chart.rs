//! The Helm chart (charts/magnetar), with the Helm built from its pinned Go
//! module (tools/build-helm.sh):
//!
//! * `helm lint` passes and `helm template` renders what the operator needs
//!   (non-root, read-only root filesystem, probes, limits, leader election),
//!   in both RBAC shapes (every namespace, or one in `watchNamespaces`), with the CRDs of deploy/crds and the rules of
//!   deploy/operator/rbac.yaml;
//! * on the real control plane, the rendered chart passes a server-side dry
//!   run, `helm install` installs it, and the operator running as the
//!   chart's ServiceAccount (impersonated; RBAC is enforced) converges the
//!   quick start without a single request refused;
//! * the role is minimal: with any one rule removed, the operator makes a
//!   request that rule grants and the API server refuses it (counted in
//!   `magnetar_forbidden_requests_total`, which names verb and resource).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams};
use magnetar_api::{PulsarBroker, PulsarCoordinator};
use magnetar_operator::{LeaderElection, Operator, OperatorIdentity, Options};
use magnetar_testenv::apply::{Applier, ensure_namespace, server_message};
use magnetar_testenv::{Binaries, ControlPlane, Options as EnvOptions, crds::yaml_documents, prerequisites, repo_root};
use serde_json::{Value, json};

const RELEASE_NAMESPACE: &str = "magnetar-system";
const SERVICE_ACCOUNT: &str = "magnetar";

fn chart() -> PathBuf {
    repo_root().unwrap().join("charts/magnetar")
}

/// helm with `args`, its caches and config out of the user's home.
fn helm_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(magnetar_testenv::helm().unwrap());
    cmd.args(args)
        .env("HELM_CACHE_HOME", scratch("cache"))
        .env("HELM_CONFIG_HOME", scratch("config"))
        .env("HELM_DATA_HOME", scratch("data"));
    cmd
}

/// Runs helm with `args`; its stdout, or a panic with its output.
fn helm(args: &[&str]) -> String {
    let out = helm_command(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "helm {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A directory for Helm's caches and config, out of the user's home.
fn scratch(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("magnetar-chart-test-{}", std::process::id())).join(what);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `helm template` of the chart with `sets`, as objects.
fn template(sets: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec!["template", "magnetar", chart.to_str().unwrap(), "--namespace", RELEASE_NAMESPACE];
    for s in sets {
        args.extend(["--set", s]);
    }
    yaml_documents(&helm(&args)).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn rules(object: &Value) -> Vec<Value> {
    object["rules"].as_array().cloned().unwrap_or_default()
}

#[test]
fn chart_lints_and_renders_what_the_operator_needs() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    for sets in [&[][..], &["watchNamespaces={pulsar}"][..], &["metrics.serviceMonitor.enabled=true"][..]] {
        let mut args = vec!["lint", "--strict", chart];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = helm(&args);
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }

    let objects = template(&[]);
    let deploy: Deployment = serde_json::from_value(find(&objects, "Deployment", "magnetar").unwrap().clone()).unwrap();
    let spec = deploy.spec.unwrap();
    assert_eq!(spec.replicas, Some(2), "two replicas with leader election");
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(SERVICE_ACCOUNT));
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let c = &pod.containers[0];
    let security = c.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| p.clone().unwrap().http_get.unwrap().path.unwrap();
    assert_eq!(probe_path(&c.readiness_probe), "/readyz");
    assert_eq!(probe_path(&c.liveness_probe), "/healthz");
    let resources = c.resources.clone().unwrap();
    assert!(resources.requests.unwrap().contains_key("memory"));
    assert!(resources.limits.unwrap().contains_key("memory"));
    let args = c.args.clone().unwrap();
    assert!(args.contains(&"--lease-duration=12".to_string()), "{args:?}");
    assert!(args.contains(&"--service-account=magnetar".to_string()), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--watch-namespace")), "{args:?}");
    assert!(find(&objects, "Service", "magnetar-metrics").is_some());
    assert!(!objects.iter().any(|o| o["kind"] == "ServiceMonitor"), "the ServiceMonitor is opt-in");

    // The rules are deploy/operator/rbac.yaml's, Role for Role.
    let root = repo_root().unwrap();
    let plain = yaml_documents(&std::fs::read_to_string(root.join("deploy/operator/rbac.yaml")).unwrap()).unwrap();
    let cluster_role = find(&objects, "ClusterRole", "magnetar").unwrap();
    assert_eq!(rules(cluster_role), rules(find(&plain, "ClusterRole", "magnetar").unwrap()));
    assert_eq!(
        rules(find(&objects, "Role", "magnetar-leader-election").unwrap()),
        rules(find(&plain, "Role", "magnetar-leader-election").unwrap())
    );
    assert_eq!(
        rules(find(&objects, "Role", "magnetar-gateway").unwrap()),
        rules(find(&plain, "Role", "magnetar-gateway-secrets").unwrap())
    );

    // One namespace: the same rules in a Role there, and the gateway's pods.
    let scoped = template(&["watchNamespaces={pulsar}"]);
    assert!(!scoped.iter().any(|o| o["kind"] == "ClusterRole" || o["kind"] == "ClusterRoleBinding"));
    let role = find(&scoped, "Role", "magnetar").unwrap();
    assert_eq!(role["metadata"]["namespace"], "pulsar");
    assert_eq!(rules(role), rules(cluster_role));
    let gateway = rules(find(&scoped, "Role", "magnetar-gateway").unwrap());
    assert!(gateway.iter().any(|r| r["resources"] == json!(["pods"])), "{gateway:?}");
    let deploy = find(&scoped, "Deployment", "magnetar").unwrap();
    assert!(deploy.to_string().contains("--watch-namespace=pulsar"));

    // More than one namespace is refused, saying why.
    let two = helm_command(&["template", "magnetar", chart, "--set", "watchNamespaces={a,b}"]).output().unwrap();
    let err = String::from_utf8_lossy(&two.stderr);
    assert!(!two.status.success() && err.contains("watchNamespaces: [a b] names 2 namespaces"), "{err}");

    let monitored = template(&["metrics.serviceMonitor.enabled=true"]);
    let sm = monitored.iter().find(|o| o["kind"] == "ServiceMonitor").unwrap();
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http-metrics");
}

/// The chart's crds/ are deploy/crds/ (which `magnetar crds` keeps current):
/// regenerate both with `cargo run --bin magnetar -- crds --dir deploy/crds`
/// and `... --dir charts/magnetar/crds`.
#[test]
fn chart_crds_are_deploy_crds() {
    let root = repo_root().unwrap();
    let files = |dir: &Path| -> BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
            .collect()
    };
    let (chart, deploy) = (files(&root.join("charts/magnetar/crds")), files(&root.join("deploy/crds")));
    assert_eq!(chart.keys().collect::<Vec<_>>(), deploy.keys().collect::<Vec<_>>());
    for (name, text) in &deploy {
        assert!(
            chart[name] == *text,
            "charts/magnetar/crds/{name} differs from deploy/crds: `cargo run --bin magnetar -- crds --dir charts/magnetar/crds`"
        );
    }
}

/// Every value of values.yaml is documented: each key at the top level has a
/// comment right above it.
#[test]
fn every_value_is_documented() {
    let text = std::fs::read_to_string(chart().join("values.yaml")).unwrap();
    let mut previous = "";
    let mut undocumented = Vec::new();
    for line in text.lines() {
        let top_level_key = !line.starts_with([' ', '#', '-']) && line.contains(':');
        if top_level_key && !previous.trim_start().starts_with('#') {
            undocumented.push(line.to_string());
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    assert!(undocumented.is_empty(), "values.yaml keys without a comment above them: {undocumented:?}");
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A client of the admin kubeconfig that impersonates `user`.
async fn impersonating(env: &ControlPlane, user: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(env.kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    config.auth_info.impersonate = Some(user.into());
    kube::Client::try_from(config).unwrap()
}

/// The operator of `service_account` (in the release namespace), watching
/// `namespace`, with leader election on its own Lease.
async fn operator_as(env: &ControlPlane, service_account: &str, namespace: &str) -> Operator {
    let client = impersonating(env, &format!("system:serviceaccount:{RELEASE_NAMESPACE}:{service_account}")).await;
    Operator::start(
        client,
        Options {
            identity: OperatorIdentity { namespace: RELEASE_NAMESPACE.into(), service_account: SERVICE_ACCOUNT.into() },
            namespace: Some(namespace.into()),
            leader_election: Some(LeaderElection {
                name: format!("{namespace}-leader"),
                ..LeaderElection::new(RELEASE_NAMESPACE, namespace)
            }),
            ..Options::default()
        },
    )
}

/// StreamNative's quick start, into `namespace`.
async fn apply_quick_start(applier: &Applier, admin: &kube::Client, namespace: &str) {
    ensure_namespace(admin, namespace).await.unwrap();
    let root = repo_root().unwrap();
    let example = std::fs::read_to_string(root.join("../shared/compat/streamnative-quick-start-istio.yaml")).unwrap();
    for mut doc in yaml_documents(&example).unwrap() {
        doc["metadata"]["namespace"] = namespace.into();
        applier.apply(&doc).await.unwrap_or_else(|e| panic!("{}", server_message(&e)));
    }
}

/// `magnetar_forbidden_requests_total` of an operator: (verb, group,
/// resource) → count.
fn forbidden(operator: &Operator) -> BTreeMap<(String, String, String), u64> {
    let text = operator.metrics().render();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("magnetar_forbidden_requests_total{")) {
        let (labels, value) = line.trim_start_matches("magnetar_forbidden_requests_total{").split_once("} ").unwrap();
        let label = |key: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .unwrap()
                .trim_end_matches('"')
                .to_string()
        };
        out.insert((label("verb"), label("group"), label("resource")), value.parse().unwrap());
    }
    out
}

/// Whether a refused (group, resource) is one `rule` grants.
fn granted_by(rule: &Value, group: &str, resource: &str) -> bool {
    let has = |key: &str, v: &str| rule[key].as_array().is_some_and(|a| a.iter().any(|x| x == v));
    has("apiGroups", group) && has("resources", resource)
}

/// A rule of the chart, where it lives, and the copy of its Role without it.
struct Removal {
    label: String,
    rule: Value,
    /// The role kind, name and namespace the rule was taken from.
    role: (String, String, Option<String>),
    rest: Vec<Value>,
}

fn removals(objects: &[Value]) -> Vec<Removal> {
    let mut out = Vec::new();
    for role in objects.iter().filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role") {
        let all = rules(role);
        for (i, rule) in all.iter().enumerate() {
            let mut rest = all.clone();
            rest.remove(i);
            let name = role["metadata"]["name"].as_str().unwrap().to_string();
            out.push(Removal {
                label: format!(
                    "{} {name} rule {i} ({} {})",
                    role["kind"].as_str().unwrap(),
                    rule["apiGroups"],
                    rule["resources"]
                ),
                rule: rule.clone(),
                role: (
                    role["kind"].as_str().unwrap().to_string(),
                    name,
                    role["metadata"]["namespace"].as_str().map(String::from),
                ),
                rest,
            });
        }
    }
    out
}

/// For the n-th removal: ServiceAccount `minus-n`, bound to every role of
/// the chart, with the role the rule came from replaced by a copy without it.
async fn grant_all_but(applier: &Applier, objects: &[Value], n: usize, removal: &Removal) -> String {
    let sa = format!("minus-{n}");
    let subject = json!([{"kind": "ServiceAccount", "name": sa, "namespace": RELEASE_NAMESPACE}]);
    applier
        .apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": RELEASE_NAMESPACE}}))
        .await
        .unwrap();
    for role in objects.iter().filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role") {
        let kind = role["kind"].as_str().unwrap();
        let ns = role["metadata"]["namespace"].as_str().map(String::from);
        let mut name = role["metadata"]["name"].as_str().unwrap().to_string();
        if (kind.to_string(), name.clone(), ns.clone()) == removal.role {
            name = format!("{name}-{sa}");
            let mut copy = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "rules": removal.rest});
            if let Some(ns) = &ns {
                copy["metadata"]["namespace"] = ns.as_str().into();
            }
            applier.apply(&copy).await.unwrap_or_else(|e| panic!("{}", server_message(&e)));
        }
        let binding_kind = if kind == "ClusterRole" { "ClusterRoleBinding" } else { "RoleBinding" };
        let mut binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding_kind,
            "metadata": {"name": format!("{name}-{sa}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": subject,
        });
        if let Some(ns) = &ns {
            binding["metadata"]["namespace"] = ns.as_str().into();
        }
        applier.apply(&binding).await.unwrap_or_else(|e| panic!("{}", server_message(&e)));
    }
    sa
}

#[tokio::test]
async fn helm_install_runs_an_operator_that_needs_every_rule_of_the_chart() {
    // Without magnetar's CRDs: `helm install` installs them from the chart.
    let env = magnetar_testenv::shared(EnvOptions { magnetar_crds: false, ..EnvOptions::default().with_workloads() })
        .await
        .unwrap();
    let admin = env.client().await.unwrap();
    let applier = Applier::new(admin.clone(), "test-admin");
    prerequisites::install(&admin).await.unwrap();
    let service_monitors = Binaries::locate().unwrap().service_monitor_crd().unwrap();
    let crd = yaml_documents(&std::fs::read_to_string(service_monitors).unwrap()).unwrap();
    magnetar_testenv::crds::install(&admin, &crd, Duration::from_secs(60)).await.unwrap();
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let kubeconfig = env.kubeconfig().to_str().unwrap();

    // Every object of the chart (CRDs and ServiceMonitor included) passes
    // the API server's validation, admission and CEL rules.
    ensure_namespace(&admin, RELEASE_NAMESPACE).await.unwrap();
    let rendered = helm(&[
        "template",
        "magnetar",
        chart,
        "--namespace",
        RELEASE_NAMESPACE,
        "--include-crds",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]);
    let dry_run = Command::new(Binaries::locate().unwrap().bin("kubectl"))
        .args([
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(rendered.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let out = String::from_utf8_lossy(&dry_run.stdout);
    assert!(dry_run.status.success(), "dry run refused:\n{out}\n{}", String::from_utf8_lossy(&dry_run.stderr));
    assert!(out.contains("deployment.apps/magnetar serverside-applied (server dry run)"), "{out}");

    // helm install, CRDs included.
    helm(&["install", "magnetar", chart, "--namespace", RELEASE_NAMESPACE, "--kubeconfig", kubeconfig]);
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    wait_for("the chart's Deployment to have two ready replicas", Duration::from_secs(60), || async {
        deployments.get("magnetar").await.ok().and_then(|d| d.status?.ready_replicas) == Some(2)
    })
    .await;

    // The role is minimal: one operator per rule removed, each in its own
    // namespace, at once, bound to the installed roles but the one the rule
    // came from, which is replaced by a copy without it. Before the TLS
    // secret exists (so that the gateway Role's watch is needed).
    let objects = template(&[]);
    let removals = removals(&objects);
    assert!(removals.len() >= 14, "{} rules", removals.len());
    let mut checks = Vec::new();
    for (n, removal) in removals.iter().enumerate() {
        let sa = grant_all_but(&applier, &objects, n, removal).await;
        let ns = format!("rbac-{sa}");
        apply_quick_start(&applier, &admin, &ns).await;
        checks.push((removal, operator_as(env, &sa, &ns).await));
    }
    let mut refused = Vec::new();
    for (removal, operator) in &checks {
        wait_for(&format!("a refused request that {} grants", removal.label), Duration::from_secs(90), || async {
            forbidden(operator).keys().any(|(_, group, resource)| granted_by(&removal.rule, group, resource))
        })
        .await;
        let f = forbidden(operator);
        let (verb, group, resource) = f.keys().find(|(_, g, r)| granted_by(&removal.rule, g, r)).unwrap();
        refused.push(format!("{}: {verb} {group}/{resource} refused", removal.label));
    }
    for (_, operator) in checks {
        operator.stop().await.unwrap();
    }
    eprintln!("every rule is needed:\n  {}", refused.join("\n  "));

    // The operator as the chart's ServiceAccount.
    let as_operator = impersonating(env, &format!("system:serviceaccount:{RELEASE_NAMESPACE}:{SERVICE_ACCOUNT}")).await;
    let denied = Api::<Secret>::namespaced(as_operator, "default").list(&ListParams::default()).await;
    assert!(denied.is_err(), "impersonation is in effect: listing secrets is not granted");

    let ns = "chart-check";
    apply_quick_start(&applier, &admin, ns).await;
    let operator = operator_as(env, SERVICE_ACCOUNT, ns).await;
    assert!(operator.wait_ready(Duration::from_secs(60)).await, "operator started with the chart's RBAC");
    wait_for("the gateway's TLS secret to be needed", Duration::from_secs(30), || async {
        !prerequisites::ensure_tls_secrets(&admin).await.unwrap().is_empty()
            || Api::<Secret>::namespaced(admin.clone(), "istio-system")
                .get_opt("ingressgateway-tls")
                .await
                .unwrap()
                .is_some()
    })
    .await;
    let coordinators: Api<PulsarCoordinator> = Api::namespaced(admin.clone(), ns);
    let brokers: Api<PulsarBroker> = Api::namespaced(admin.clone(), ns);
    let ready = |c: Option<Vec<Condition>>| c.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
    wait_for("the coordinator to be Ready", Duration::from_secs(120), || async {
        ready(coordinators.get("private-cloud").await.unwrap().status.map(|s| s.conditions))
    })
    .await;
    wait_for("the broker's endpoints", Duration::from_secs(60), || async {
        let endpoints = brokers.get("private-cloud").await.unwrap().status.and_then(|s| s.service_endpoints);
        endpoints.is_some_and(|e| e.brokers == ["pb0-pulsar.example.com", "pb1-pulsar.example.com"])
    })
    .await;
    assert_eq!(forbidden(&operator), BTreeMap::new(), "the chart's role lacks a permission the operator used");
    operator.stop().await.unwrap();
    helm(&["uninstall", "magnetar", "--namespace", RELEASE_NAMESPACE, "--kubeconfig", kubeconfig]);
}
