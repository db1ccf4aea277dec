//! Istio absent: the operator runs the Pulsar workloads, skips the Istio
//! objects and says so (MeshConfigured=False); once Istio's CRDs are
//! installed it configures the mesh without a restart. The same for
//! prometheus-operator's PodMonitor (Monitoring=False, then the
//! PodMonitors). Uses a control plane of its own (neither set of CRDs at
//! start).

mod common;

use std::time::Duration;

use magnetar_api::{PulsarBroker, ZooKeeperCluster};
use magnetar_testenv::{Binaries, ISTIO_GUIDE};

use common::*;

async fn env() -> &'static magnetar_testenv::ControlPlane {
    let options = magnetar_testenv::Options::default()
        .with_workloads()
        .without_istio()
        .without_monitoring_crds()
        .label("no-istio");
    magnetar_testenv::shared(options).await.expect("control plane")
}

#[tokio::test]
async fn istio_installed_later_is_picked_up_without_restart() {
    let env = env().await;
    let ns = "op-no-istio";
    let client = env.client().await.unwrap();
    ensure_gateway(&client).await;
    magnetar_testenv::apply::ensure_namespace(&client, ns).await.unwrap();
    let op = start_operator(&client, ns).await;
    // Per-broker ServiceEntries, whose DNS needs this test checks below,
    // exist in PASSTHROUGH mode only (in SIMPLE the broker's external
    // listener is plaintext; docs/design.md).
    let mut docs = quick_start(ns);
    for d in docs.iter_mut().filter(|d| d["kind"] == "PulsarBroker") {
        d["spec"]["istio"]["gateway"]["tls"]["mode"] = serde_json::json!("passthrough");
    }
    apply_all(&client, &docs).await;

    // Workloads run, no Istio object, MeshConfigured=False with the reason.
    let zk = wait_for("ZooKeeper Ready with MeshConfigured=False", DEADLINE, || {
        let client = client.clone();
        async move {
            let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await?;
            let mesh = condition(&zk, "MeshConfigured")?;
            (is_ready(&zk) && mesh["status"] == "False").then_some(zk)
        }
    })
    .await;
    assert_eq!(condition(&zk, "MeshConfigured").unwrap()["reason"], "IstioNotInstalled");
    let pb = wait_for("brokers Ready", DEADLINE, || {
        let client = client.clone();
        async move { get_json::<PulsarBroker>(&client, ns, NAME).await.filter(is_ready) }
    })
    .await;
    assert!(pb["status"]["serviceEndpoints"]["external"].is_null(), "no gateway objects, no external endpoints");
    let mut cores = std::collections::BTreeSet::new();
    for kind in magnetar_operator::kinds::CORE {
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client.clone(), ns, &kind.resource(None));
        for o in api.list(&Default::default()).await.unwrap().items {
            cores.insert((kind.kind, kube::ResourceExt::name_any(&o)));
        }
    }
    assert!(cores.contains(&("StatefulSet", "private-cloud-broker".to_string())));

    // Install Istio's CRDs: the operator notices and creates the mesh objects.
    let crds =
        magnetar_testenv::crds::crds_from_yaml_file(&Binaries::locate().unwrap().istio_crds(ISTIO_GUIDE).unwrap())
            .unwrap();
    magnetar_testenv::crds::install(&client, &crds, Duration::from_secs(60)).await.unwrap();
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await.unwrap();
    assert_eq!(condition(&zk, "MeshConfigured").unwrap()["status"], "True");
    assert!(get_dyn(&client, ns, "PeerAuthentication", "private-cloud-zk").await.is_some());
    assert!(get_dyn(&client, ns, "VirtualService", "private-cloud-broker-0").await.is_some());
    let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
    assert_eq!(condition(&pb, "MeshConfigured").unwrap()["reason"], "IstioObjectsApplied", "istiod unknown: no guess");

    // An Istio 1.24 control plane without DNS capture: the brokers' per-broker
    // ServiceEntries need it, so MeshConfigured says so (and stays True).
    let applier = magnetar_testenv::apply::Applier::new(client.clone(), "istioctl");
    let istiod = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": "istio-system"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "istiod"}},
            "template": {
                "metadata": {"labels": {"app": "istiod"}},
                "spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.24.2"}]}
            }
        }
    });
    applier.apply(&istiod).await.unwrap();
    let mesh_configured = |reason: &'static str| {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move {
                let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
                let c = condition(&pb, "MeshConfigured")?;
                (c["status"] == "True" && c["reason"] == reason).then_some(c)
            }
        }
    };
    let c = wait_for("MeshConfigured reason DNSCaptureOff", DEADLINE, mesh_configured("DNSCaptureOff")).await;
    let msg = c["message"].as_str().unwrap();
    assert!(msg.contains("ISTIO_META_DNS_CAPTURE") && msg.contains("meshInternalHosts: false"), "{msg}");
    let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await.unwrap();
    assert_eq!(condition(&zk, "MeshConfigured").unwrap()["reason"], "IstioObjectsApplied", "no ServiceEntries");
    // Both proxyMetadata flags on: the warning goes.
    let mesh = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system"},
        "data": {"mesh": "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"}
    });
    applier.apply(&mesh).await.unwrap();
    wait_for("MeshConfigured reason IstioObjectsApplied", DEADLINE, mesh_configured("IstioObjectsApplied")).await;
    op.stop().await.unwrap();
}

/// spec.monitoring without prometheus-operator: everything else runs and
/// Monitoring=False names the fix; its CRD installed later brings the
/// PodMonitors without a restart (level-triggered).
#[tokio::test]
async fn prometheus_operator_installed_later_brings_the_pod_monitors() {
    let env = env().await;
    let ns = "op-no-monitoring";
    let client = env.client().await.unwrap();
    ensure_gateway(&client).await;
    magnetar_testenv::apply::ensure_namespace(&client, ns).await.unwrap();
    let op = start_operator(&client, ns).await;
    let mut docs = quick_start(ns);
    for d in docs.iter_mut().filter(|d| d["kind"] == "PulsarBroker" || d["kind"] == "ZooKeeperCluster") {
        d["spec"]["monitoring"] = serde_json::json!({"enabled": true, "labels": {"release": "prometheus"}});
    }
    apply_all(&client, &docs).await;
    let monitoring = |reason: &'static str| {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move {
                let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
                let c = condition(&pb, "Monitoring")?;
                (is_ready(&pb) && c["reason"] == reason).then_some(c)
            }
        }
    };
    let c = wait_for("brokers Ready, Monitoring=False", DEADLINE, monitoring("PodMonitorCRDMissing")).await;
    assert_eq!(c["status"], "False");
    assert!(c["message"].as_str().unwrap().contains("prometheus-operator"), "{c}");

    let crd = Binaries::locate().unwrap().pod_monitor_crd().unwrap();
    let crds = magnetar_testenv::crds::crds_from_yaml_file(&crd).unwrap();
    magnetar_testenv::crds::install(&client, &crds, Duration::from_secs(60)).await.unwrap();
    let c = wait_for("Monitoring=True", DEADLINE, monitoring("PodMonitorApplied")).await;
    assert_eq!(c["status"], "True");
    for name in ["private-cloud-broker", "private-cloud-zk"] {
        let pm = get_dyn(&client, ns, "PodMonitor", name).await.unwrap_or_else(|| panic!("PodMonitor {name}"));
        assert_eq!(pm["metadata"]["labels"]["release"], "prometheus");
        // Sidecar mode (the quick start): Istio's merged metrics.
        assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["portNumber"], 15020, "{pm}");
    }
    wait_exact(&client, ns).await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}
