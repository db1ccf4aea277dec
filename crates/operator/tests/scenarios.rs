//! The operator against a real control plane (magnetar-testenv: etcd,
//! kube-apiserver, controller-manager, scheduler, kwok), one test per
//! scenario of the guide. Each test has a namespace and an in-process
//! operator of its own; waits poll with deadlines.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, ZooKeeperCluster};
use magnetar_operator::Operator;

use common::*;

/// Waits until the operator has written nothing for a second.
async fn quiesce(op: &Operator) {
    let mut last = op.writes();
    let mut stable_since = Instant::now();
    wait_for("the operator to go quiet", DEADLINE, || {
        let now = op.writes();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        let quiet = stable_since.elapsed() > Duration::from_secs(1);
        async move { quiet.then_some(()) }
    })
    .await;
}

async fn events(client: &Client, ns: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// Waits for an Event with `reason` whose note contains `text`: the
/// operator publishes Events after the writes they report (status first),
/// so a test that saw the status must still wait for the Event.
async fn wait_event(client: &Client, ns: &str, reason: &str, text: &str) {
    wait_for(&format!("a {reason} Event mentioning {text:?}"), DEADLINE, || async move {
        let ev = events(client, ns, reason).await;
        ev.iter().any(|e| e.note.as_deref().unwrap_or_default().contains(text)).then_some(())
    })
    .await;
}

fn kinds_of(set: &std::collections::BTreeSet<(String, String)>, prefix: &str) -> Vec<String> {
    set.iter().filter(|(_, n)| n.starts_with(prefix)).map(|(k, n)| format!("{k}/{n}")).collect()
}

#[tokio::test]
async fn quick_start_converges_with_endpoints() {
    let ns = "op-quick-start";
    let client = setup(ns).await;
    let op = start_operator(&client, ns).await;
    let t0 = Instant::now();
    apply_all(&client, &quick_start(ns)).await;
    wait_all_ready(&client, ns).await;
    let converged = t0.elapsed();
    wait_exact(&client, ns).await;

    // SPEC 3: the objects of every component, Istio's included.
    let live = live_set(&client, ns).await;
    for (kind, name) in [
        ("StatefulSet", "private-cloud-zk"),
        ("StatefulSet", "private-cloud-bk"),
        ("StatefulSet", "private-cloud-broker"),
        ("Deployment", "private-cloud-bk-auto-recovery"),
        ("Service", "private-cloud-zk-headless"),
        ("Service", "private-cloud-broker-0"),
        ("Service", "private-cloud-broker-1"),
        ("PeerAuthentication", "private-cloud-zk"),
        ("AuthorizationPolicy", "private-cloud-broker"),
        ("DestinationRule", "private-cloud-bk"),
        ("Gateway", "private-cloud-broker-gateway"),
        ("VirtualService", "private-cloud-broker"),
        ("VirtualService", "private-cloud-broker-1"),
    ] {
        assert!(live.contains(&(kind.to_string(), name.to_string())), "{kind}/{name} missing; have {live:?}");
    }

    // Pods Ready, status as SPEC 2.
    let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
    let st = &pb["status"];
    assert_eq!(st["readyReplicas"], 2);
    assert_eq!(st["updatedReplicas"], 2);
    assert_eq!(
        st["labelSelector"],
        "app.kubernetes.io/component=broker,app.kubernetes.io/instance=private-cloud,app.kubernetes.io/name=pulsar-broker"
    );
    assert_eq!(st["mesh"]["dataplaneMode"], "sidecar");
    let e = &st["serviceEndpoints"];
    assert_eq!(e["cluster"]["webServiceURL"], format!("http://private-cloud-broker.{ns}.svc.cluster.local:8080"));
    assert_eq!(e["cluster"]["pulsarServiceURL"], format!("pulsar://private-cloud-broker.{ns}.svc.cluster.local:6650"));
    assert_eq!(e["external"]["webServiceURL"], "https://pulsar.example.com");
    assert_eq!(e["external"]["pulsarServiceURL"], "pulsar+ssl://pulsar.example.com:6651");
    assert_eq!(e["brokers"], json!(["pb0-pulsar.example.com", "pb1-pulsar.example.com"]));
    for kind in ["Ready", "Progressing", "Degraded", "MeshConfigured"] {
        assert!(condition(&pb, kind).is_some(), "condition {kind} missing: {st}");
    }
    assert_eq!(condition(&pb, "MeshConfigured").unwrap()["status"], "True");
    let pc = get_json::<PulsarCoordinator>(&client, ns, NAME).await.unwrap();
    assert_eq!(pc["status"]["components"].as_array().map(Vec::len), Some(3), "{}", pc["status"]);

    // The coordinator wrote its trust domain by server-side apply (SPEC 1.7).
    let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await.unwrap();
    assert_eq!(zk["spec"]["istio"]["trustDomain"], "cluster.local");
    let managers: Vec<&str> =
        zk["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
    assert!(managers.contains(&"magnetar-coordinator"), "{managers:?}");
    wait_event(&client, ns, "Applied", "").await;

    eprintln!(
        "quick-start: converged (all Ready, endpoints published) in {converged:?}; operator writes {}",
        op.writes()
    );

    // The floor: the same rendered objects applied directly (kubectl apply
    // --server-side), until their workloads are Ready.
    let floor_ns = "op-quick-start-floor";
    let _ = setup(floor_ns).await;
    let mut rendered = Vec::new();
    let docs = quick_start(floor_ns);
    let zk: ZooKeeperCluster = serde_json::from_value(docs[1].clone()).unwrap();
    let bk: BookKeeperCluster = serde_json::from_value(docs[2].clone()).unwrap();
    let pb: PulsarBroker = serde_json::from_value(docs[3].clone()).unwrap();
    let inv = magnetar_desired::cluster::Inventory {
        zookeepers: vec![zk.clone()],
        bookkeepers: vec![bk.clone()],
        brokers: vec![pb.clone()],
        ..Default::default()
    };
    let id = magnetar_desired::OperatorIdentity::default();
    use kube::Resource;
    rendered.extend(magnetar_desired::build_zookeeper(&zk, &inv.context_for(zk.meta(), &id)).unwrap());
    rendered.extend(magnetar_desired::build_bookkeeper(&bk, &inv.context_for(bk.meta(), &id)).unwrap());
    rendered.extend(magnetar_desired::build_broker(&pb, &inv.context_for(pb.meta(), &id)).unwrap());
    magnetar_desired::object::sort(&mut rendered);
    let values: Vec<Value> = rendered.iter().map(|o| o.value.clone()).collect();
    let t1 = Instant::now();
    apply_all(&client, &values).await;
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), floor_ns);
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), floor_ns);
    wait_for("the rendered workloads Ready", DEADLINE, || {
        let (sts, deps) = (sts.clone(), deps.clone());
        async move {
            let s = sts.list(&ListParams::default()).await.ok()?;
            let d = deps.list(&ListParams::default()).await.ok()?;
            let ok = s.items.len() == 3
                && s.items.iter().all(|s| {
                    s.status.as_ref().and_then(|x| x.ready_replicas) == s.spec.as_ref().and_then(|x| x.replicas)
                })
                && d.items.iter().all(|d| {
                    d.status.as_ref().and_then(|x| x.ready_replicas) == d.spec.as_ref().and_then(|x| x.replicas)
                });
            ok.then_some(())
        }
    })
    .await;
    let floor = t1.elapsed();
    eprintln!(
        "quick-start: floor (server-side apply of {} rendered objects, workloads Ready) {floor:?}; operator/floor = {:.2}",
        values.len(),
        converged.as_secs_f64() / floor.as_secs_f64()
    );
    cleanup(&client, floor_ns).await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn mtls_permissive_reaches_every_peer_authentication() {
    let ns = "op-mtls";
    let (client, op) = converged_quick_start(ns).await;
    let strict = get_dyn(&client, ns, "PeerAuthentication", "private-cloud-zk").await.unwrap();
    assert_eq!(strict["spec"]["mtls"]["mode"], "STRICT");
    let p = json!({"spec": {"istio": {"mtls": {"mode": "permissive"}}}});
    patch::<ZooKeeperCluster>(&client, ns, NAME, p.clone()).await;
    patch::<BookKeeperCluster>(&client, ns, NAME, p.clone()).await;
    patch::<PulsarBroker>(&client, ns, NAME, p).await;
    for name in ["private-cloud-zk", "private-cloud-bk", "private-cloud-broker"] {
        wait_for(&format!("PeerAuthentication {name} PERMISSIVE"), DEADLINE, || {
            let client = client.clone();
            async move {
                let pa = get_dyn(&client, ns, "PeerAuthentication", name).await?;
                (pa["spec"]["mtls"]["mode"] == "PERMISSIVE").then_some(())
            }
        })
        .await;
    }
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn disabling_istio_on_the_broker_removes_its_istio_objects() {
    let ns = "op-no-mesh-broker";
    let (client, op) = converged_quick_start(ns).await;
    patch::<PulsarBroker>(&client, ns, NAME, json!({"spec": {"istio": {"enabled": false}}})).await;
    wait_for("the broker's Istio objects to go", DEADLINE, || {
        let client = client.clone();
        async move {
            let live = live_set(&client, ns).await;
            let istio = [
                "PeerAuthentication",
                "AuthorizationPolicy",
                "DestinationRule",
                "Gateway",
                "VirtualService",
                "ServiceEntry",
            ];
            let left: Vec<_> = live
                .iter()
                .filter(|(k, n)| n.starts_with("private-cloud-broker") && istio.contains(&k.as_str()))
                .collect();
            left.is_empty().then_some(())
        }
    })
    .await;
    // Pod template and pods relabelled out of the mesh.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    wait_for("broker pods relabelled out of the mesh", DEADLINE, || {
        let pods = pods.clone();
        async move {
            let l =
                pods.list_metadata(&ListParams::default().labels("app.kubernetes.io/component=broker")).await.ok()?;
            let ok = l.items.len() == 2
                && l.items.iter().all(|p| {
                    let labels = p.metadata.labels.clone().unwrap_or_default();
                    labels.get("sidecar.istio.io/inject").map(String::as_str) == Some("false")
                        && labels.get("istio.io/dataplane-mode").map(String::as_str) == Some("none")
                });
            ok.then_some(())
        }
    })
    .await;
    let sts = get_dyn(&client, ns, "StatefulSet", "private-cloud-broker").await.unwrap();
    assert_eq!(sts["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"], "false");
    wait_all_ready_no_external(&client, ns).await;
    wait_exact(&client, ns).await;
    let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
    assert!(pb["status"]["serviceEndpoints"]["external"].is_null());
    assert!(condition(&pb, "MeshConfigured").is_none());
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

