//! The promises of SPEC 3.5 and 4.5 about Istio objects.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{
    AuthorizationAction, AuthorizationPolicy, AuthorizationPolicySpec, ClientTlsMode, DestinationRule, Gateway,
    GatewaySpec as GatewayObjectSpec, Location, PeerAuthentication, PeerAuthenticationSpec, PeerMtlsMode, PortProtocol,
    Resolution, RouteDestination, Rule, Server, ServerTlsMode, ServiceEntry, ServiceEntrySpec, VirtualService,
    VirtualServiceSpec,
};
use super::*;
use crate::components::test_util::{service_spec, sts_spec, typed};
use crate::{OperatorIdentity, Peer};
use magnetar_api::{PulsarBroker, PulsarProxy};

/// A broker's Istio objects.
fn broker(b: &PulsarBroker, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    super::broker(&ValidBroker::unchecked(b), owner, ctx)
}

/// A proxy's Istio objects.
fn proxy(p: &PulsarProxy, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    super::proxy(&ValidProxy::unchecked(p), owner, ctx)
}

const NS: &str = "pulsar";

fn meta(kind: &str, api: &str) -> String {
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata: {{name: pc, namespace: {NS}, uid: 0a1b2c3d-0000-4000-8000-000000000000}}\n"
    )
}

fn zk(spec: &str) -> ZooKeeperCluster {
    serde_norway::from_str(&format!("{}spec:\n{spec}", meta("ZooKeeperCluster", "zookeeper.streamnative.io/v1alpha1")))
        .expect("zk yaml")
}

fn bk(spec: &str) -> BookKeeperCluster {
    let y = format!(
        "{}spec:\n  zkServers: pc-zk:2181\n{spec}",
        meta("BookKeeperCluster", "bookkeeper.streamnative.io/v1alpha1")
    );
    serde_norway::from_str(&y).expect("bk yaml")
}

fn pb(spec: &str) -> PulsarBroker {
    let y =
        format!("{}spec:\n  zkServers: pc-zk:2181\n{spec}", meta("PulsarBroker", "pulsar.streamnative.io/v1alpha1"));
    serde_norway::from_str(&y).expect("broker yaml")
}

fn pp(spec: &str) -> PulsarProxy {
    let y =
        format!("{}spec:\n  brokerAddress: pc-broker\n{spec}", meta("PulsarProxy", "pulsar.streamnative.io/v1alpha1"));
    serde_norway::from_str(&y).expect("proxy yaml")
}

fn ctx() -> BuildContext {
    let peer = |component: Component| Peer { component, service_account: component.object_name("pc") };
    BuildContext {
        peers: [
            Component::ZooKeeper,
            Component::BookKeeper,
            Component::AutoRecovery,
            Component::Broker,
            Component::Toolset,
        ]
        .into_iter()
        .map(peer)
        .collect(),
        operator: OperatorIdentity::default(),
        ..BuildContext::default()
    }
}

fn migrating() -> BuildContext {
    BuildContext { migrating: true, ..ctx() }
}

fn zk_objects(spec: &str, ctx: &BuildContext) -> Vec<Object> {
    let r = zk(spec);
    zookeeper(&r, &Owner::of(&r), ctx)
}

fn broker_objects(spec: &str) -> Vec<Object> {
    let r = pb(spec);
    broker(&r, &Owner::of(&r), &ctx())
}

fn proxy_objects(spec: &str) -> Vec<Object> {
    let r = pp(spec);
    proxy(&r, &Owner::of(&r), &ctx())
}

fn names_of(objs: &[Object]) -> Vec<(String, String)> {
    objs.iter().map(|o| (o.kind.clone(), o.name.clone())).collect()
}

fn of_kind<'a>(objs: &'a [Object], kind: &str) -> Vec<&'a Object> {
    objs.iter().filter(|o| o.kind == kind).collect()
}

fn has(objs: &[Object], kind: &str, name: &str) -> bool {
    objs.iter().any(|o| o.kind == kind && o.name == name)
}

/// The spec of PeerAuthentication `name`.
fn pa(objs: &[Object], name: &str) -> PeerAuthenticationSpec {
    assert!(has(objs, "PeerAuthentication", name), "no PeerAuthentication {name} in {:?}", names_of(objs));
    typed::<PeerAuthentication>(objs, name).spec
}

/// The spec of AuthorizationPolicy `name`.
fn ap(objs: &[Object], name: &str) -> AuthorizationPolicySpec {
    assert!(has(objs, "AuthorizationPolicy", name), "no AuthorizationPolicy {name} in {:?}", names_of(objs));
    typed::<AuthorizationPolicy>(objs, name).spec
}

/// The spec of Gateway `name`.
fn gateway(objs: &[Object], name: &str) -> GatewayObjectSpec {
    assert!(has(objs, "Gateway", name), "no Gateway {name} in {:?}", names_of(objs));
    typed::<Gateway>(objs, name).spec
}

/// The spec of VirtualService `name`.
fn vs(objs: &[Object], name: &str) -> VirtualServiceSpec {
    assert!(has(objs, "VirtualService", name), "no VirtualService {name} in {:?}", names_of(objs));
    typed::<VirtualService>(objs, name).spec
}

/// The spec of ServiceEntry `name`.
fn se(objs: &[Object], name: &str) -> ServiceEntrySpec {
    assert!(has(objs, "ServiceEntry", name), "no ServiceEntry {name} in {:?}", names_of(objs));
    typed::<ServiceEntry>(objs, name).spec
}

/// The `matchLabels` of a policy's selector.
fn match_labels(selector: Option<&super::types::WorkloadSelector>) -> BTreeMap<String, String> {
    selector.map(|s| s.match_labels.clone()).unwrap_or_default()
}

/// Every principal the AuthorizationPolicy names.
fn principals(ap: &AuthorizationPolicySpec) -> BTreeSet<String> {
    ap.rules.iter().flat_map(|r| &r.from).flat_map(|f| f.source.principals.clone()).collect()
}

