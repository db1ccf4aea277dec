//! StreamNative's public examples (../shared/compat) render, and the result
//! holds what SPEC promises — checked field by field, not snapshotted.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use magnetar_desired::Object;
use magnetar_desired::istio::types::{
    AuthorizationAction, AuthorizationPolicy, ClientTlsMode, DestinationRule, Gateway, Operation, PeerAuthentication,
    PeerMtlsMode, PortProtocol, Rule, RuleTo, ServerTls, ServerTlsMode, VirtualService,
};
use support::{
    as_typed, config_file, entry, first_container, metadata, object, pod_annotations, pod_labels, pod_spec,
    service_ports, typed,
};

fn compat(file: &str) -> Vec<Object> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat");
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (shared/ must sit beside the checkout)", path.display()));
    magnetar_desired::render::render(&[(file.to_string(), text)]).unwrap_or_else(|e| panic!("{file}: {e}")).objects
}

fn names(objs: &[Object], kind: &str) -> Vec<String> {
    let mut v: Vec<String> = objs.iter().filter(|o| o.kind == kind).map(|o| o.name.clone()).collect();
    v.sort();
    v
}

fn ap_principals(ap: &AuthorizationPolicy) -> Vec<String> {
    let mut v: Vec<String> =
        ap.spec.rules.iter().flat_map(|r| &r.from).flat_map(|f| f.source.principals.iter().cloned()).collect();
    v.sort();
    v.dedup();
    v
}

const SA: &str = "cluster.local/ns/pulsar/sa/";

#[test]
fn quick_start_istio_has_every_spec_object() {
    let objs = compat("streamnative-quick-start-istio.yaml");
    for (kind, expected) in [
        ("StatefulSet", vec!["private-cloud-bk", "private-cloud-broker", "private-cloud-zk"]),
        ("Deployment", vec!["private-cloud-bk-auto-recovery"]),
        (
            "PeerAuthentication",
            vec!["private-cloud-bk", "private-cloud-bk-auto-recovery", "private-cloud-broker", "private-cloud-zk"],
        ),
        (
            "AuthorizationPolicy",
            vec!["private-cloud-bk", "private-cloud-bk-auto-recovery", "private-cloud-broker", "private-cloud-zk"],
        ),
        // SIMPLE: no per-broker ServiceEntries (the external listener behind
        // them would be plaintext; see docs/design.md).
        ("ServiceEntry", vec![]),
        ("VirtualService", vec!["private-cloud-broker", "private-cloud-broker-0", "private-cloud-broker-1"]),
        ("Gateway", vec!["private-cloud-broker-gateway"]),
    ] {
        assert_eq!(names(&objs, kind), expected, "{kind}");
    }
    // DestinationRules for every Service of an enrolled component (sidecar mode).
    for dr in ["private-cloud-zk", "private-cloud-zk-headless", "private-cloud-bk", "private-cloud-broker-headless"] {
        let dr: DestinationRule = typed(&objs, dr);
        assert_eq!(dr.spec.traffic_policy.map(|t| t.tls.mode), Some(ClientTlsMode::IstioMutual));
    }
    for o in &objs {
        let labels = metadata(o).labels.unwrap_or_default();
        for key in ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"] {
            assert!(labels.contains_key(key), "{}/{} lacks {key}", o.kind, o.name);
        }
        assert_eq!(entry(&labels, "app.kubernetes.io/managed-by"), Some("magnetar"), "{}/{}", o.kind, o.name);
        assert_eq!(o.namespace, "pulsar");
    }
}