async fn wait_all_ready_no_external(client: &Client, ns: &str) {
    wait_for("every resource Ready", DEADLINE, || async {
        let zk = get_json::<ZooKeeperCluster>(client, ns, NAME).await?;
        let bk = get_json::<BookKeeperCluster>(client, ns, NAME).await?;
        let pb = get_json::<PulsarBroker>(client, ns, NAME).await?;
        let pc = get_json::<PulsarCoordinator>(client, ns, NAME).await?;
        (is_ready(&zk) && is_ready(&bk) && is_ready(&pb) && is_ready(&pc)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn scaling_brokers_down_removes_per_broker_objects() {
    let ns = "op-scale";
    let (client, op) = converged_quick_start(ns).await;
    patch::<PulsarBroker>(&client, ns, NAME, json!({"spec": {"replicas": 5}})).await;
    wait_for("5 brokers Ready", DEADLINE, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (is_ready(&pb)
                && pb["status"]["readyReplicas"] == 5
                && pb["status"]["serviceEndpoints"]["brokers"].as_array()?.len() == 5)
                .then_some(())
        }
    })
    .await;
    wait_exact(&client, ns).await;
    // SIMPLE mode: no per-broker ServiceEntry (docs/design.md).
    assert_eq!(
        kinds_of(&live_set(&client, ns).await, "private-cloud-broker-4").len(),
        2,
        "Service and VirtualService for broker 4"
    );
    patch::<PulsarBroker>(&client, ns, NAME, json!({"spec": {"replicas": 2}})).await;
    wait_for("per-broker objects 2-4 gone", DEADLINE, || {
        let client = client.clone();
        async move {
            let live = live_set(&client, ns).await;
            let left: Vec<String> =
                (2..5).flat_map(|i| kinds_of(&live, &format!("private-cloud-broker-{i}"))).collect();
            left.is_empty().then_some(())
        }
    })
    .await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    assert_eq!(kinds_of(&live_set(&client, ns).await, "private-cloud-broker-1").len(), 2);
    wait_event(&client, ns, "Deleted", "").await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// Port numbers of a live Service, and whether it carries `label`.
async fn service_ports(client: &Client, ns: &str, name: &str, label: &str) -> Option<(Vec<i64>, bool)> {
    let svc = get_dyn(client, ns, "Service", name).await?;
    let ports = svc["spec"]["ports"].as_array()?.iter().filter_map(|p| p["port"].as_i64()).collect();
    Some((ports, svc["metadata"]["labels"][label].is_string()))
}

/// StreamNative's per-pod networking on a broker with external access:
/// the per-broker Services the routes use gain every broker port, the
/// advertised listener's 6660 and the user's port and label; switched off,
/// they go back to the route targets alone, and nothing else is left.
#[tokio::test]
async fn per_pod_services_and_listeners_follow_the_spec() {
    let ns = "op-podsvc";
    let (client, op) = converged_quick_start(ns).await;
    let (before, _) = service_ports(&client, ns, "private-cloud-broker-0", "team").await.expect("per-broker Service");
    patch::<PulsarBroker>(
        &client,
        ns,
        NAME,
        json!({"spec": {
            "labels": {"example.com/cost-center": "42"},
            "networking": {"podService": {"labels": {"team": "messaging"}, "ports": [{"name": "tcp-extra", "port": 7000}]}},
            "advertisedListeners": [{"name": "pod", "hostTemplate": "$(POD_NAME).op-podsvc.svc.cluster.local", "protocols": {"pulsar": {"containerPort": 6660}}}]
        }}),
    )
    .await;
    wait_for(
        "per-pod Services with the listener's and the user's ports, spec.labels on the broker's objects",
        DEADLINE,
        || {
            let client = client.clone();
            async move {
                let (ports, labelled) = service_ports(&client, ns, "private-cloud-broker-0", "team").await?;
                let cost = cost_center(&client, ns).await?;
                (labelled && cost == 2 && ports.contains(&6650) && ports.contains(&6660) && ports.contains(&7000))
                    .then_some(())
            }
        },
    )
    .await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    patch::<PulsarBroker>(
        &client,
        ns,
        NAME,
        json!({"spec": {"labels": null, "networking": null, "advertisedListeners": null}}),
    )
    .await;
    wait_for("per-broker Services back to the route targets, spec.labels gone", DEADLINE, || {
        let client = client.clone();
        let before = before.clone();
        async move {
            let (ports, labelled) = service_ports(&client, ns, "private-cloud-broker-0", "team").await?;
            let cost = cost_center(&client, ns).await?;
            (!labelled && cost == 0 && ports == before).then_some(())
        }
    })
    .await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// How many of the broker's ConfigMap and AuthorizationPolicy (a core and
/// an Istio object) carry `spec.labels`' cost-center label; None while
/// either is missing.
async fn cost_center(client: &Client, ns: &str) -> Option<usize> {
    let mut carried = 0;
    for kind in ["ConfigMap", "AuthorizationPolicy"] {
        let o = get_dyn(client, ns, kind, "private-cloud-broker").await?;
        carried += usize::from(o["metadata"]["labels"]["example.com/cost-center"] == "42");
    }
    Some(carried)
}

#[tokio::test]
async fn hand_edited_virtual_service_is_restored() {
    let ns = "op-drift-edit";
    let (client, op) = converged_quick_start(ns).await;
    let original = get_dyn(&client, ns, "VirtualService", "private-cloud-broker-0").await.unwrap();
    let vs: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &magnetar_operator::kinds::ISTIO[4].resource(None));
    vs.patch(
        "private-cloud-broker-0",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"hosts": ["evil.example.com"]}})),
    )
    .await
    .unwrap();
    let started = Instant::now();
    wait_for("the VirtualService restored", Duration::from_secs(30), || {
        let client = client.clone();
        let want = original["spec"].clone();
        async move {
            let now = get_dyn(&client, ns, "VirtualService", "private-cloud-broker-0").await?;
            (now["spec"] == want).then_some(())
        }
    })
    .await;
    eprintln!("hand edit restored in {:?}", started.elapsed());
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn deleted_managed_object_is_recreated() {
    let ns = "op-drift-delete";
    let (client, op) = converged_quick_start(ns).await;
    for (kind, name) in [
        // SIMPLE mode has no per-broker ServiceEntries; a per-broker route instead.
        ("VirtualService", "private-cloud-broker-1"),
        ("Service", "private-cloud-zk"),
        ("PeerAuthentication", "private-cloud-bk"),
    ] {
        let old = get_dyn(&client, ns, kind, name).await.unwrap();
        let k = magnetar_operator::kinds::CORE
            .iter()
            .chain(magnetar_operator::kinds::ISTIO.iter())
            .find(|k| k.kind == kind)
            .unwrap();
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &k.resource(None));
        api.delete(name, &DeleteParams::default()).await.unwrap();
        let uid = old["metadata"]["uid"].clone();
        wait_for(&format!("{kind}/{name} recreated"), Duration::from_secs(30), || {
            let client = client.clone();
            let uid = uid.clone();
            async move {
                let now = get_dyn(&client, ns, kind, name).await?;
                (now["metadata"]["uid"] != uid && now["metadata"]["deletionTimestamp"].is_null()).then_some(())
            }
        })
        .await;
    }
    wait_exact(&client, ns).await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// Touches every resource (an annotation) so that each is reconciled, and