/// The first `to` ports of a rule.
fn to_ports(rule: &Rule) -> Vec<String> {
    rule.to.first().map(|t| t.operation.ports.clone()).unwrap_or_default()
}

/// The `to` ports of the rule whose sources are exactly `principal`.
fn ports_of(ap: &AuthorizationPolicySpec, principal: &str) -> Vec<String> {
    let rule = ap
        .rules
        .iter()
        .find(|r| r.from.first().is_some_and(|f| f.source.principals == [principal]))
        .expect("a rule for the principal");
    to_ports(rule)
}

const ISTIO: &str = "  istio: {enabled: true}\n";
const GW_SIMPLE: &str = "  replicas: 2\n  config: {advertisedDomain: pulsar.example.com, serviceURLGenerationPolicy: OrdinalPrefix, protocolHandlers: {kop: {enabled: true}, mop: {enabled: true}, aop: {enabled: true}}}\n  istio: {enabled: true, gateway: {tls: {certSecretName: gw-tls}}}\n";
const GW_PASS: &str = "  replicas: 2\n  config: {advertisedDomain: pulsar.example.com, serviceURLGenerationPolicy: OrdinalPrefix, protocolHandlers: {kop: {enabled: true}, mop: {enabled: true}, aop: {enabled: true}}}\n  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: gw-tls}}}\n";

// ------------------------------------------------------------------ security

#[test]
fn peer_authentication_mode_follows_mtls_mode() {
    for (mode, want) in
        [("strict", PeerMtlsMode::Strict), ("permissive", PeerMtlsMode::Permissive), ("none", PeerMtlsMode::Disable)]
    {
        let objs = zk_objects(&format!("  istio: {{enabled: true, mtls: {{mode: {mode}}}}}\n"), &ctx());
        let pa = typed::<PeerAuthentication>(&objs, "pc-zk");
        assert_eq!(pa.spec.mtls.map(|m| m.mode), Some(want), "{mode}");
        assert_eq!(pa.api_version, "security.istio.io/v1");
        assert_eq!(match_labels(pa.spec.selector.as_ref())["app.kubernetes.io/component"], "zookeeper");
        assert!(pa.spec.port_level_mtls.is_empty(), "sidecar mode needs no port-level mTLS");
    }
}

#[test]
fn migrating_component_is_permissive_without_destination_rules() {
    let objs = zk_objects(ISTIO, &migrating());
    assert_eq!(pa(&objs, "pc-zk").mtls.map(|m| m.mode), Some(PeerMtlsMode::Permissive));
    assert!(of_kind(&objs, "DestinationRule").is_empty());
    assert_eq!(of_kind(&objs, "AuthorizationPolicy").len(), 1, "authorization stays during a move");
}

#[test]
fn mtls_none_has_no_authorization_policy_nor_destination_rule() {
    let objs = zk_objects("  istio: {enabled: true, mtls: {mode: none}}\n", &ctx());
    assert!(of_kind(&objs, "AuthorizationPolicy").is_empty());
    assert!(of_kind(&objs, "DestinationRule").is_empty());
}

#[test]
fn zookeeper_policy_allows_peers_and_operator_only() {
    let objs = zk_objects(ISTIO, &ctx());
    let ap = ap(&objs, "pc-zk");
    assert_eq!(ap.action, AuthorizationAction::Allow);
    let c = ctx();
    let mut want: BTreeSet<String> = c.peer_principals("cluster.local", NS).into_iter().collect();
    let operator = c.operator_principal("cluster.local");
    want.insert(operator.clone());
    assert_eq!(principals(&ap), want);
    assert_eq!(ports_of(&ap, &operator), ["2181", "8000"]);
    assert_eq!(to_ports(&ap.rules[0]), ["2181", "2888", "3888", "8000"]);
}

/// A cluster on Oxia has no ZooKeeperCluster: its policies name the peers
/// that exist (bookies, auto-recovery, brokers) and no ZooKeeper account.
#[test]
fn oxia_cluster_policies_name_no_zookeeper() {
    let oxia = |kind: &str, api: &str, spec: &str| format!("{}spec:\n{spec}{ISTIO}", meta(kind, api));
    let bk: BookKeeperCluster = serde_norway::from_str(&oxia(
        "BookKeeperCluster",
        "bookkeeper.streamnative.io/v1alpha1",
        "  metadataServiceUri: metadata-store:oxia://pc-oxia:6648/bookkeeper\n",
    ))
    .unwrap();
    let pb: PulsarBroker = serde_norway::from_str(&oxia(
        "PulsarBroker",
        "pulsar.streamnative.io/v1alpha1",
        "  metadataStoreUrl: oxia://pc-oxia:6648/broker\n  bkMetadataServiceUri: metadata-store:oxia://pc-oxia:6648/bookkeeper\n",
    ))
    .unwrap();
    let inv =
        crate::cluster::Inventory { bookkeepers: vec![bk.clone()], brokers: vec![pb.clone()], ..Default::default() };
    let ctx = inv.context_for(kube::Resource::meta(&pb), &OperatorIdentity::default());
    let mut aps = broker(&pb, &Owner::of(&pb), &ctx);
    aps.extend(bookkeeper(&bk, &Owner::of(&bk), &ctx));
    let aps = of_kind(&aps, "AuthorizationPolicy");
    assert_eq!(aps.len(), 3, "broker, bookies and auto-recovery");
    for o in aps {
        let p = principals(&ap(std::slice::from_ref(o), &o.name));
        assert!(p.contains("cluster.local/ns/pulsar/sa/pc-broker"), "{p:?}");
        assert!(p.contains("cluster.local/ns/pulsar/sa/pc-bk"), "{p:?}");
        assert!(!p.iter().any(|p| p.ends_with("-zk")), "{} names a ZooKeeper that does not exist: {p:?}", o.name);
    }
}

#[test]
fn trust_domain_shapes_principals() {
    let objs = zk_objects("  istio: {enabled: true, trustDomain: corp.example}\n", &ctx());
    assert!(principals(&ap(&objs, "pc-zk")).iter().all(|p| p.starts_with("corp.example/ns/")));
}