#[test]
fn quick_start_per_broker_hosts_appear_everywhere() {
    let objs = compat("streamnative-quick-start-istio.yaml");
    let hosts = ["pb0-pulsar.example.com", "pb1-pulsar.example.com"];
    // Gateway (SIMPLE): one server per host per port; the main host's servers
    // list only the main host; 443 is HTTPS, 6651 TLS, all with the secret.
    let gw: Gateway = typed(&objs, "private-cloud-broker-gateway");
    assert_eq!(gw.spec.selector, BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]));
    let servers = &gw.spec.servers;
    assert_eq!(servers.len(), 3 * 2, "3 hosts x ports 443 and 6651");
    let mut port_names: Vec<&str> = servers.iter().map(|s| s.port.name.as_str()).collect();
    port_names.sort();
    port_names.dedup();
    assert_eq!(port_names.len(), servers.len(), "port names are unique");
    for host in ["pulsar.example.com", hosts[0], hosts[1]] {
        let mine: Vec<_> = servers.iter().filter(|s| s.hosts == [host]).collect();
        let mut ports: Vec<(i32, PortProtocol)> = mine.iter().map(|s| (s.port.number, s.port.protocol)).collect();
        ports.sort_by_key(|&(number, _)| number);
        assert_eq!(ports, [(443, PortProtocol::Https), (6651, PortProtocol::Tls)], "{host}");
        for s in mine {
            let tls = ServerTls { mode: ServerTlsMode::Simple, credential_name: Some("ingressgateway-tls".into()) };
            assert_eq!(s.tls, Some(tls));
        }
    }
    for (i, host) in hosts.iter().enumerate() {
        let name = format!("private-cloud-broker-{i}");
        let vs: VirtualService = typed(&objs, &name);
        assert_eq!(vs.spec.hosts, [*host]);
        assert_eq!(vs.spec.gateways, ["private-cloud-broker-gateway"]);
        let tcp = &vs.spec.tcp[0];
        assert_eq!(tcp.matches[0].port, 6651);
        assert_eq!(tcp.route[0].destination.host, format!("{name}.pulsar.svc.cluster.local"));
        assert_eq!(tcp.route[0].destination.port.number, 6652);
        let svc: Service = typed(&objs, &name);
        let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
        assert_eq!(entry(&selector, "statefulset.kubernetes.io/pod-name"), Some(name.as_str()));
        assert!(service_ports(&objs, &name).contains(&6652));
    }
    // The main host goes to the brokers' Service, external-listener port.
    let main: VirtualService = typed(&objs, "private-cloud-broker");
    assert_eq!(main.spec.hosts, ["pulsar.example.com"]);
    assert_eq!(main.spec.tcp[0].route[0].destination.host, "private-cloud-broker.pulsar.svc.cluster.local");
    assert_eq!(main.spec.tcp[0].route[0].destination.port.number, 6652);
    assert_eq!(main.spec.http[0].route[0].destination.port.number, 8080);
    // The broker advertises the same host pattern, from its ordinal.
    let all = serde_json::to_string(&object(&objs, "ConfigMap", "private-cloud-broker").value).unwrap()
        + &serde_json::to_string(&object(&objs, "StatefulSet", "private-cloud-broker").value).unwrap();
    // The start-up script forms the host as prefix + ordinal + suffix.
    assert!(all.contains("pb${ORDINAL}-pulsar.example.com"), "external host from the pb<ordinal> pattern");
    assert!(all.contains("external:pulsar+ssl://${EXTERNAL_HOST}:6651"));
    // ... and binds the external listener to its own (plaintext, SIMPLE) port.
    assert!(all.contains("bindAddresses=external:pulsar://0.0.0.0:6652"));
    assert!(all.contains("internalListenerName=internal"));
    // The brokers' Service exposes the external-listener port too.
    assert!(service_ports(&objs, "private-cloud-broker").contains(&6652));
}

