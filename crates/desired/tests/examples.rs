//! The project's own examples render with what each one is there to show.

mod support;

use std::path::PathBuf;

use magnetar_desired::Object;
use magnetar_desired::istio::types::{Gateway, PeerAuthentication, PeerMtlsMode, ServerTlsMode, VirtualService};
use support::{as_typed, entry, pod_annotations, pod_labels, typed};

fn example(file: &str) -> Vec<Object> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    magnetar_desired::render::render(&[(file.to_string(), text)]).unwrap_or_else(|e| panic!("{file}: {e}")).objects
}

fn of<'a>(objs: &'a [Object], kind: &str) -> Vec<&'a Object> {
    objs.iter().filter(|o| o.kind == kind).collect()
}

/// The hosts of VirtualService `o`.
fn hosts(o: &Object) -> Vec<String> {
    as_typed::<VirtualService>(o).spec.hosts
}

#[test]
fn ambient_has_no_destination_rules_and_ambient_pods() {
    let objs = example("ambient.yaml");
    assert!(of(&objs, "DestinationRule").is_empty(), "no ISTIO_MUTUAL DestinationRule in ambient mode");
    for sts in of(&objs, "StatefulSet") {
        let labels = pod_labels(sts);
        assert_eq!(entry(&labels, "istio.io/dataplane-mode"), Some("ambient"), "{}", sts.name);
        assert_eq!(entry(&labels, "sidecar.istio.io/inject"), Some("false"), "{}", sts.name);
        assert!(!pod_annotations(sts).contains_key("proxy.istio.io/config"));
    }
    // The metrics port is PERMISSIVE at port level for a Prometheus outside the mesh.
    let pa: PeerAuthentication = typed(&objs, "amb-zk");
    assert_eq!(pa.spec.mtls.map(|m| m.mode), Some(PeerMtlsMode::Strict));
    assert_eq!(pa.spec.port_level_mtls.get("8000").map(|m| m.mode), Some(PeerMtlsMode::Permissive));
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
    let gw: Gateway = as_typed(of(&objs, "Gateway")[0]);
    let servers = &gw.spec.servers;
    let mut ports: Vec<i32> = servers.iter().map(|s| s.port.number).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports, [443, 5671, 6651, 8883, 9093]);
    // AoP has no TLS listener: AMQP TLS ends at the gateway, one SIMPLE
    // server per host (the main host and five brokers), the rest pass through.
    let amqp: Vec<_> = servers.iter().filter(|s| s.port.number == 5671).collect();
    assert_eq!(amqp.len(), 6);
    assert!(amqp.iter().all(|s| {
        s.tls
            .as_ref()
            .is_some_and(|t| t.mode == ServerTlsMode::Simple && t.credential_name.as_deref() == Some("streams-tls"))
    }));
    assert!(
        servers
            .iter()
            .filter(|s| s.port.number != 5671)
            .all(|s| s.tls.as_ref().is_some_and(|t| t.mode == ServerTlsMode::Passthrough))
    );
    assert_eq!(entry(&gw.spec.selector, "app"), Some("edge-gateway"));
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
        let labels = pod_labels(sts);
        assert_eq!(entry(&labels, "istio.io/rev"), Some("canary"), "{}", sts.name);
        assert!(!labels.contains_key("sidecar.istio.io/inject"), "{}", sts.name);
    }
    let per_broker: Vec<String> =
        of(&objs, "VirtualService").iter().filter(|o| o.name != "canary-broker").flat_map(|o| hosts(o)).collect();
    assert_eq!(per_broker.len(), 2);
    for h in &per_broker {
        assert!(h.starts_with("canary-") && h.ends_with(".canary.example.com"), "{h}");
    }
    // The customization reached the broker's DestinationRule only. The
    // typed DestinationRule has no connectionPool (magnetar never writes
    // one): these stay JSON.
    let dr = |name: &str| of(&objs, "DestinationRule").into_iter().find(|o| o.name == name).unwrap().value.clone();
    assert_eq!(dr("canary-broker")["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"], 1000);
    assert!(dr("canary-broker-headless")["spec"]["trafficPolicy"].get("connectionPool").is_none());
    let zk_pa: PeerAuthentication = typed(&objs, "canary-zk");
    assert_eq!(zk_pa.spec.mtls.map(|m| m.mode), Some(PeerMtlsMode::Permissive));
}

#[test]
fn sidecar_quick_start_has_a_toolset_pointing_at_the_brokers() {
    let objs = example("sidecar-quick-start.yaml");
    let toolset = of(&objs, "Deployment").into_iter().find(|o| o.name == "demo-toolset").expect("toolset");
    assert_eq!(entry(&pod_labels(toolset), "sidecar.istio.io/inject"), Some("true"));
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

/// StreamNative's storage layout and pod settings: claims per volume,
/// ZooKeeper's own transaction-log claim, the token secrets by reference
/// only, the sidecar and its volume beside the broker.
#[test]
fn storage_and_pod_settings_example_lays_out_volumes_and_keeps_secrets_out_of_config() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let objs = example("storage-and-pod-settings.yaml");
    let claims = |name: &str| -> Vec<String> {
        let sts: StatefulSet = typed(&objs, name);
        let templates = sts.spec.unwrap().volume_claim_templates.unwrap_or_default();
        templates.into_iter().map(|c| c.metadata.name.unwrap()).collect()
    };
    assert_eq!(claims("store-zk"), ["data", "datalog"]);
    assert_eq!(claims("store-bk"), ["journal-0", "journal-1", "ledgers"]);
    let broker: StatefulSet = typed(&objs, "store-broker");
    let pod = broker.spec.unwrap().template.spec.unwrap();
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["broker", "log-shipper"]);
    let env = pod.containers[0].env.clone().unwrap();
    let token = env.iter().find(|e| e.name == "brokerClientAuthenticationParameters").unwrap();
    assert!(token.value.is_none() && token.value_from.as_ref().unwrap().secret_key_ref.is_some());
    let config = of(&objs, "ConfigMap").into_iter().map(|o| o.value.to_string()).collect::<String>();
    assert!(!config.contains("brokerClientAuthenticationParameters"), "the token stays in its Secret");
    assert!(pod.volumes.unwrap().iter().any(|v| v.name == "log-shipper-config"));
}