#[test]
fn broker_policy_lets_the_gateway_reach_exactly_its_route_targets() {
    let objs = broker_objects(GW_SIMPLE);
    let policy = ap(&objs, "pc-broker");
    let gw = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
    let mut want: BTreeSet<String> = ctx().peer_principals("cluster.local", NS).into_iter().collect();
    want.insert(gw.to_string());
    assert_eq!(principals(&policy), want, "no operator principal outside ZooKeeper");
    // MQTT and AMQP to the handlers' proxies (two brokers behind the gateway).
    assert_eq!(ports_of(&policy, gw), ["6652", "8080", "9094", "5682", "5683"]);

    let pass = broker_objects(GW_PASS);
    // AMQP arrives in plaintext at AoP's proxy: the gateway terminated its TLS.
    assert_eq!(ports_of(&ap(&pass, "pc-broker"), gw), ["6653", "8443", "9095", "5685", "5683"]);
}

#[test]
fn broker_without_gateway_has_no_gateway_principal() {
    let objs = broker_objects(ISTIO);
    let policy = ap(&objs, "pc-broker");
    assert!(principals(&policy).iter().all(|p| !p.contains("istio-system")));
    assert_eq!(to_ports(&policy.rules[0]), ["6650", "8080"]);
}

#[test]
fn auth_rules_are_appended_and_empty_ones_dropped() {
    let spec = "  istio:\n    enabled: true\n    authRules:\n    - fromSource: [{principals: [cluster.local/ns/x/sa/y]}, {namespaces: [mon]}]\n      toOperation: [{ports: [\"6650\"]}]\n    - {}\n";
    let objs = zk_objects(spec, &ctx());
    let rules = ap(&objs, "pc-zk").rules;
    let last = rules.last().unwrap();
    assert_eq!(last.from[0].source.principals, ["cluster.local/ns/x/sa/y"]);
    assert_eq!(last.from[1].source.namespaces, ["mon"]);
    assert_eq!(to_ports(last), ["6650"]);
    assert!(rules.iter().all(|r| !r.from.is_empty() || !r.to.is_empty()), "no allow-all rule");
}

#[test]
fn ambient_opens_the_metrics_port_and_has_no_destination_rules() {
    let objs = zk_objects("  istio: {enabled: true, dataplaneMode: ambient}\n", &ctx());
    assert!(of_kind(&objs, "DestinationRule").is_empty());
    let peer = pa(&objs, "pc-zk");
    assert_eq!(peer.mtls.map(|m| m.mode), Some(PeerMtlsMode::Strict));
    assert_eq!(peer.port_level_mtls["8000"].mode, PeerMtlsMode::Permissive);
    let rules = ap(&objs, "pc-zk").rules;
    let metrics = rules.iter().find(|r| r.from.is_empty()).expect("metrics rule");
    assert_eq!(to_ports(metrics), ["8000"]);

    let closed = zk_objects("  istio: {enabled: true, dataplaneMode: ambient, metrics: {permissive: false}}\n", &ctx());
    assert!(pa(&closed, "pc-zk").port_level_mtls.is_empty());
    assert!(ap(&closed, "pc-zk").rules.iter().all(|r| !r.from.is_empty()));

    let broker = broker_objects("  istio: {enabled: true, dataplaneMode: ambient}\n");
    assert!(of_kind(&broker, "DestinationRule").is_empty());
}

/// Rules that let a caller reach `port` whoever it is (no `from`), and those
/// naming sources.
fn open_rules(ap: AuthorizationPolicySpec, port: &str) -> (usize, Vec<Rule>) {
    let to_port = |r: &Rule| to_ports(r) == [port];
    let anyone = ap.rules.iter().filter(|r| r.from.is_empty() && to_port(r)).count();
    (anyone, ap.rules.into_iter().filter(to_port).collect())
}

/// Brokers' 8080 and bookies' (and auto-recovery's) 8000 are admin APIs as
/// well as metrics ports: ambient with the default `metrics.permissive` must
/// not open them to every pod in plaintext. Only `allowFrom` opens them.
#[test]
fn ambient_metrics_never_open_an_admin_api_to_unnamed_callers() {
    let ambient = "  istio: {enabled: true, dataplaneMode: ambient, metrics: {permissive: true}}\n";
    let broker = broker_objects(ambient);
    assert!(pa(&broker, "pc-broker").port_level_mtls.is_empty(), "8080 stays STRICT");
    assert_eq!(open_rules(ap(&broker, "pc-broker"), "8080").0, 0);
    let r = bk(ambient);
    let bookies = bookkeeper(&r, &Owner::of(&r), &ctx());
    for name in ["pc-bk", "pc-bk-auto-recovery"] {
        assert!(pa(&bookies, name).port_level_mtls.is_empty(), "{name}");
        assert_eq!(open_rules(ap(&bookies, name), "8000").0, 0, "{name}");
    }
    let proxy = proxy_objects(ambient);
    assert_eq!(open_rules(ap(&proxy, "pc-proxy"), "8080").0, 0);

    // allowFrom names the Prometheus: PERMISSIVE on the port, and a rule for it only.
    let scoped = "  istio: {enabled: true, dataplaneMode: ambient, metrics: {allowFrom: [{ipBlocks: [10.42.7.0/24]}, {namespaces: [monitoring]}]}}\n";
    let broker = broker_objects(scoped);
    assert_eq!(pa(&broker, "pc-broker").port_level_mtls["8080"].mode, PeerMtlsMode::Permissive);
    let (anyone, rules) = open_rules(ap(&broker, "pc-broker"), "8080");
    assert_eq!(anyone, 0);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].from[0].source.ip_blocks, ["10.42.7.0/24"]);
    assert_eq!(rules[0].from[1].source.namespaces, ["monitoring"]);

    // Sidecar mode: no port-level PERMISSIVE, but an in-mesh Prometheus named
    // in allowFrom may still scrape the port directly.
    let sidecar = broker_objects(
        "  istio: {enabled: true, metrics: {allowFrom: [{principals: [cluster.local/ns/monitoring/sa/prometheus]}]}}\n",
    );
    assert!(pa(&sidecar, "pc-broker").port_level_mtls.is_empty());
    let (_, rules) = open_rules(ap(&sidecar, "pc-broker"), "8080");
    assert_eq!(rules[0].from[0].source.principals, ["cluster.local/ns/monitoring/sa/prometheus"]);
}