#[test]
fn quick_start_authorization_names_exactly_the_cluster() {
    let objs = compat("streamnative-quick-start-istio.yaml");
    let cluster: Vec<String> =
        ["private-cloud-bk", "private-cloud-bk-auto-recovery", "private-cloud-broker", "private-cloud-zk"]
            .iter()
            .map(|sa| format!("{SA}{sa}"))
            .collect();
    let operator = "cluster.local/ns/magnetar-system/sa/magnetar".to_string();
    let gateway = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account".to_string();

    let zk: AuthorizationPolicy = typed(&objs, "private-cloud-zk");
    assert_eq!(zk.spec.action, AuthorizationAction::Allow);
    let mut want = cluster.clone();
    want.push(operator.clone());
    want.sort();
    assert_eq!(ap_principals(&zk), want, "ZooKeeper: the cluster and the operator");

    let broker: AuthorizationPolicy = typed(&objs, "private-cloud-broker");
    let mut want = cluster.clone();
    want.push(gateway.clone());
    want.sort();
    assert_eq!(ap_principals(&broker), want, "broker: the cluster and the gateway");
    // The gateway may reach only what it routes to.
    let gw_rule = broker
        .spec
        .rules
        .iter()
        .find(|r| r.from.first().is_some_and(|f| f.source.principals == [gateway.clone()]))
        .expect("a rule for the gateway");
    let mut ports = gw_rule.to.first().map(|t| t.operation.ports.clone()).unwrap_or_default();
    ports.sort();
    assert_eq!(ports, ["6652", "8080"]);
    assert_eq!(ap_principals(&typed(&objs, "private-cloud-bk")), cluster, "bookies: the cluster only");

    for pa in names(&objs, "PeerAuthentication") {
        let mode = typed::<PeerAuthentication>(&objs, &pa).spec.mtls.map(|m| m.mode);
        assert_eq!(mode, Some(PeerMtlsMode::Strict), "{pa}");
    }
}

#[test]
fn quick_start_pods_join_the_mesh_as_sidecars() {
    let objs = compat("streamnative-quick-start-istio.yaml");
    for sts in ["private-cloud-zk", "private-cloud-bk", "private-cloud-broker"] {
        let s = object(&objs, "StatefulSet", sts);
        let labels = pod_labels(s);
        assert_eq!(entry(&labels, "sidecar.istio.io/inject"), Some("true"), "{sts}");
        assert!(!labels.contains_key("istio.io/rev"), "{sts}: revision default uses the inject label");
        let annotations = pod_annotations(s);
        let cfg = entry(&annotations, "proxy.istio.io/config").unwrap();
        assert!(cfg.contains("holdApplicationUntilProxyStarts: true"), "{sts}: {cfg}");
        let sc = pod_spec(s).security_context;
        assert_eq!(sc.and_then(|sc| sc.run_as_non_root), Some(true), "{sts}");
    }
    let zoo = serde_json::to_string(&object(&objs, "ConfigMap", "private-cloud-zk").value).unwrap();
    assert!(zoo.contains("quorumListenOnAllIPs=true"));
    // Headless Services declare every pod-to-pod port (undeclared ports
    // would travel as plaintext and STRICT rejects them).
    let mut zk = service_ports(&objs, "private-cloud-zk-headless");
    zk.sort();
    assert_eq!(zk, [2181, 2888, 3888, 8000]);
    assert!(service_ports(&objs, "private-cloud-bk-headless").contains(&3181));
    let broker_headless = service_ports(&objs, "private-cloud-broker-headless");
    assert!(broker_headless.contains(&6650) && broker_headless.contains(&8080));
}

#[test]
fn no_istio_example_stays_out_of_the_mesh() {
    let objs = compat("streamnative-quick-start-no-istio.yaml");
    assert!(objs.iter().all(|o| !o.api_version.contains("istio.io")), "no Istio objects");
    for sts in ["private-cloud-zk", "private-cloud-bk", "private-cloud-broker", "private-cloud-proxy"] {
        let labels = pod_labels(object(&objs, "StatefulSet", sts));
        assert_eq!(entry(&labels, "sidecar.istio.io/inject"), Some("false"), "{sts}");
        assert_eq!(entry(&labels, "istio.io/dataplane-mode"), Some("none"), "{sts}");
    }
    // The user's annotations are kept.
    let proxy = pod_annotations(object(&objs, "StatefulSet", "private-cloud-proxy"));
    assert_eq!(entry(&proxy, "prometheus.io/port"), Some("8080"));
    assert_eq!(names(&objs, "Service").iter().filter(|n| n.as_str() == "private-cloud-proxy").count(), 1);
}