/// waits until each kind has reconciled since.
async fn reconcile_everything(client: &Client, ns: &str, op: &Operator, stamp: &str) {
    let kinds = ["PulsarCoordinator", "ZooKeeperCluster", "BookKeeperCluster", "PulsarBroker"];
    let before: Vec<u64> = kinds.iter().map(|k| op.metrics().reconciles(k)).collect();
    let p = json!({"metadata": {"annotations": {"test.magnetar.io/touch": stamp}}});
    patch::<PulsarCoordinator>(client, ns, NAME, p.clone()).await;
    patch::<ZooKeeperCluster>(client, ns, NAME, p.clone()).await;
    patch::<BookKeeperCluster>(client, ns, NAME, p.clone()).await;
    patch::<PulsarBroker>(client, ns, NAME, p).await;
    wait_for("a reconcile of every kind", DEADLINE, || {
        let done = kinds.iter().zip(&before).all(|(k, b)| op.metrics().reconciles(k) > *b);
        async move { done.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn noop_reconcile_writes_nothing() {
    let ns = "op-noop";
    let (client, op) = converged_quick_start(ns).await;
    quiesce(&op).await;
    let before = op.writes();
    reconcile_everything(&client, ns, &op, "1").await;
    reconcile_everything(&client, ns, &op, "2").await;
    assert_eq!(op.writes() - before, 0, "a reconcile with nothing to change wrote to the API server");
    eprintln!("no-op reconcile: {} write requests", op.writes() - before);

    // A restarted operator (empty memory) writes nothing either.
    op.stop().await.unwrap();
    let op = start_operator(&client, ns).await;
    wait_for("the restarted operator to reconcile every kind", DEADLINE, || {
        let m = op.metrics().clone();
        async move {
            ["PulsarCoordinator", "ZooKeeperCluster", "BookKeeperCluster", "PulsarBroker"]
                .iter()
                .all(|k| m.reconciles(k) > 0)
                .then_some(())
        }
    })
    .await;
    reconcile_everything(&client, ns, &op, "3").await;
    assert_eq!(op.writes(), 0, "a restarted operator rewrote an unchanged cluster");
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn invalid_spec_is_reported_and_touches_nothing() {
    let ns = "op-invalid";
    let (client, op) = converged_quick_start(ns).await;
    let before = live_set(&client, ns).await;
    let sts_before = get_dyn(&client, ns, "StatefulSet", "private-cloud-broker").await.unwrap();
    patch::<PulsarBroker>(&client, ns, NAME, json!({"spec": {"zkServers": "no-such-zk:2181", "replicas": 3}})).await;
    let pb = wait_for("Degraded=True InvalidSpec", DEADLINE, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            let d = condition(&pb, "Degraded")?;
            (d["status"] == "True" && d["reason"] == "InvalidSpec").then_some(pb)
        }
    })
    .await;
    let msg = condition(&pb, "Degraded").unwrap()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("spec.zkServers") && msg.contains("no-such-zk") && msg.contains("private-cloud-zk:2181"),
        "{msg}"
    );
    assert_eq!(condition(&pb, "Ready").unwrap()["status"], "False");
    wait_event(&client, ns, "InvalidSpec", "no-such-zk").await;
    // Nothing applied, nothing deleted: still 2 brokers, same objects.
    let sts_after = get_dyn(&client, ns, "StatefulSet", "private-cloud-broker").await.unwrap();
    assert_eq!(sts_after["spec"]["replicas"], 2);
    assert_eq!(sts_after["metadata"]["resourceVersion"], sts_before["metadata"]["resourceVersion"]);
    assert_eq!(live_set(&client, ns).await, before);
    // Fixed: converges to 3 brokers.
    patch::<PulsarBroker>(&client, ns, NAME, json!({"spec": {"zkServers": "private-cloud-zk:2181"}})).await;
    wait_all_ready(&client, ns).await;
    let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
    assert_eq!(pb["status"]["readyReplicas"], 3);
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn deleting_the_cluster_leaves_only_retained_pvcs() {
    let ns = "op-delete";
    let client = setup(ns).await;
    let op = start_operator(&client, ns).await;
    let mut docs = quick_start(ns);
    // BookKeeper keeps its data; ZooKeeper's goes (the example says Delete).
    docs[2]["spec"]["storage"]["reclaimPolicy"] = json!("Retain");
    apply_all(&client, &docs).await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let names = |l: &[PersistentVolumeClaim]| l.iter().map(|p| p.name_any()).collect::<Vec<_>>();
    let all = pvcs.list(&ListParams::default()).await.unwrap().items;
    eprintln!("PVCs before deletion: {:?}", names(&all));
    let bk_pvcs: Vec<String> = names(&all).into_iter().filter(|n| n.contains("-bk-")).collect();
    // Bound by kwok's StorageClass (kwok-volume: hostPath PVs, reclaimPolicy Delete).
    let volume = |p: &PersistentVolumeClaim| p.spec.as_ref().and_then(|s| s.volume_name.clone()).unwrap_or_default();
    assert!(all.iter().all(|p| !volume(p).is_empty()), "every PVC bound before deletion");
    let zk_pvs: Vec<String> = all.iter().filter(|p| p.name_any().contains("-zk-")).map(volume).collect();
    assert_eq!(zk_pvs.len(), 3, "{:?}", names(&all));
    let dp = DeleteParams::default();
    Api::<PulsarCoordinator>::namespaced(client.clone(), ns).delete(NAME, &dp).await.unwrap();
    Api::<ZooKeeperCluster>::namespaced(client.clone(), ns).delete(NAME, &dp).await.unwrap();
    Api::<BookKeeperCluster>::namespaced(client.clone(), ns).delete(NAME, &dp).await.unwrap();
    Api::<PulsarBroker>::namespaced(client.clone(), ns).delete(NAME, &dp).await.unwrap();
    wait_for("every managed object gone", DEADLINE, || {
        let client = client.clone();
        async move { live_set(&client, ns).await.is_empty().then_some(()) }
    })
    .await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    wait_for("every pod gone", DEADLINE, || {
        let pods = pods.clone();
        async move { pods.list_metadata(&ListParams::default()).await.ok()?.items.is_empty().then_some(()) }
    })
    .await;
    let left = wait_for("only BookKeeper's PVCs left", DEADLINE, || {
        let pvcs = pvcs.clone();
        async move {
            let l = pvcs.list(&ListParams::default()).await.ok()?.items;
            let live: Vec<&PersistentVolumeClaim> =
                l.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
            live.iter()
                .all(|p| p.name_any().contains("-bk-"))
                .then(|| live.iter().map(|p| p.name_any()).collect::<Vec<_>>())
        }
    })
    .await;
    let mut left = left;
    left.sort();
    let mut want = bk_pvcs;
    want.sort();
    assert_eq!(left, want, "BookKeeper's PVCs (Retain) stay, ZooKeeper's (Delete) go");
    // The retained claims keep their volumes (the data); ZooKeeper's volumes
    // go with their claims (the StorageClass's reclaimPolicy Delete).
    for p in pvcs.list(&ListParams::default()).await.unwrap().items {
        let phase = p.status.as_ref().and_then(|s| s.phase.clone());
        assert_eq!(phase.as_deref(), Some("Bound"), "retained PVC {} keeps its volume", p.name_any());
    }
    let pv_api: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(client.clone());
    wait_for("ZooKeeper's volumes gone", DEADLINE, || {
        let (pv_api, zk_pvs) = (pv_api.clone(), zk_pvs.clone());
        async move {
            for pv in &zk_pvs {
                if pv_api.get_opt(pv).await.ok()?.is_some() {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn killed_mid_reconcile_then_restarted_converges_without_orphans() {
    let ns = "op-kill";
    let client = setup(ns).await;
    let op = start_operator(&client, ns).await;
    apply_all(&client, &quick_start(ns)).await;
    wait_for("the operator in the middle of its work", DEADLINE, || {
        let w = op.writes();
        async move { (w >= 8).then_some(()) }
    })
    .await;
    op.kill().await;
    let op = start_operator(&client, ns).await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    // Nothing duplicated or orphaned: each managed object has exactly one
    // controller, and it is one of the resources.
    let mut uids = Vec::new();
    for v in [
        get_json::<PulsarCoordinator>(&client, ns, NAME).await,
        get_json::<ZooKeeperCluster>(&client, ns, NAME).await,
        get_json::<BookKeeperCluster>(&client, ns, NAME).await,
        get_json::<PulsarBroker>(&client, ns, NAME).await,
    ] {
        uids.push(v.unwrap()["metadata"]["uid"].as_str().unwrap().to_string());
    }
    for (kind, name, owners) in live_owners(&client, ns).await {
        assert_eq!(owners.len(), 1, "{kind}/{name} has {} controllers", owners.len());
        assert!(uids.contains(&owners[0]), "{kind}/{name} is controlled by an unknown {}", owners[0]);
    }
    quiesce(&op).await;
    let before = op.writes();
    reconcile_everything(&client, ns, &op, "after-restart").await;
    assert_eq!(op.writes(), before);
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

#[tokio::test]
async fn coordinator_moves_components_to_ambient_one_kind_at_a_time() {
    let ns = "op-ambient";
    let (client, op) = converged_quick_start(ns).await;
    assert!(
        !kinds_of(&live_set(&client, ns).await, "private-cloud-").iter().all(|k| !k.starts_with("DestinationRule"))
    );
    patch::<PulsarCoordinator>(&client, ns, NAME, json!({"spec": {"istio": {"dataplaneMode": "ambient"}}})).await;
    // Record when each kind's spec turns ambient.
    let mut seen: [Option<Instant>; 3] = [None; 3];
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < DEADLINE * 2, "components never all ambient and Ready: seen {seen:?}");
        let now = Instant::now();
        let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await.unwrap();
        let bk = get_json::<BookKeeperCluster>(&client, ns, NAME).await.unwrap();
        let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
        for (i, v) in [&zk, &bk, &pb].into_iter().enumerate() {
            if v["spec"]["istio"]["dataplaneMode"] == "ambient" && seen[i].is_none() {
                seen[i] = Some(now);
            }
        }
        if [&zk, &bk, &pb].iter().all(|v| is_ready(v) && v["status"]["mesh"]["dataplaneMode"] == "ambient") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at: Vec<Duration> = seen.iter().map(|s| s.expect("seen").duration_since(t0)).collect();
    eprintln!("ambient reached ZooKeeper at {:?}, BookKeeper at {:?}, brokers at {:?}", at[0], at[1], at[2]);
    assert!(at[0] < at[1] && at[1] < at[2], "one kind at a time: {at:?}");
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    // Ambient: no DestinationRules; STRICT restored after the move.
    let live = live_set(&client, ns).await;
    assert!(live.iter().all(|(k, _)| k != "DestinationRule"), "{live:?}");
    for name in ["private-cloud-zk", "private-cloud-bk", "private-cloud-broker"] {
        let pa = get_dyn(&client, ns, "PeerAuthentication", name).await.unwrap();
        assert_eq!(pa["spec"]["mtls"]["mode"], "STRICT", "{name}");
    }
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// `(ordinal, uid, controller-revision-hash)` of the ZooKeeper pods.
async fn zk_pods(client: &Client, ns: &str) -> Vec<(String, String, String)> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels("app.kubernetes.io/component=zookeeper");
    let mut out: Vec<(String, String, String)> = pods
        .list_metadata(&lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let hash = p.labels().get("controller-revision-hash").cloned().unwrap_or_default();
            (p.name_any(), p.uid().unwrap_or_default(), hash)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn zookeeper_restarts_wait_for_the_leader_check_or_the_annotation() {
    let ns = "op-zk-leader";
    let client = setup(ns).await;
    let op = start_operator(&client, ns).await;
    // ZooKeeper alone, without ignore-leader-check.
    let mut zk = quick_start(ns).into_iter().find(|d| d["kind"] == "ZooKeeperCluster").unwrap();
    zk["metadata"].as_object_mut().unwrap().remove("annotations");
    zk["metadata"].as_object_mut().unwrap().remove("labels");
    apply_all(&client, &[zk]).await;
    wait_for("ZooKeeper Ready", DEADLINE, || {
        let client = client.clone();
        async move { get_json::<ZooKeeperCluster>(&client, ns, NAME).await.filter(is_ready) }
    })
    .await;
    let sts = get_dyn(&client, ns, "StatefulSet", "private-cloud-zk").await.unwrap();
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "OnDelete");
    let before = zk_pods(&client, ns).await;
    assert_eq!(before.len(), 3, "{before:?}");

    // A pod-template change: under kwok nothing answers srvr, so the check
    // fails, nothing is restarted, and the status names the annotation.
    let p = json!({"spec": {"pod": {"resources": {"requests": {"cpu": "300m"}}}}});
    patch::<ZooKeeperCluster>(&client, ns, NAME, p).await;
    let zk = wait_for("Progressing=True LeaderCheckFailed", DEADLINE, || {
        let client = client.clone();
        async move {
            let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await?;
            let c = condition(&zk, "Progressing")?;
            (c["status"] == "True" && c["reason"] == "LeaderCheckFailed").then_some(zk)
        }
    })
    .await;
    let msg = condition(&zk, "Progressing").unwrap()["message"].as_str().unwrap().to_string();
    eprintln!("leader check failed: {msg}");
    assert!(msg.contains("cloud.streamnative.io/ignore-leader-check: \"true\""), "{msg}");
    assert!(msg.contains("private-cloud-zk-") && msg.contains("no pod was restarted"), "{msg}");
    assert_eq!(condition(&zk, "Degraded").unwrap()["reason"], "LeaderCheckFailed");
    assert_eq!(condition(&zk, "Ready").unwrap()["status"], "False");
    wait_event(&client, ns, "LeaderCheckFailed", "ignore-leader-check").await;
    // The StatefulSet has the new revision; no pod was deleted.
    let sts = get_dyn(&client, ns, "StatefulSet", "private-cloud-zk").await.unwrap();
    let update = sts["status"]["updateRevision"].as_str().unwrap().to_string();
    assert!(before.iter().all(|(_, _, hash)| *hash != update), "{before:?} vs {update}");
    assert_eq!(zk_pods(&client, ns).await, before, "no ZooKeeper pod may restart without the leader check");
    assert!(events(&client, ns, "RestartedPod").await.is_empty());

    // The fix the status names: the pods are replaced, highest ordinal first.
    let p = json!({"metadata": {"annotations": {"cloud.streamnative.io/ignore-leader-check": "true"}}});
    patch::<ZooKeeperCluster>(&client, ns, NAME, p).await;
    let after = wait_for("every ZooKeeper pod on the new revision, ZooKeeper Ready", DEADLINE, || {
        let client = client.clone();
        let update = update.clone();
        async move {
            let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await?;
            let pods = zk_pods(&client, ns).await;
            let sts = get_dyn(&client, ns, "StatefulSet", "private-cloud-zk").await?;
            let done = is_ready(&zk)
                && pods.len() == 3
                && pods.iter().all(|(_, _, hash)| *hash == update)
                && sts["status"]["updatedReplicas"] == 3
                && sts["status"]["readyReplicas"] == 3;
            done.then_some(pods)
        }
    })
    .await;
    for ((name, old_uid, _), (_, new_uid, _)) in before.iter().zip(&after) {
        assert_ne!(old_uid, new_uid, "{name} was replaced");
    }
    let mut restarted = events(&client, ns, "RestartedPod").await;
    restarted.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    let order: Vec<String> =
        restarted.iter().filter_map(|e| e.note.as_deref()?.split_whitespace().nth(2).map(str::to_string)).collect();
    assert_eq!(order, ["private-cloud-zk-2", "private-cloud-zk-1", "private-cloud-zk-0"], "reverse ordinal order");
    let zk = get_json::<ZooKeeperCluster>(&client, ns, NAME).await.unwrap();
    assert_eq!(condition(&zk, "Degraded").unwrap()["status"], "False");
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// The test environment stays healthy past the node lifecycle controller's
/// grace period: kwok renews the fake nodes' Leases, so no node and no pod
/// turns NotReady while a converged cluster sits for three minutes
/// (before the Leases, every pod went NotReady about 70 s after start).
#[tokio::test]
async fn a_converged_cluster_stays_ready_for_three_minutes() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::runtime::watcher;

    const HOLD: Duration = Duration::from_secs(180);
    let ns = "op-hold-ready";
    let (client, op) = converged_quick_start(ns).await;

    let pod_ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let nodes: Api<Node> = Api::all(client.clone());
    enum Change {
        Pod(Box<Pod>),
        Node(Box<Node>),
        Deleted(String),
        Nothing,
    }
    fn change<K: kube::Resource, F: Fn(K) -> Change>(e: watcher::Event<K>, wrap: F) -> Change {
        match e {
            watcher::Event::Apply(k) | watcher::Event::InitApply(k) => wrap(k),
            watcher::Event::Delete(k) => Change::Deleted(k.meta().name.clone().unwrap_or_default()),
            watcher::Event::Init | watcher::Event::InitDone => Change::Nothing,
        }
    }
    // Every change to a pod of the cluster or to a node during the hold.
    let mut changes = futures::stream::select(
        watcher(pods, watcher::Config::default()).map(|e| e.map(|e| change(e, |p| Change::Pod(Box::new(p))))),
        watcher(nodes, watcher::Config::default()).map(|e| e.map(|e| change(e, |n| Change::Node(Box::new(n))))),
    )
    .boxed();
    let (mut pod_events, mut node_events) = (0, 0);
    let end = tokio::time::Instant::now() + HOLD;
    loop {
        let next = tokio::select! {
            next = changes.next() => next,
            _ = tokio::time::sleep_until(end) => break,
        };
        let item = next.expect("the watches go on").expect("watch error");
        {
            match item {
                Change::Nothing => {}
                Change::Deleted(name) => panic!("{name} was deleted during the hold"),
                Change::Node(node) => {
                    node_events += 1;
                    assert!(
                        magnetar_testenv::node_ready_untainted(Some(&node)),
                        "node {} turned NotReady or tainted during the hold: {:?}",
                        node.name_any(),
                        node.status.and_then(|s| s.conditions)
                    );
                }
                Change::Pod(pod) => {
                    pod_events += 1;
                    assert!(
                        pod.metadata.deletion_timestamp.is_none(),
                        "pod {} deleted during the hold",
                        pod.name_any()
                    );
                    assert!(
                        pod_ready(&pod),
                        "pod {} turned NotReady during the hold: {:?}",
                        pod.name_any(),
                        pod.status
                    );
                }
            }
        }
    }
    assert!(all_ready(&client, ns).await, "every resource still Ready with endpoints after {HOLD:?}");
    assert!(pod_events > 0 && node_events > 0, "the watches saw the pods and the nodes ({pod_events}, {node_events})");
    eprintln!("held Ready for {HOLD:?}: {pod_events} pod and {node_events} node events, all Ready");
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// Issue 7.4: an ingress gateway that is not installed yet holds back only
/// external access. The workloads and every in-cluster object are applied
/// and Ready; ExternalAccess says what is missing and how to fix it; the
/// gateway's pods and then its TLS secret appearing are each picked up by a
/// watch (well before the two-minute safety requeue), and the Gateway and
/// VirtualServices follow.
#[tokio::test]
async fn a_missing_gateway_holds_back_only_external_access() {
    let ns = "op-prereq";
    let gw_ns = "op-prereq-gw";
    let client = setup(ns).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    if namespaces.get_opt(gw_ns).await.unwrap().is_some() {
        let _ = namespaces.delete(gw_ns, &Default::default()).await;
        wait_for("the old gateway namespace to go", DEADLINE, || {
            let namespaces = namespaces.clone();
            async move { namespaces.get_opt(gw_ns).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }
    magnetar_testenv::apply::ensure_namespace(&client, gw_ns).await.unwrap();
    let op = start_operator(&client, ns).await;
    let mut docs = quick_start(ns);
    for d in docs.iter_mut().filter(|d| d["kind"] == "PulsarBroker") {
        d["spec"]["istio"]["gateway"]["namespace"] = json!(gw_ns);
    }
    apply_all(&client, &docs).await;

    let external = |pb: &Value| condition(pb, "ExternalAccess").unwrap_or_default();
    let pb = wait_for("the broker Ready, its external access waiting for the gateway pods", DEADLINE, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (is_ready(&pb) && external(&pb)["reason"] == "GatewayPodsMissing").then_some(pb)
        }
    })
    .await;
    let msg = external(&pb)["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(external(&pb)["status"], "False", "{}", pb["status"]);
    assert!(msg.contains(&format!("spec.istio.gateway.selector matches no pod in namespace {gw_ns}")), "{msg}");
    assert!(msg.contains("spec.istio.gateway.tls.certSecretName: Secret ingressgateway-tls does not exist"), "{msg}");
    assert!(pb["status"]["serviceEndpoints"]["external"].is_null(), "no external endpoints yet: {}", pb["status"]);
    assert!(!pb["status"]["serviceEndpoints"]["cluster"].is_null(), "{}", pb["status"]);
    let live = live_set(&client, ns).await;
    assert!(live.contains(&("StatefulSet".into(), "private-cloud-broker".into())), "{live:?}");
    assert!(live.contains(&("AuthorizationPolicy".into(), "private-cloud-broker".into())), "{live:?}");
    let routing: Vec<_> = live.iter().filter(|(k, _)| k == "Gateway" || k == "VirtualService").collect();
    assert!(routing.is_empty(), "external access held back: {routing:?}");
    wait_event(&client, ns, "GatewayPodsMissing", "install the Istio ingress gateway").await;
    // Secure by default (issue 11.3): the quick start exposes its brokers
    // without Pulsar's own authentication, which the status and an Event
    // say, with the fix.
    let edge = |pb: &Value| condition(pb, "EdgeAuthentication").unwrap_or_default();
    assert_eq!(edge(&pb)["status"], "False", "{}", pb["status"]);
    assert_eq!(edge(&pb)["reason"], "ExposedWithoutAuthentication");
    wait_event(&client, ns, "ExposedWithoutAuthentication", "config.authentication.jwt").await;

    // The gateway's pods appear: the pod watch brings the next pass.
    let applier = magnetar_testenv::apply::Applier::new(client.clone(), "magnetar-test");
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istio-ingressgateway", "namespace": gw_ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "template": {
                "metadata": {"labels": {"istio": "ingressgateway"}},
                "spec": {"containers": [{"name": "istio-proxy", "image": "istio/proxyv2:1.24.2"}]}
            }
        }
    });
    applier.apply(&deploy).await.unwrap();
    let watched = Duration::from_secs(60);
    wait_for("external access waiting for the TLS secret only", watched, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (external(&pb)["reason"] == "GatewaySecretMissing").then_some(())
        }
    })
    .await;

    // The secret appears: the Gateway and VirtualServices follow.
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "ingressgateway-tls", "namespace": gw_ns},
        "stringData": {"tls.crt": "not-a-real-cert", "tls.key": "not-a-real-key"}
    });
    applier.apply(&secret).await.unwrap();
    let pb = wait_for("external access routed", watched, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (external(&pb)["status"] == "True" && !pb["status"]["serviceEndpoints"]["external"].is_null()).then_some(pb)
        }
    })
    .await;
    assert_eq!(external(&pb)["reason"], "GatewayRoutesApplied");
    // Pulsar's authentication on: the warning goes.
    for d in docs.iter_mut().filter(|d| d["kind"] == "PulsarBroker") {
        d["spec"]["config"]["custom"] = json!({"authenticationEnabled": "true"});
    }
    apply_all(&client, &docs).await;
    wait_for("EdgeAuthentication True once authentication is on", DEADLINE, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (edge(&pb)["status"] == "True").then_some(())
        }
    })
    .await;
    let live = live_set(&client, ns).await;
    for (kind, name) in [
        ("Gateway", "private-cloud-broker-gateway"),
        ("VirtualService", "private-cloud-broker"),
        ("VirtualService", "private-cloud-broker-0"),
        ("VirtualService", "private-cloud-broker-1"),
    ] {
        assert!(live.contains(&(kind.to_string(), name.to_string())), "{kind}/{name} missing; have {live:?}");
    }
    let gw = get_dyn(&client, ns, "Gateway", "private-cloud-broker-gateway").await.unwrap();
    assert_eq!(gw["spec"]["selector"]["istio"], "ingressgateway");
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
    let _ = namespaces.delete(gw_ns, &Default::default()).await;
}