#[test]
fn switching_a_handler_proxy_off_behind_the_gateway_is_refused() {
    let off = GW_SIMPLE.replace("mop: {enabled: true}", "mop: {enabled: true, proxyEnabled: false}");
    let err = crate::validate::broker(&pb(&format!("  image: img\n{off}"))).unwrap_err();
    let e = err.0.iter().find(|e| e.path == "spec.config.protocolHandlers.mop.proxyEnabled").expect("refused");
    assert!(e.message.contains("remove proxyEnabled") && e.message.contains("replicas: 1"), "{}", e.message);
    let one = off.replace("replicas: 2", "replicas: 1");
    assert!(crate::validate::broker(&pb(&format!("  image: img\n{one}"))).is_ok());
}

#[test]
fn empty_or_malformed_metrics_sources_are_refused() {
    for (allow_from, path) in [
        ("[{}]", "spec.istio.metrics.allowFrom[0]"),
        ("[{namespaces: [\"\"]}]", "spec.istio.metrics.allowFrom[0]"),
        ("[{ipBlocks: [10.0.0.0/33]}]", "spec.istio.metrics.allowFrom[0].ipBlocks[0]"),
        ("[{ipBlocks: [prometheus]}]", "spec.istio.metrics.allowFrom[0].ipBlocks[0]"),
    ] {
        let b = pb(&format!("  image: img\n  istio: {{enabled: true, metrics: {{allowFrom: {allow_from}}}}}\n"));
        let err = crate::validate::broker(&b).unwrap_err();
        assert!(err.0.iter().any(|e| e.path == path), "{allow_from}: {err:?}");
    }
    let ok =
        pb("  image: img\n  istio: {enabled: true, metrics: {allowFrom: [{ipBlocks: [10.0.0.1, \"fd00::/8\"]}]}}\n");
    assert!(crate::validate::broker(&ok).is_ok());
}

#[test]
fn sidecar_destination_rules_cover_main_and_headless_services() {
    let objs = zk_objects(ISTIO, &ctx());
    let dr = typed::<DestinationRule>(&objs, "pc-zk").spec;
    assert_eq!(dr.host, "pc-zk.pulsar.svc.cluster.local");
    assert_eq!(dr.traffic_policy.map(|t| t.tls.mode), Some(ClientTlsMode::IstioMutual));
    assert_eq!(typed::<DestinationRule>(&objs, "pc-zk-headless").spec.host, "pc-zk-headless.pulsar.svc.cluster.local");

    let proxy = proxy_objects(ISTIO);
    let drs: Vec<&str> = of_kind(&proxy, "DestinationRule").iter().map(|o| o.name.as_str()).collect();
    assert_eq!(drs, ["pc-proxy"], "the proxy has no headless Service");
}

#[test]
fn bookkeeper_covers_bookies_and_auto_recovery_with_disjoint_selectors() {
    let r = bk(ISTIO);
    let objs = bookkeeper(&r, &Owner::of(&r), &ctx());
    for name in ["pc-bk", "pc-bk-auto-recovery"] {
        assert!(has(&objs, "PeerAuthentication", name) && has(&objs, "AuthorizationPolicy", name), "{name}");
    }
    let drs: BTreeSet<&str> = of_kind(&objs, "DestinationRule").iter().map(|o| o.name.as_str()).collect();
    assert_eq!(drs, BTreeSet::from(["pc-bk", "pc-bk-headless"]));
    let ar = pa(&objs, "pc-bk-auto-recovery");
    assert_eq!(match_labels(ar.selector.as_ref())["app.kubernetes.io/component"], "autorecovery");

    let off = bk(&format!("{ISTIO}  autoRecovery: {{replicas: 0}}\n"));
    let objs = bookkeeper(&off, &Owner::of(&off), &ctx());
    assert!(objs.iter().all(|o| o.name != "pc-bk-auto-recovery"));
}

#[test]
fn no_two_policies_select_the_same_pods() {
    let (z, b, br, p) = (zk(ISTIO), bk(ISTIO), pb(ISTIO), pp(ISTIO));
    let mut all = zookeeper(&z, &Owner::of(&z), &ctx());
    all.extend(bookkeeper(&b, &Owner::of(&b), &ctx()));
    all.extend(broker(&br, &Owner::of(&br), &ctx()));
    all.extend(proxy(&p, &Owner::of(&p), &ctx()));
    for kind in ["PeerAuthentication", "AuthorizationPolicy"] {
        let selectors: Vec<BTreeMap<String, String>> = of_kind(&all, kind)
            .iter()
            .map(|o| {
                let one = std::slice::from_ref(*o);
                match kind {
                    "PeerAuthentication" => match_labels(pa(one, &o.name).selector.as_ref()),
                    _ => match_labels(ap(one, &o.name).selector.as_ref()),
                }
            })
            .collect();
        assert_eq!(selectors.len(), 5, "{kind}");
        let distinct: BTreeSet<&BTreeMap<String, String>> = selectors.iter().collect();
        assert_eq!(distinct.len(), selectors.len(), "{kind}");
        assert!(selectors.iter().all(|s| s.contains_key("app.kubernetes.io/component")));
    }
}

#[test]
fn no_istio_objects_when_istio_is_disabled() {
    assert!(zk_objects("  replicas: 3\n", &ctx()).is_empty());
    assert!(zk_objects("  istio: {enabled: false}\n", &ctx()).is_empty());
    let gw_off = GW_SIMPLE.replace("enabled: true, gateway", "enabled: false, gateway");
    assert!(broker_objects(&gw_off).is_empty());
    let r = bk("  replicas: 1\n");
    assert!(bookkeeper(&r, &Owner::of(&r), &ctx()).is_empty());
    assert!(proxy_objects("  dnsNames: [p.example.com]\n").is_empty());
}

