//! The control plane behaves like a cluster: workloads get Ready pods (kwok),
//! owners' children are garbage-collected (kube-controller-manager).

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use magnetar_testenv::{ControlPlane, Options, apply::ensure_namespace, fake_nodes, shared};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(90);

async fn env() -> &'static ControlPlane {
    shared(Options::default().with_workloads().label("cluster")).await.expect("control plane")
}

#[tokio::test]
async fn statefulset_gets_ready_pods() {
    let env = env().await;
    let client = env.client().await.unwrap();
    let ns = "sts-ready";
    ensure_namespace(&client, ns).await.unwrap();

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let manifest: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "serviceName": "web",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
            },
        },
    }))
    .unwrap();
    sts.patch("web", &PatchParams::apply("testenv-test").force(), &Patch::Apply(&manifest)).await.unwrap();

    let all_ready =
        |s: Option<&StatefulSet>| s.and_then(|s| s.status.as_ref()).is_some_and(|st| st.ready_replicas == Some(3));
    tokio::time::timeout(DEADLINE, await_condition(sts.clone(), "web", all_ready))
        .await
        .unwrap_or_else(|_| {
            panic!("StatefulSet web not 3/3 Ready within {DEADLINE:?}; logs in {}", env.log_dir().display())
        })
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client, ns);
    let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    let mut names: Vec<_> = list.items.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    for pod in &list.items {
        let spec = pod.spec.as_ref().unwrap();
        let node = spec.node_name.clone().unwrap_or_default();
        assert!(fake_nodes().any(|n| n == node), "scheduled onto a kwok node, not {node:?}");
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.is_some(), "kwok assigns a pod IP");
    }
}

#[tokio::test]
async fn deleting_an_owner_collects_its_children() {
    let env = env().await;
    let client = env.client().await.unwrap();
    let ns = "gc";
    ensure_namespace(&client, ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, ns);

    let owner = cms
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap())
        .await
        .unwrap();
    let uid = owner.metadata.uid.clone().unwrap();
    let child = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "controller": true,
        }]}}))
        .unwrap()
    };
    let mut children = Vec::new();
    for name in ["child-a", "child-b"] {
        let created = cms.create(&PostParams::default(), &child(name)).await.unwrap();
        children.push((name, created.metadata.uid.unwrap()));
    }
    // A bystander without an owner must survive.
    cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "bystander"}})).unwrap())
        .await
        .unwrap();

    cms.delete("owner", &DeleteParams::background()).await.unwrap();
    for (name, uid) in &children {
        tokio::time::timeout(DEADLINE, await_condition(cms.clone(), name, conditions::is_deleted(uid)))
            .await
            .unwrap_or_else(|_| {
                panic!("{name} not garbage-collected within {DEADLINE:?}; logs in {}", env.log_dir().display())
            })
            .unwrap();
    }
    assert!(cms.get_opt("bystander").await.unwrap().is_some(), "an object without owner was collected");
}

#[tokio::test]
async fn deleting_a_magnetar_resource_collects_its_children() {
    let env = env().await;
    let client = env.client().await.unwrap();
    let ns = "gc-crd";
    ensure_namespace(&client, ns).await.unwrap();
    let applier = magnetar_testenv::apply::Applier::new(client.clone(), "testenv-test");
    let zk = applier
        .apply(&json!({
            "apiVersion": "zookeeper.streamnative.io/v1alpha1",
            "kind": "ZooKeeperCluster",
            "metadata": {"name": "zk", "namespace": ns},
            "spec": {"image": "apachepulsar/pulsar:4.0.5", "replicas": 1},
        }))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let child: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "zk-config", "ownerReferences": [{
        "apiVersion": "zookeeper.streamnative.io/v1alpha1", "kind": "ZooKeeperCluster", "name": "zk",
        "uid": zk.metadata.uid.unwrap(), "controller": true, "blockOwnerDeletion": true,
    }]}}))
    .unwrap();
    let child_uid = cms.create(&PostParams::default(), &child).await.unwrap().metadata.uid.unwrap();

    applier.api_for(&json!({"apiVersion": "zookeeper.streamnative.io/v1alpha1", "kind": "ZooKeeperCluster", "metadata": {"namespace": ns}}))
        .await
        .unwrap()
        .delete("zk", &DeleteParams::background())
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, await_condition(cms.clone(), "zk-config", conditions::is_deleted(&child_uid)))
        .await
        .unwrap_or_else(|_| {
            panic!("zk-config not garbage-collected within {DEADLINE:?}; logs in {}", env.log_dir().display())
        })
        .unwrap();
}

/// The fake nodes have room for large tests, and kwok keeps a renewed Lease
/// for each, as kubelets do (without one, the node lifecycle controller marks
/// the nodes and every pod NotReady about a minute after start).
#[tokio::test]
async fn fake_nodes_have_room_and_renewed_leases() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Node;
    use magnetar_testenv::{NODE_LEASE_SECONDS, fake_nodes};

    let env = env().await;
    let client = env.client().await.unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let mut room = 0;
    for name in fake_nodes() {
        let node = nodes.get(&name).await.unwrap();
        let pods = node.status.and_then(|s| s.allocatable).and_then(|a| a.get("pods").cloned()).unwrap();
        room += pods.0.parse::<u32>().unwrap();
    }
    assert!(room >= 1500, "the fake nodes admit {room} pods");

    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let renewed = |name: &str| {
        let leases = leases.clone();
        let name = name.to_string();
        async move {
            let l = leases.get_opt(&name).await.ok()??;
            let spec = l.spec?;
            assert_eq!(spec.lease_duration_seconds, Some(NODE_LEASE_SECONDS as i32), "lease {name}");
            spec.renew_time.map(|t| t.0)
        }
    };
    for name in fake_nodes() {
        // A renewal after the first one seen: kwok renews every quarter of
        // the duration, so within one duration.
        let first = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(t) = renewed(&name).await {
                    return t;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no Lease for {name} within {DEADLINE:?}"));
        let wait = Duration::from_secs(u64::from(NODE_LEASE_SECONDS) + 10);
        tokio::time::timeout(wait, async {
            loop {
                if renewed(&name).await.is_some_and(|t| t > first) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the Lease of {name} was not renewed within {wait:?}"));
    }
}
