//! The operator converges a StreamNative example with nothing but the
//! permissions deploy/operator/rbac.yaml grants: it runs as the
//! `magnetar-system/magnetar` ServiceAccount (impersonated) on the real
//! control plane, where RBAC is enforced.

use std::time::Duration;

use kube::api::{Api, ListParams};
use magnetar_api::{PulsarBroker, PulsarCoordinator};
use magnetar_operator::{Operator, Options};
use magnetar_testenv::apply::{Applier, ensure_namespace, server_message};
use magnetar_testenv::{Options as EnvOptions, crds::yaml_documents, prerequisites, repo_root, shared};

const SERVICE_ACCOUNT: &str = "system:serviceaccount:magnetar-system:magnetar";

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

#[tokio::test]
async fn operator_converges_with_only_its_rbac() {
    let env = shared(EnvOptions::default().with_workloads()).await.unwrap();
    let admin = env.client().await.unwrap();
    let root = repo_root().unwrap();
    let applier = Applier::new(admin.clone(), "test-admin");
    let rbac = std::fs::read_to_string(root.join("deploy/operator/rbac.yaml")).unwrap();
    for doc in yaml_documents(&rbac).unwrap() {
        applier.apply(&doc).await.unwrap_or_else(|e| panic!("{}", server_message(&e)));
    }
    prerequisites::install(&admin).await.unwrap();

    // The operator's client: the admin kubeconfig, impersonating its ServiceAccount.
    let kubeconfig = kube::config::Kubeconfig::read_from(env.kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    config.auth_info.impersonate = Some(SERVICE_ACCOUNT.into());
    let as_operator = kube::Client::try_from(config).unwrap();
    let denied = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(as_operator.clone(), "default")
        .list(&ListParams::default())
        .await;
    assert!(denied.is_err(), "impersonation is in effect: listing secrets is not granted");

    let ns = "rbac-check";
    ensure_namespace(&admin, ns).await.unwrap();
    let operator = Operator::start(as_operator, Options { namespace: Some(ns.into()), ..Options::default() });
    assert!(operator.wait_ready(Duration::from_secs(60)).await, "operator started with its RBAC");

    let example = std::fs::read_to_string(root.join("../shared/compat/streamnative-quick-start-istio.yaml")).unwrap();
    for mut doc in yaml_documents(&example).unwrap() {
        doc["metadata"]["namespace"] = ns.into();
        applier.apply(&doc).await.unwrap_or_else(|e| panic!("{}", server_message(&e)));
    }
    wait_for("the gateway's TLS secret to be needed", Duration::from_secs(30), || async {
        !prerequisites::ensure_tls_secrets(&admin).await.unwrap().is_empty()
            || Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), "istio-system")
                .get_opt("ingressgateway-tls")
                .await
                .unwrap()
                .is_some()
    })
    .await;

    let coordinators: Api<PulsarCoordinator> = Api::namespaced(admin.clone(), ns);
    let brokers: Api<PulsarBroker> = Api::namespaced(admin.clone(), ns);
    let ready = |c: &Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>| {
        c.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
    };
    wait_for("the coordinator to be Ready", Duration::from_secs(120), || async {
        let c = coordinators.get("private-cloud").await.unwrap();
        ready(&c.status.map(|s| s.conditions).filter(|c| !c.is_empty()))
    })
    .await;
    wait_for("the broker's endpoints", Duration::from_secs(60), || async {
        let broker = brokers.get("private-cloud").await.unwrap();
        let endpoints = broker.status.and_then(|s| s.service_endpoints);
        endpoints.is_some_and(|e| e.brokers == ["pb0-pulsar.example.com", "pb1-pulsar.example.com"])
    })
    .await;
    operator.stop().await.unwrap();
}