#[test]
fn every_object_lives_in_the_namespace_and_is_owned() {
    let mut all = broker_objects(GW_SIMPLE);
    all.extend(zk_objects(ISTIO, &ctx()));
    for o in &all {
        assert_eq!(o.namespace, NS, "{} {}", o.kind, o.name);
        let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
            serde_json::from_value(o.value["metadata"].clone()).unwrap();
        let owner = meta.owner_references.unwrap_or_default();
        assert_eq!(owner.first().and_then(|r| r.controller), Some(true), "{} {}", o.kind, o.name);
        assert_eq!(meta.labels.unwrap_or_default()["app.kubernetes.io/managed-by"], "magnetar");
    }
}

// ------------------------------------------------------------------ routing

fn servers(objs: &[Object], name: &str) -> Vec<Server> {
    gateway(objs, name).servers
}

#[test]
fn simple_gateway_has_one_server_per_host_per_port() {
    let objs = broker_objects(GW_SIMPLE);
    assert_eq!(gateway(&objs, "pc-broker-gateway").selector["istio"], "ingressgateway");
    let servers = servers(&objs, "pc-broker-gateway");
    let hosts = ["pulsar.example.com", "pb0-pulsar.example.com", "pb1-pulsar.example.com"];
    let ports = [6651, 443, 9093, 8883, 5671];
    assert_eq!(servers.len(), hosts.len() * ports.len());
    for port in ports {
        for host in hosts {
            let s = servers
                .iter()
                .find(|s| s.port.number == port && s.hosts == [host])
                .unwrap_or_else(|| panic!("no server {host}:{port}"));
            assert_eq!(s.port.protocol, if port == 443 { PortProtocol::Https } else { PortProtocol::Tls });
            let tls = s.tls.as_ref().expect("tls");
            assert_eq!(tls.mode, ServerTlsMode::Simple);
            assert_eq!(tls.credential_name.as_deref(), Some("gw-tls"));
        }
    }
    let names: BTreeSet<&str> = servers.iter().map(|s| s.port.name.as_str()).collect();
    assert_eq!(names.len(), servers.len(), "port names are unique");
}

#[test]
fn passthrough_gateway_has_one_server_per_port_listing_every_host() {
    let objs = broker_objects(GW_PASS);
    let servers = servers(&objs, "pc-broker-gateway");
    let numbers: Vec<i32> = servers.iter().map(|s| s.port.number).collect();
    assert_eq!(numbers, [6651, 443, 9093, 8883, 5671, 5671, 5671]);
    for s in servers.iter().filter(|s| s.port.number != 5671) {
        assert_eq!(s.hosts, ["pulsar.example.com", "pb0-pulsar.example.com", "pb1-pulsar.example.com"]);
        assert_eq!(s.port.protocol, PortProtocol::Tls);
        let tls = s.tls.as_ref().expect("tls");
        assert_eq!(tls.mode, ServerTlsMode::Passthrough);
        assert!(tls.credential_name.is_none());
    }
    // AoP has no TLS listener: the gateway terminates AMQP TLS itself, with
    // one SIMPLE server per host group as in SIMPLE mode.
    let amqp: Vec<&Server> = servers.iter().filter(|s| s.port.number == 5671).collect();
    let hosts: Vec<&[String]> = amqp.iter().map(|s| s.hosts.as_slice()).collect();
    assert_eq!(hosts, [["pulsar.example.com"], ["pb0-pulsar.example.com"], ["pb1-pulsar.example.com"]]);
    for s in amqp {
        let tls = s.tls.as_ref().expect("tls");
        assert_eq!(tls.mode, ServerTlsMode::Simple);
        assert_eq!(tls.credential_name.as_deref(), Some("gw-tls"));
    }
}

#[test]
fn gateway_ports_follow_protocol_handlers() {
    let spec =
        "  config: {advertisedDomain: d.example.com}\n  istio: {enabled: true, gateway: {tls: {certSecretName: c}}}\n";
    let objs = broker_objects(spec);
    let ports: BTreeSet<i32> = servers(&objs, "pc-broker-gateway").iter().map(|s| s.port.number).collect();
    assert_eq!(ports, BTreeSet::from([443, 6651]));
}

/// (gateway port, destination host, destination port) of one route.
fn route(port: Option<i32>, to: &[RouteDestination]) -> (i32, String, i32) {
    let d = &to[0].destination;
    (port.unwrap_or(0), d.host.clone(), d.port.number)
}

/// The TCP routes of a VirtualService, as [`route`]s.
fn tcp(vs: &VirtualServiceSpec) -> Vec<(i32, String, i32)> {
    vs.tcp.iter().map(|r| route(r.matches.first().map(|m| m.port), &r.route)).collect()
}

/// The HTTP routes of a VirtualService, as [`route`]s.
fn http(vs: &VirtualServiceSpec) -> Vec<(i32, String, i32)> {
    vs.http.iter().map(|r| route(r.matches.first().map(|m| m.port), &r.route)).collect()
}

/// The TLS routes of a VirtualService, as [`route`]s.
fn tls(vs: &VirtualServiceSpec) -> Vec<(i32, String, i32)> {
    vs.tls.iter().map(|r| route(r.matches.first().map(|m| m.port), &r.route)).collect()
}

#[test]
fn simple_virtual_services_route_tcp_and_http_per_the_table() {
    let objs = broker_objects(GW_SIMPLE);
    let main = vs(&objs, "pc-broker");
    assert_eq!(main.hosts, ["pulsar.example.com"]);
    assert_eq!(main.gateways, ["pc-broker-gateway"]);
    let svc = "pc-broker.pulsar.svc.cluster.local".to_string();
    assert_eq!(
        tcp(&main),
        [(6651, svc.clone(), 6652), (9093, svc.clone(), 9094), (8883, svc.clone(), 5682), (5671, svc.clone(), 5683)]
    );
    assert_eq!(http(&main), [(443, svc, 8080)]);
    assert!(main.tls.is_empty());

    let b1 = vs(&objs, "pc-broker-1");
    assert_eq!(b1.hosts, ["pb1-pulsar.example.com"]);
    let svc = "pc-broker-1.pulsar.svc.cluster.local".to_string();
    assert_eq!(tcp(&b1)[0], (6651, svc.clone(), 6652));
    assert_eq!(http(&b1), [(443, svc, 8080)]);
}