#[test]
fn network_example_lets_user_labels_win_while_istio_is_off() {
    let objs = compat("streamnative-network-istio.yaml");
    // ZooKeeper has no istio block but pod.labels asks for a sidecar: the
    // older guide enrols it that way, and magnetar keeps the user's label.
    let zk = pod_labels(object(&objs, "StatefulSet", "private-cloud-zk"));
    assert_eq!(entry(&zk, "sidecar.istio.io/inject"), Some("true"));
    assert!(objs.iter().all(|o| !(o.kind == "PeerAuthentication" && o.name == "private-cloud-zk")));
    // Coordinator without image: the components' own images are used.
    let image = first_container(object(&objs, "StatefulSet", "private-cloud-broker")).image;
    assert_eq!(image.as_deref(), Some("streamnative/private-cloud:3.3.2.7"));
    // FQDN hosts: <name>-broker-<i>.<domain>.
    let vs: VirtualService = typed(&objs, "private-cloud-broker-0");
    assert_eq!(vs.spec.hosts, ["private-cloud-broker-0.httpbin.example.com"]);
    let gw: Gateway = typed(&objs, "private-cloud-broker-gateway");
    // Servers are left out of the JSON when there are none: there are some.
    let servers = &gw.spec.servers;
    assert!(
        !servers.is_empty()
            && servers
                .iter()
                .all(|s| { s.tls.as_ref().and_then(|t| t.credential_name.as_deref()) == Some("httpbin-credential") })
    );
}

#[test]
fn passthrough_example_routes_by_sni_and_applies_the_customization() {
    let objs = compat("streamnative-ksn-mtls-passthrough.yaml");
    let hosts = ["pulsar.example.com", "pb0-pulsar.example.com", "pb1-pulsar.example.com", "pb2-pulsar.example.com"];
    let gw: Gateway = typed(&objs, "private-cloud-broker-gateway");
    assert_eq!(
        gw.spec.selector,
        BTreeMap::from([("cloud.streamnative.io/role".to_string(), "istio-ingressgateway".to_string())])
    );
    let servers = &gw.spec.servers;
    let mut ports: Vec<i32> = servers.iter().map(|s| s.port.number).collect();
    ports.sort();
    assert_eq!(ports, [443, 6651, 9093], "Pulsar, HTTPS and Kafka (KoP on)");
    for s in servers {
        assert_eq!(s.tls, Some(ServerTls { mode: ServerTlsMode::Passthrough, credential_name: None }));
        assert_eq!(s.port.protocol, PortProtocol::Tls);
        assert_eq!(s.hosts, hosts);
    }
    for i in 0..3 {
        let name = format!("private-cloud-broker-{i}");
        let vs: VirtualService = typed(&objs, &name);
        let vs_hosts = &vs.spec.hosts;
        let routes: Vec<(i32, i32)> = vs
            .spec
            .tls
            .iter()
            .map(|r| {
                for sni in &r.matches[0].sni_hosts {
                    assert!(vs_hosts.contains(sni), "sniHosts ⊆ hosts");
                }
                (r.matches[0].port, r.route[0].destination.port.number)
            })
            .collect();
        assert_eq!(routes, [(6651, 6653), (443, 8443), (9093, 9095)]);
        // That the key is absent (not merely empty) is a JSON fact.
        let raw = &object(&objs, "VirtualService", &name).value;
        assert!(raw["spec"].get("http").is_none(), "443 is a tls route in passthrough");
    }
    let mut broker_ports = service_ports(&objs, "private-cloud-broker");
    broker_ports.sort();
    for p in [6650, 6653, 8080, 8443, 9092, 9095] {
        assert!(broker_ports.contains(&p), "{p} in {broker_ports:?}");
    }
    // The merge patch replaced the broker AuthorizationPolicy's rules, and
    // nothing else was patched.
    let ap: AuthorizationPolicy = typed(&objs, "private-cloud-broker");
    let ports = ["8443", "6650", "6653", "9092", "9095"].map(String::from).to_vec();
    assert_eq!(ap.spec.rules, [Rule { from: vec![], to: vec![RuleTo { operation: Operation { ports } }] }]);
    assert_eq!(ap.spec.action, AuthorizationAction::Allow);
    let selector = ap.spec.selector.map(|s| s.match_labels).unwrap_or_default();
    assert!(entry(&selector, "app.kubernetes.io/component") == Some("broker"));
    // KoP: the user's PULSAR_PREFIX_ settings reach the broker as env.
    let broker = object(&objs, "StatefulSet", "private-cloud-broker");
    let env = first_container(broker).env.unwrap_or_default();
    assert!(env.iter().any(|e| e.name == "PULSAR_PREFIX_kopSslClientAuth" && e.value.as_deref() == Some("required")));
    // The coordinator's revision "" means the default revision.
    assert_eq!(entry(&pod_labels(broker), "sidecar.istio.io/inject"), Some("true"));
}

