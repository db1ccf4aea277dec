//! The project's own examples render with what each one is there to show.

use std::path::PathBuf;

use magnetar_desired::Object;
use serde_json::Value;

fn example(file: &str) -> Vec<Object> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    magnetar_desired::render::render(&[(file.to_string(), text)]).unwrap_or_else(|e| panic!("{file}: {e}")).objects
}

fn of<'a>(objs: &'a [Object], kind: &str) -> Vec<&'a Object> {
    objs.iter().filter(|o| o.kind == kind).collect()
}

fn hosts(o: &Object) -> Vec<String> {
    o.value["spec"]["hosts"].as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_string)).collect()
}

fn pod_labels(o: &Object) -> &Value {
    &o.value["spec"]["template"]["metadata"]["labels"]
}

#[test]
fn ambient_has_no_destination_rules_and_ambient_pods() {
    let objs = example("ambient.yaml");
    assert!(of(&objs, "DestinationRule").is_empty(), "no ISTIO_MUTUAL DestinationRule in ambient mode");
    for sts in of(&objs, "StatefulSet") {
        assert_eq!(pod_labels(sts)["istio.io/dataplane-mode"], "ambient", "{}", sts.name);
        assert_eq!(pod_labels(sts)["sidecar.istio.io/inject"], "false", "{}", sts.name);
        assert!(sts.value["spec"]["template"]["metadata"]["annotations"].get("proxy.istio.io/config").is_none());
    }
    // The metrics port is PERMISSIVE at port level for a Prometheus outside the mesh.
    let pa = of(&objs, "PeerAuthentication").into_iter().find(|o| o.name == "amb-zk").unwrap();
    assert_eq!(pa.value["spec"]["mtls"]["mode"], "STRICT");
    assert_eq!(pa.value["spec"]["portLevelMtls"]["8000"]["mode"], "PERMISSIVE");
}

#[test]
fn passthrough_example_has_five_fqdn_brokers_and_every_protocol() {
    let objs = example("passthrough-all-protocols.yaml");
    let mut vs: Vec<String> = of(&objs, "VirtualService").iter().flat_map(|o| hosts(o)).collect();
    vs.sort();
    let mut want: Vec<String> = (0..5).map(|i| format!("five-broker-{i}.streams.example.com")).collect();
    want.push("streams.example.com".into());
    want.sort();
    assert_eq!(vs, want);
    let gw = of(&objs, "Gateway")[0];
    let mut ports: Vec<i64> =
        gw.value["spec"]["servers"].as_array().unwrap().iter().map(|s| s["port"]["number"].as_i64().unwrap()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports, [443, 5671, 6651, 8883, 9093]);
    // AoP has no TLS listener: AMQP TLS ends at the gateway, one SIMPLE
    // server per host (the main host and five brokers), the rest pass through.
    let servers = gw.value["spec"]["servers"].as_array().unwrap();
    let amqp: Vec<&Value> = servers.iter().filter(|s| s["port"]["number"] == 5671).collect();
    assert_eq!(amqp.len(), 6);
    assert!(amqp.iter().all(|s| s["tls"]["mode"] == "SIMPLE" && s["tls"]["credentialName"] == "streams-tls"));
    assert!(servers.iter().filter(|s| s["port"]["number"] != 5671).all(|s| s["tls"]["mode"] == "PASSTHROUGH"));
    assert_eq!(gw.value["spec"]["selector"]["app"], "edge-gateway");
    // The custom gateway identity and the extra rule reach the broker's policy.
    let ap = of(&objs, "AuthorizationPolicy").into_iter().find(|o| o.name == "five-broker").unwrap();
    let text = ap.value.to_string();
    assert!(text.contains("cluster.local/ns/edge/sa/edge-gateway"), "{text}");
    assert!(text.contains("cluster.local/ns/analytics/sa/spark"), "{text}");
    assert_eq!(of(&objs, "ServiceEntry").len(), 5);
}