#[test]
fn passthrough_virtual_services_route_tls_by_sni() {
    let objs = broker_objects(GW_PASS);
    for (name, svc) in [("pc-broker", "pc-broker"), ("pc-broker-0", "pc-broker-0"), ("pc-broker-1", "pc-broker-1")] {
        let vs = vs(&objs, name);
        let host = format!("{svc}.pulsar.svc.cluster.local");
        let got: Vec<(i32, i32)> = tls(&vs)
            .into_iter()
            .map(|(p, h, t)| {
                assert_eq!(h, host);
                (p, t)
            })
            .collect();
        assert_eq!(got, [(6651, 6653), (443, 8443), (9093, 9095), (8883, 5685)]);
        // AMQP TLS ends at the gateway: plaintext TCP on to AoP's proxy.
        assert_eq!(tcp(&vs), [(5671, host.clone(), 5683)]);
        let hosts: BTreeSet<&String> = vs.hosts.iter().collect();
        for r in &vs.tls {
            let sni: BTreeSet<&String> = r.matches.iter().flat_map(|m| &m.sni_hosts).collect();
            assert!(!sni.is_empty() && sni.is_subset(&hosts), "{name}");
        }
        assert!(vs.http.is_empty());
    }
}

#[test]
fn per_broker_services_select_one_pod_and_expose_route_targets() {
    // The workload builds them (networking.podService asks for them too).
    let r = pb(GW_SIMPLE);
    let objs = crate::components::broker::build(&ValidBroker::unchecked(&r), &Owner::of(&r), &ctx());
    let per_broker: Vec<&str> = of_kind(&objs, "Service").into_iter().map(|s| s.name.as_str()).collect();
    assert_eq!(per_broker, ["pc-broker", "pc-broker-headless", "pc-broker-0", "pc-broker-1"]);
    assert!(of_kind(&broker_objects(GW_SIMPLE), "Service").is_empty(), "not the Istio objects");
    let svc = service_spec(&objs, "pc-broker-1");
    let sel = svc.selector.unwrap_or_default();
    assert_eq!(sel["statefulset.kubernetes.io/pod-name"], "pc-broker-1");
    assert_eq!(sel["app.kubernetes.io/component"], "broker");
    let ports: Vec<(String, i32, String)> = svc
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port, p.app_protocol.unwrap_or_default()))
        .collect();
    assert_eq!(ports[0], ("tcp-pulsar-ext".into(), 6652, "tcp".into()));
    assert!(ports.contains(&("http-web".into(), 8080, "http".into())));
    assert!(ports.iter().all(|(n, _, a)| n.starts_with(&format!("{a}-")) && n.len() <= 15));
}

#[test]
fn service_entries_per_broker_in_passthrough_unless_switched_off() {
    let objs = broker_objects(GW_PASS);
    let entries = of_kind(&objs, "ServiceEntry");
    assert_eq!(entries.len(), 2);
    let entry = se(&objs, "pc-broker-0");
    assert_eq!(entry.hosts, ["pb0-pulsar.example.com"]);
    assert_eq!(entry.location, Location::MeshInternal);
    assert_eq!(entry.resolution, Resolution::Static);
    assert_eq!(entry.export_to, ["."]);
    let selector = entry.workload_selector.map(|w| w.labels).unwrap_or_default();
    assert_eq!(selector["statefulset.kubernetes.io/pod-name"], "pc-broker-0");

    let off = broker_objects(&GW_PASS.replace("gateway: {", "gateway: {meshInternalHosts: false, "));
    assert!(of_kind(&off, "ServiceEntry").is_empty());
    assert_eq!(of_kind(&off, "VirtualService").len(), 3);
}

/// A lookup hands a client `pulsar+ssl://<host>:6651` (and `<host>:9093` for
/// Kafka): the ServiceEntry must declare those ports, each pointing at the
/// broker's TLS listener behind it, named like that container port (Istio
/// prefers a same-named container port over targetPort).
#[test]
fn service_entries_declare_the_ports_a_lookup_hands_out() {
    let r = pb(GW_PASS);
    let mut objs = crate::components::broker::build(&ValidBroker::unchecked(&r), &Owner::of(&r), &ctx());
    objs.extend(broker(&r, &Owner::of(&r), &ctx()));
    let pod = sts_spec(&objs, "pc-broker").template.spec.expect("a pod spec");
    let container_ports: Vec<(String, i32)> = pod.containers[0]
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.container_port))
        .collect();
    let ports: Vec<(i32, i32, PortProtocol, String)> = se(&objs, "pc-broker-1")
        .ports
        .into_iter()
        .map(|p| (p.number, p.target_port.unwrap_or(0), p.protocol, p.name))
        .collect();
    let pairs: Vec<(i32, i32)> = ports.iter().map(|p| (p.0, p.1)).collect();
    // MQTT: MoP's proxy TLS port (two brokers: the proxy forwards to the owner).
    for want in [(6651, 6653), (443, 8443), (9093, 9095), (8883, 5685)] {
        assert!(pairs.contains(&want), "{want:?} in {pairs:?}");
    }
    for (number, target, protocol, name) in &ports {
        // TLS or HTTPS only: Istio routes them by SNI, and IST0134 fires only
        // for TCP (or unset) ports of a ServiceEntry without addresses.
        assert!(matches!(protocol, PortProtocol::Tls | PortProtocol::Https), "{number}: {protocol:?}");
        assert!(container_ports.contains(&(name.clone(), *target)), "{number}: {name} is not container port {target}");
    }
}