/// Issue 12: five brokers with every protocol through Gateway API objects
/// (the upstream v1 CRDs, strict server-side apply) converge; each
/// per-broker host has its own route to its own broker; scaling down prunes
/// the per-broker routes; switching back to Istio's Gateway and
/// VirtualServices leaves no Gateway API object behind.
#[tokio::test]
async fn gateway_api_routes_every_broker_host_and_switching_back_leaves_nothing() {
    let ns = "op-gateway-api";
    let (client, op) = converged_quick_start(ns).await;
    // The created Gateway reads its certificate beside it.
    copy_gateway_secret(&client, ns).await;
    patch::<PulsarBroker>(
        &client,
        ns,
        NAME,
        json!({"spec": {
            "replicas": 5,
            "config": {"protocolHandlers": {"kop": {"enabled": true}, "mop": {"enabled": true}, "aop": {"enabled": true}}},
            "istio": {"gateway": {"gatewayAPI": {"gatewayClassName": "istio"}}}
        }}),
    )
    .await;
    let gapi = |kind: &str| kind_key(magnetar_operator::kinds::GATEWAY_API, kind);
    wait_for("5 brokers Ready behind Gateway API routes", DEADLINE, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (is_ready(&pb)
                && pb["status"]["readyReplicas"] == 5
                && condition(&pb, "ExternalAccess")?["status"] == "True")
                .then_some(())
        }
    })
    .await;
    wait_exact(&client, ns).await;
    let live = live_set(&client, ns).await;
    assert!(live.contains(&(gapi("Gateway"), "private-cloud-broker-gateway".into())), "{live:?}");
    assert!(!live.iter().any(|(k, _)| k == "VirtualService" || k == "Gateway"), "Istio routing left: {live:?}");
    // Each per-broker host (as the status publishes it) routes, for every
    // TLS protocol, to that broker's own Service.
    let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
    let hosts: Vec<String> = serde_json::from_value(pb["status"]["serviceEndpoints"]["brokers"].clone()).unwrap();
    assert_eq!(hosts.len(), 5);
    let tls_routes = tls_routes(&client, ns).await;
    for (i, host) in hosts.iter().enumerate() {
        for protocol in ["pulsar", "kafka", "mqtt", "amqp"] {
            let name = format!("private-cloud-broker-{i}-{protocol}");
            let spec = &tls_routes.iter().find(|r| r["metadata"]["name"] == name.as_str()).expect(&name)["spec"];
            assert_eq!(spec["hostnames"], json!([host]), "{name}");
            assert_eq!(spec["rules"][0]["backendRefs"][0]["name"], format!("private-cloud-broker-{i}"), "{name}");
        }
        assert!(live.contains(&(gapi("HTTPRoute"), format!("private-cloud-broker-{i}-web"))));
    }
    // The routes' own conditions, as the implementation writes them, reach
    // the broker's status: none yet, then all accepted.
    let pb = get_json::<PulsarBroker>(&client, ns, NAME).await.unwrap();
    assert_eq!(condition(&pb, "GatewayRoutes").unwrap()["reason"], "RoutesNotReported", "{}", pb["status"]);
    accept_routes(&client, ns).await;
    wait_for("GatewayRoutes True once every route is accepted", DEADLINE, || {
        let client = client.clone();
        async move {
            let pb = get_json::<PulsarBroker>(&client, ns, NAME).await?;
            (condition(&pb, "GatewayRoutes")?["status"] == "True").then_some(())
        }
    })
    .await;
    // Scale-down prunes the routes of brokers 2-4.
    patch::<PulsarBroker>(&client, ns, NAME, json!({"spec": {"replicas": 2}})).await;
    wait_for("per-broker routes 2-4 gone", DEADLINE, || {
        let client = client.clone();
        async move {
            let live = live_set(&client, ns).await;
            let left = live
                .iter()
                .filter(|(_, n)| (2..5).any(|i| n.starts_with(&format!("private-cloud-broker-{i}"))))
                .count();
            (left == 0).then_some(())
        }
    })
    .await;
    wait_exact(&client, ns).await;
    // Back to Istio's objects: nothing of the Gateway API stays.
    patch::<PulsarBroker>(&client, ns, NAME, json!({"spec": {"istio": {"gateway": {"gatewayAPI": null}}}})).await;
    wait_for("Istio routing back, Gateway API objects gone", DEADLINE, || {
        let client = client.clone();
        async move {
            let live = live_set(&client, ns).await;
            let api_left = live.iter().any(|(k, _)| k.ends_with(magnetar_operator::kinds::GATEWAY_API));
            let istio = live.contains(&("VirtualService".to_string(), "private-cloud-broker-1".to_string()));
            (!api_left && istio).then_some(())
        }
    })
    .await;
    wait_all_ready(&client, ns).await;
    wait_exact(&client, ns).await;
    op.stop().await.unwrap();
    cleanup(&client, ns).await;
}