#[test]
fn mop_example_adds_the_mqtt_port_and_no_mesh_objects() {
    let objs = compat("streamnative-mop.yaml");
    assert!(objs.iter().all(|o| !o.api_version.contains("istio.io")));
    let sts = object(&objs, "StatefulSet", "private-cloud-broker");
    let ports: Vec<i32> = first_container(sts).ports.unwrap().iter().map(|p| p.container_port).collect();
    assert!(ports.contains(&1883), "{ports:?}");
    assert!(service_ports(&objs, "private-cloud-broker").contains(&1883));
    assert_eq!(as_typed::<StatefulSet>(sts).spec.and_then(|s| s.replicas), Some(3));
}

/// Every JVM of the quick start is sized from its pod's memory request
/// (512 MiB), not the image's 2 GiB heap and 4 GiB direct memory.
#[test]
fn quick_start_jvms_fit_their_pods() {
    let objs = compat("streamnative-quick-start-istio.yaml");
    let mut seen = 0;
    for o in objs.iter().filter(|o| o.kind == "StatefulSet" || o.kind == "Deployment") {
        let c = first_container(o);
        let var =
            if o.name.ends_with("-bk") || o.name.ends_with("-bk-auto-recovery") { "BOOKIE_MEM" } else { "PULSAR_MEM" };
        let env = c.env.as_ref().unwrap_or_else(|| panic!("{} has no env", o.name));
        let mem = env.iter().find(|e| e.name == var).unwrap_or_else(|| panic!("{} has no {var}", o.name));
        let value = mem.value.as_deref().unwrap();
        let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let request = requests.and_then(|r| r.get("memory")).map(|q| q.0.as_str()).unwrap();
        assert_eq!(request, "512Mi", "{}", o.name);
        assert!(value.starts_with("-Xms256m -Xmx256m -XX:MaxDirectMemorySize="), "{}: {value}", o.name);
        seen += 1;
    }
    assert_eq!(seen, 4, "zookeeper, bookies, auto-recovery and brokers");
}

/// The broker configuration as the start-up script leaves it: broker.conf
/// from the ConfigMap, then the container's plain PULSAR_PREFIX_ variables
/// (apply-config-from-env.py), then the advertised listeners the script
/// exports, with sample pod and external hosts for the shell variables.
fn effective_broker_conf(objs: &[Object], name: &str) -> std::collections::BTreeMap<String, String> {
    let text = config_file(objs, name, "broker.conf");
    let mut conf: std::collections::BTreeMap<String, String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let c = first_container(object(objs, "StatefulSet", name));
    for e in c.env.iter().flatten() {
        if let (Some(k), Some(v)) = (e.name.strip_prefix("PULSAR_PREFIX_"), e.value.as_deref()) {
            conf.insert(k.to_string(), v.to_string());
        }
    }
    let script = c.args.as_ref().and_then(|a| a.first()).unwrap();
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("export PULSAR_PREFIX_")
            && let Some((k, v)) = rest.split_once('=')
        {
            let v =
                v.trim_matches('"').replace("${POD_HOST}", "pod-0.svc").replace("${EXTERNAL_HOST}", "pb0.example.com");
            conf.insert(k.to_string(), v);
        }
    }
    conf
}

