//! `magnetar doctor` against a live control plane: findings name the
//! problem and the fix, and the exit code says whether any is an error.

use std::process::Command;
use std::time::Duration;

use kube::api::Api;
use magnetar_api::{PulsarBroker, ZooKeeperCluster};
use magnetar_operator::{Operator, Options};
use magnetar_testenv::apply::{Applier, ensure_namespace, server_message};
use magnetar_testenv::{Options as EnvOptions, crds::yaml_documents, prerequisites, repo_root, shared};

fn doctor(kubeconfig: &std::path::Path, ns: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_magnetar"))
        .args(["doctor", "-n", ns])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn doctor_reports_missing_secret_and_sidecars_then_the_certificate() {
    let env = shared(EnvOptions::default().with_workloads()).await.unwrap();
    let client = env.client().await.unwrap();
    prerequisites::install(&client).await.unwrap();
    let ns = "doctor-check";
    ensure_namespace(&client, ns).await.unwrap();
    let operator = Operator::start(client.clone(), Options { namespace: Some(ns.into()), ..Options::default() });
    assert!(operator.wait_ready(Duration::from_secs(60)).await);
    let applier = Applier::new(client.clone(), "test");
    let example =
        std::fs::read_to_string(repo_root().unwrap().join("../shared/compat/streamnative-quick-start-istio.yaml"))
            .unwrap();
    for mut doc in yaml_documents(&example).unwrap() {
        doc["metadata"]["namespace"] = ns.into();
        applier.apply(&doc).await.unwrap_or_else(|e| panic!("{}", server_message(&e)));
    }
    // ZooKeeper runs; the broker waits for its gateway certificate.
    let brokers: Api<PulsarBroker> = Api::namespaced(client.clone(), ns);
    let zookeepers: Api<ZooKeeperCluster> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let zk_ready = zookeepers.get("private-cloud").await.unwrap().status.is_some_and(|s| s.ready_replicas == 3);
        if zk_ready && brokers.get("private-cloud").await.unwrap().status.is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ZooKeeper not ready or the broker got no status");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (code, out) = doctor(env.kubeconfig(), ns);
    assert_eq!(code, 1, "errors make doctor fail:\n{out}");
    assert!(
        out.contains(
            "ERROR   doctor-check/PulsarBroker/private-cloud: TLS secret istio-system/ingressgateway-tls is missing"
        ),
        "{out}"
    );
    assert!(out.contains("fix: create it in namespace istio-system"), "{out}");
    // kwok's pods have no istio-proxy: sidecar mode is reported as broken.
    assert!(
        out.contains(
            "ERROR   doctor-check/ZooKeeperCluster/private-cloud: pod private-cloud-zk-0 has no istio-proxy sidecar"
        ),
        "{out}"
    );
    assert!(out.contains("ingress gateway pod(s) match istio=ingressgateway"), "{out}");

    // With a certificate for the main host and *.example.com, the hosts are covered.
    prerequisites::ensure_tls_secrets(&client).await.unwrap();
    let (_, out) = doctor(env.kubeconfig(), ns);
    assert!(out.contains("certificate istio-system/ingressgateway-tls covers 3 host(s)"), "{out}");
    operator.stop().await.unwrap();
}