#[test]
fn name_uid_prefix_example_uses_its_revision_and_no_service_entries() {
    let objs = example("name-uid-prefix.yaml");
    assert!(of(&objs, "ServiceEntry").is_empty(), "meshInternalHosts: false");
    for sts in of(&objs, "StatefulSet") {
        assert_eq!(pod_labels(sts)["istio.io/rev"], "canary", "{}", sts.name);
        assert!(pod_labels(sts).get("sidecar.istio.io/inject").is_none(), "{}", sts.name);
    }
    let per_broker: Vec<String> =
        of(&objs, "VirtualService").iter().filter(|o| o.name != "canary-broker").flat_map(|o| hosts(o)).collect();
    assert_eq!(per_broker.len(), 2);
    for h in &per_broker {
        assert!(h.starts_with("canary-") && h.ends_with(".canary.example.com"), "{h}");
    }
    // The customization reached the broker's DestinationRule only.
    let dr = |name: &str| of(&objs, "DestinationRule").into_iter().find(|o| o.name == name).unwrap().value.clone();
    assert_eq!(dr("canary-broker")["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"], 1000);
    assert!(dr("canary-broker-headless")["spec"]["trafficPolicy"].get("connectionPool").is_none());
    let zk_pa = of(&objs, "PeerAuthentication").into_iter().find(|o| o.name == "canary-zk").unwrap();
    assert_eq!(zk_pa.value["spec"]["mtls"]["mode"], "PERMISSIVE");
}

#[test]
fn sidecar_quick_start_has_a_toolset_pointing_at_the_brokers() {
    let objs = example("sidecar-quick-start.yaml");
    let toolset = of(&objs, "Deployment").into_iter().find(|o| o.name == "demo-toolset").expect("toolset");
    assert_eq!(pod_labels(toolset)["sidecar.istio.io/inject"], "true");
    let cm = of(&objs, "ConfigMap").into_iter().find(|o| o.name == "demo-toolset").unwrap().value.to_string();
    assert!(cm.contains("demo-broker.pulsar-demo.svc.cluster.local:8080"), "{cm}");
    assert!(of(&objs, "StatefulSet").iter().any(|o| o.name == "demo-proxy"));
}

/// The cluster DNS domain is a setting: with another one, no generated name
/// says `svc.cluster.local` (ZooKeeper servers, broker pod hosts, the
/// cluster registration, client.conf, Istio hosts), while principals keep
/// the trust domain, a separate setting.
#[test]
fn every_in_cluster_name_uses_the_configured_cluster_domain() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    let mut inputs = Vec::new();
    for f in ["examples/sidecar-quick-start.yaml", "examples/passthrough-all-protocols.yaml", "examples/ambient.yaml"] {
        inputs.push((f.to_string(), std::fs::read_to_string(format!("{root}{f}")).unwrap()));
    }
    let options = magnetar_desired::render::RenderOptions { cluster_domain: "k8s.example.com".into() };
    let objs = magnetar_desired::render::render_with(&inputs, &options).unwrap().objects;
    let text: String = objs.iter().map(|o| o.value.to_string()).collect();
    assert!(!text.contains("svc.cluster.local"), "a name in the default domain is left");
    for want in [
        "pulsar-demo.svc.k8s.example.com", // zoo.cfg servers, broker hosts, client.conf
        "svc.k8s.example.com:2888:3888",
        "\"host\":\"five-broker-0.pulsar-streams.svc.k8s.example.com\"", // VirtualService destination
    ] {
        assert!(text.contains(want), "{want} missing");
    }
    assert!(text.contains("cluster.local/ns/"), "principals keep the trust domain");
    let default = magnetar_desired::render::render(&inputs).unwrap().objects;
    let text: String = default.iter().map(|o| o.value.to_string()).collect();
    assert!(text.contains("svc.cluster.local") && !text.contains("k8s.example.com"));
}