/// SIMPLE: the external listener is plaintext, so a mesh client that follows
/// a lookup (TLS to 6651) cannot use a ServiceEntry: none by default, and
/// asking for one is refused.
#[test]
fn no_service_entries_in_simple_mode() {
    let objs = broker_objects(GW_SIMPLE);
    assert!(of_kind(&objs, "ServiceEntry").is_empty());
    let on = pb(&GW_SIMPLE.replace("gateway: {", "gateway: {meshInternalHosts: true, "));
    let err = crate::validate::broker(&on).unwrap_err();
    let e = err.0.iter().find(|e| e.path == "spec.istio.gateway.meshInternalHosts").expect("meshInternalHosts refused");
    assert!(e.message.contains("tls.mode passthrough"), "{}", e.message);
}

#[test]
fn existing_gateways_are_bound_instead_of_generated() {
    let spec = GW_SIMPLE.replace("gateway: {", "gateway: {gateways: [istio-system/shared, local], ");
    let objs = broker_objects(&spec);
    assert!(of_kind(&objs, "Gateway").is_empty());
    for o in of_kind(&objs, "VirtualService") {
        assert_eq!(vs(&objs, &o.name).gateways, ["istio-system/shared", "local"]);
    }
}

#[test]
fn no_routing_without_advertised_domain() {
    let objs = broker_objects("  istio: {enabled: true, gateway: {tls: {certSecretName: c}}}\n");
    for kind in ["Gateway", "VirtualService", "ServiceEntry", "Service"] {
        assert!(of_kind(&objs, kind).is_empty(), "{kind}");
    }
}

#[test]
fn proxy_gateway_routes_its_dns_names() {
    let objs = proxy_objects(
        "  dnsNames: [p.example.com, q.example.com]\n  istio: {enabled: true, gateway: {tls: {certSecretName: c}}}\n",
    );
    let servers = servers(&objs, "pc-proxy-gateway");
    assert_eq!(servers.len(), 2);
    assert!(servers.iter().all(|s| s.hosts == ["p.example.com", "q.example.com"]));
    let routed = vs(&objs, "pc-proxy");
    let svc = "pc-proxy.pulsar.svc.cluster.local".to_string();
    assert_eq!(tcp(&routed), [(6651, svc.clone(), 6650)]);
    assert_eq!(http(&routed), [(443, svc, 8080)]);
    let gw = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
    assert_eq!(ports_of(&ap(&objs, "pc-proxy"), gw), ["6650", "8080"]);

    let pass =
        proxy_objects("  dnsNames: [p.example.com]\n  istio: {enabled: true, gateway: {tls: {mode: passthrough}}}\n");
    let got: Vec<(i32, i32)> = tls(&vs(&pass, "pc-proxy")).into_iter().map(|(p, _, t)| (p, t)).collect();
    assert_eq!(got, [(6651, 6651), (443, 8443)]);
    assert_eq!(ports_of(&ap(&pass, "pc-proxy"), gw), ["6651", "8443"]);
}

/// The proxies' own TLS (`config.tls`): the cluster's components may reach
/// 6651 and 8443; the gateway, terminating TLS itself, still only 6650 and
/// 8080.
#[test]
fn proxy_own_tls_ports_are_open_to_peers_not_to_the_gateway() {
    let objs = proxy_objects(concat!(
        "  dnsNames: [p.example.com]\n",
        "  istio: {enabled: true, gateway: {tls: {certSecretName: c}}}\n",
        "  config: {tls: {enabled: true, certSecretName: px}}\n",
    ));
    let policy = ap(&objs, "pc-proxy");
    let gw = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
    assert_eq!(ports_of(&policy, gw), ["6650", "8080"]);
    let others: Vec<Vec<String>> = policy
        .rules
        .iter()
        .filter(|r| r.from.iter().all(|f| !f.source.principals.iter().any(|p| p == gw)))
        .map(to_ports)
        .collect();
    assert_eq!(others, [["6650", "8080", "6651", "8443"]], "the rule for the cluster's components");
}

// ---------------------------------------------------------------------------
// Gateway API (istio.gateway.gatewayAPI)

mod gateway_api {
    use super::*;
    use crate::gateway_api::types::{Gateway as ApiGateway, HTTPRoute, TLSRoute};

    const FIVE: &str = concat!(
        "  replicas: 5\n",
        "  config:\n",
        "    advertisedDomain: streams.example.com\n",
        "    serviceURLGenerationPolicy: OrdinalPrefix\n",
        "    protocolHandlers: {kop: {enabled: true}, mop: {enabled: true}}\n",
        "  istio:\n",
        "    enabled: true\n",
    );

    fn routes<K: k8s_openapi::Resource>(objs: &[Object]) -> Vec<&Object> {
        objs.iter().filter(|o| o.kind == K::KIND && o.group() == crate::gateway_api::types::GROUP).collect()
    }