/// The quick start's gateway certificate, copied into `ns`.
async fn copy_gateway_secret(client: &Client, ns: &str) {
    use k8s_openapi::api::core::v1::Secret;
    let from: Api<Secret> = Api::namespaced(client.clone(), "istio-system");
    let mut s = from.get("ingressgateway-tls").await.unwrap();
    s.metadata = kube::api::ObjectMeta { name: Some("ingressgateway-tls".into()), ..Default::default() };
    let to: Api<Secret> = Api::namespaced(client.clone(), ns);
    to.create(&Default::default(), &s).await.unwrap();
}

/// Stands in for a Gateway API implementation: every TLSRoute and
/// HTTPRoute in `ns` gets a parent status, Accepted and ResolvedRefs True.
async fn accept_routes(client: &Client, ns: &str) {
    for kind in &magnetar_operator::kinds::GATEWAY_API_KINDS[1..] {
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource(None));
        for r in api.list(&ListParams::default()).await.unwrap().items {
            let name = r.name_any();
            let parent = r.data["spec"]["parentRefs"][0].clone();
            let now = "2026-01-01T00:00:00Z";
            let cond =
                |t: &str| json!({"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": now});
            let status = json!({"status": {"parents": [{
                "parentRef": parent,
                "controllerName": "example.com/test-gateway-controller",
                "conditions": [cond("Accepted"), cond("ResolvedRefs")]
            }]}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
        }
    }
}

/// The TLSRoutes in `ns`, as JSON.
async fn tls_routes(client: &Client, ns: &str) -> Vec<Value> {
    let kind = magnetar_operator::kinds::GATEWAY_API_KINDS[1];
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource(None));
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect()
}