/// What Pulsar 4.0's MultipleListenerValidator requires of
/// advertisedListeners (at most one pulsar and one pulsar+ssl URL per
/// listener name, internalListenerName among them, no host:port under two
/// names), that a TLS broker client finds a pulsar+ssl URL on the internal
/// listener, and that no two of the broker's listening ports clash.
fn broker_listener_errors(conf: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut by_name: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    let listeners = conf.get("advertisedListeners").map(String::as_str).unwrap_or_default();
    for entry in listeners.split(',').filter(|e| !e.is_empty()) {
        let (name, url) = entry.split_once(':').unwrap();
        by_name.entry(name).or_default().push(url);
    }
    let mut host_ports: std::collections::BTreeMap<String, &str> = Default::default();
    for (name, urls) in &by_name {
        for scheme in ["pulsar://", "pulsar+ssl://"] {
            if urls.iter().filter(|u| u.starts_with(scheme)).count() > 1 {
                errors.push(format!("listener {name} has two {scheme} URLs"));
            }
        }
        if urls.len() > 2 {
            errors.push(format!("listener {name} has {} URLs", urls.len()));
        }
        for u in urls {
            let host_port = u.split_once("://").unwrap().1.to_string();
            if let Some(other) = host_ports.insert(host_port.clone(), name)
                && other != *name
            {
                errors.push(format!("{host_port} is under listeners {other} and {name}"));
            }
        }
    }
    let internal = conf.get("internalListenerName").map(String::as_str).unwrap_or_default();
    if !by_name.contains_key(internal) {
        errors.push(format!("internalListenerName {internal:?} is not among {listeners:?}"));
    }
    if conf.get("brokerClientTlsEnabled").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        if !by_name.get(internal).is_some_and(|u| u.iter().any(|u| u.starts_with("pulsar+ssl://"))) {
            errors.push(format!("brokerClientTlsEnabled, but listener {internal} has no pulsar+ssl URL"));
        }
        for k in ["brokerServicePortTls", "webServicePortTls"] {
            if !conf.contains_key(k) {
                errors.push(format!("brokerClientTlsEnabled without {k}"));
            }
        }
    }
    let mut ports: Vec<(String, String)> = Vec::new();
    for k in [
        "brokerServicePort",
        "brokerServicePortTls",
        "webServicePort",
        "webServicePortTls",
        "mqttProxyPort",
        "amqpProxyPort",
    ] {
        if let Some(p) = conf.get(k) {
            ports.push((k.to_string(), p.clone()));
        }
    }
    for k in ["bindAddresses", "kafkaListeners", "mqttListeners", "amqpListeners"] {
        for url in conf.get(k).map(String::as_str).unwrap_or_default().split(',').filter(|u| !u.is_empty()) {
            ports.push((format!("{k} {url}"), url.rsplit(':').next().unwrap().to_string()));
        }
    }
    for (i, (what, port)) in ports.iter().enumerate() {
        if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
            errors.push(format!("port {port} of {what} is also {other}"));
        }
    }
    errors
}

/// The KSN example turns on brokerClientTlsEnabled with TLS-only
/// authentication: every broker gets an internal pulsar+ssl listener on
/// 6651 and HTTPS on 8443, declared on its Services and in its policy, and
/// the configuration passes Pulsar's listener rules.
#[test]
fn ksn_example_brokers_reach_each_other_over_tls() {
    let objs = compat("streamnative-ksn-mtls-passthrough.yaml");
    let conf = effective_broker_conf(&objs, "private-cloud-broker");
    assert_eq!(broker_listener_errors(&conf), Vec::<String>::new(), "{conf:?}");
    assert_eq!(conf["brokerServicePortTls"], "6651");
    assert_eq!(conf["webServicePortTls"], "8443");
    assert!(conf["advertisedListeners"].contains("internal:pulsar+ssl://pod-0.svc:6651"), "{conf:?}");
    for svc in ["private-cloud-broker", "private-cloud-broker-headless"] {
        let ports = service_ports(&objs, svc);
        assert!(ports.contains(&6651) && ports.contains(&8443), "{svc}: {ports:?}");
    }
}

/// The same rules hold for every broker of the examples and the compat
/// manifests that have one and render.
#[test]
fn broker_listeners_pass_pulsars_rules_everywhere() {
    let mut checked = 0;
    for file in
        ["streamnative-quick-start-istio.yaml", "streamnative-mop.yaml", "streamnative-ksn-mtls-passthrough.yaml"]
    {
        let objs = compat(file);
        for name in names(&objs, "StatefulSet").into_iter().filter(|n| n.ends_with("-broker")) {
            let conf = effective_broker_conf(&objs, &name);
            assert_eq!(broker_listener_errors(&conf), Vec::<String>::new(), "{file} {name}: {conf:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
}