    /// SIMPLE: the created Gateway terminates TLS with one listener per host
    /// and protocol; each per-broker host has its own TLSRoute per TLS
    /// protocol and an HTTPRoute for the web service, to its own broker's
    /// Service; no Istio Gateway or VirtualService is left.
    #[test]
    fn simple_mode_gives_each_broker_host_its_own_routes() {
        let objs = broker_objects(&format!(
            "{FIVE}    gateway: {{gatewayAPI: {{gatewayClassName: istio}}, tls: {{certSecretName: streams-tls}}}}\n"
        ));
        assert!(
            objs.iter()
                .all(|o| !(o.group() == "networking.istio.io" && (o.kind == "Gateway" || o.kind == "VirtualService")))
        );
        let gw: ApiGateway = typed(&objs, "pc-broker-gateway");
        assert_eq!(gw.spec.gateway_class_name, "istio");
        // pulsar, web, kafka, mqtt on the main host and five broker hosts.
        assert_eq!(gw.spec.listeners.len(), 4 * 6);
        let l = gw.spec.listeners.iter().find(|l| l.name == "tls-9093-b3").expect("broker 3's Kafka listener");
        assert_eq!(l.hostname.as_deref(), Some("pb3-streams.example.com"));
        let tls = l.tls.as_ref().unwrap();
        assert_eq!((tls.mode.as_str(), tls.certificate_refs[0].name.as_str()), ("Terminate", "streams-tls"));
        for i in 0..5 {
            let r: TLSRoute = typed(&objs, &format!("pc-broker-{i}-kafka"));
            assert_eq!(r.spec.hostnames, [format!("pb{i}-streams.example.com")]);
            let backend = &r.spec.rules[0].backend_refs[0];
            assert_eq!((backend.name.clone(), backend.port), (format!("pc-broker-{i}"), 9094));
            assert_eq!(r.spec.parent_refs[0].section_name.as_deref(), Some(format!("tls-9093-b{i}").as_str()));
            let web: HTTPRoute = typed(&objs, &format!("pc-broker-{i}-web"));
            assert_eq!(web.spec.rules[0].backend_refs[0].port, 8080);
        }
        let main: TLSRoute = typed(&objs, "pc-broker-pulsar");
        assert_eq!(main.spec.hostnames, ["streams.example.com"]);
        assert_eq!(routes::<TLSRoute>(&objs).len(), 3 * 6);
        assert_eq!(routes::<HTTPRoute>(&objs).len(), 6);
        // The gateway's pods istiod runs for the Gateway: <gateway>-<class>.
        let ap: AuthorizationPolicy = typed(&objs, "pc-broker");
        let principals: Vec<String> =
            ap.spec.rules.iter().flat_map(|r| r.from.iter().flat_map(|f| f.source.principals.clone())).collect();
        assert!(
            principals.contains(&"cluster.local/ns/pulsar/sa/pc-broker-gateway-istio".to_string()),
            "{principals:?}"
        );
    }

    /// PASSTHROUGH: one listener per port, the TLSRoutes pick the broker by
    /// SNI; HTTPS passes through too (a TLSRoute, no HTTPRoute).
    #[test]
    fn passthrough_mode_shares_one_listener_per_port() {
        let objs = broker_objects(&format!(
            "{FIVE}    gateway: {{gatewayAPI: {{gatewayClassName: istio}}, tls: {{mode: passthrough}}}}\n"
        ));
        let gw: ApiGateway = typed(&objs, "pc-broker-gateway");
        let names: Vec<&str> = gw.spec.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["tls-6651", "tls-443", "tls-9093", "tls-8883"]);
        assert!(
            gw.spec.listeners.iter().all(|l| l.hostname.is_none() && l.tls.as_ref().unwrap().mode == "Passthrough")
        );
        let r: TLSRoute = typed(&objs, "pc-broker-2-web");
        assert_eq!(
            (r.spec.hostnames[0].as_str(), r.spec.rules[0].backend_refs[0].port),
            ("pb2-streams.example.com", 8443)
        );
        assert!(routes::<HTTPRoute>(&objs).is_empty());
    }

    /// parentRefs: no Gateway of magnetar's; each route attaches to the
    /// user's Gateways on its protocol's port.
    #[test]
    fn parent_refs_attach_to_existing_gateways_by_port() {
        let objs = broker_objects(&format!(
            "{FIVE}    gateway: {{gatewayAPI: {{parentRefs: [{{name: shared, namespace: ingress}}]}}, tls: {{mode: passthrough}}}}\n"
        ));
        assert!(objs.iter().all(|o| o.kind != "Gateway"));
        let r: TLSRoute = typed(&objs, "pc-broker-4-mqtt");
        let p = &r.spec.parent_refs[0];
        assert_eq!((p.name.as_str(), p.namespace.as_deref(), p.port), ("shared", Some("ingress"), Some(8883)));
        let ap: AuthorizationPolicy = typed(&objs, "pc-broker");
        let principals: Vec<String> =
            ap.spec.rules.iter().flat_map(|r| r.from.iter().flat_map(|f| f.source.principals.clone())).collect();
        assert!(principals.contains(&"cluster.local/ns/ingress/sa/shared-istio".to_string()), "{principals:?}");
    }

    #[test]
    fn proxy_routes_its_dns_names() {
        let objs = proxy_objects(
            "  dnsNames: [proxy.example.com]\n  istio: {enabled: true, gateway: {gatewayAPI: {gatewayClassName: istio}, tls: {certSecretName: p-tls}}}\n",
        );
        let gw: ApiGateway = typed(&objs, "pc-proxy-gateway");
        assert_eq!(gw.spec.listeners.len(), 2);
        let r: TLSRoute = typed(&objs, "pc-proxy-pulsar");
        assert_eq!(
            (r.spec.hostnames[0].as_str(), r.spec.rules[0].backend_refs[0].name.as_str()),
            ("proxy.example.com", "pc-proxy")
        );
        let _: HTTPRoute = typed(&objs, "pc-proxy-web");
    }

    #[test]
    fn validation_names_the_conflicts_and_the_listener_limit() {
        let err = |spec: &str| crate::validate::broker(&pb(&format!("  image: i\n{spec}"))).unwrap_err().to_string();
        let both = err(&format!(
            "{FIVE}    gateway: {{gatewayAPI: {{gatewayClassName: istio, parentRefs: [{{name: shared}}]}}, tls: {{certSecretName: t}}}}\n"
        ));
        assert!(
            both.contains("spec.istio.gateway.gatewayAPI: gatewayAPI needs exactly one of gatewayClassName"),
            "{both}"
        );
        let istio_too = err(&format!(
            "{FIVE}    gateway: {{gatewayAPI: {{gatewayClassName: istio}}, gateways: [istio-system/gw], tls: {{certSecretName: t}}}}\n"
        ));
        assert!(
            istio_too.contains("spec.istio.gateway.gateways: names Istio Gateways, which gatewayAPI replaces"),
            "{istio_too}"
        );
        let many = err(&format!(
            "{}    gateway: {{gatewayAPI: {{gatewayClassName: istio}}, tls: {{certSecretName: t}}}}\n",
            FIVE.replace("replicas: 5", "replicas: 20")
        ));
        assert!(many.contains("the Gateway would need 84 listeners"), "{many}");
    }
}
