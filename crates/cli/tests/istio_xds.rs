//! What Envoy would be told (issue 9.4): istiod's own configuration
//! generator, run over what `magnetar render` produces, shows that every
//! per-broker host reaches its own broker and that the brokers admit only
//! mutual-TLS peers named by their AuthorizationPolicy.
//!
//! `xds-dump` (`tools/istio/cmd/xds-dump`, built from the pinned Istio by
//! `tools/build-istio.sh`) feeds the rendered objects and the stand-ins of
//! `common::stand_ins` (namespaces, the controllers' pods, the ingress
//! gateway's pod, Service and TLS Secret) to Istio's in-process xDS test
//! harness (`istio.io/istio/pilot/test/xds`, what Istio's own tests use) and
//! prints the listeners, routes and clusters istiod would push to one proxy:
//! the ingress gateway, or a broker's sidecar.
//!
//! For the quick start (SIMPLE TLS at the gateway) and a five-broker cluster
//! with every protocol in passthrough (`examples/passthrough-all-protocols.yaml`):
//! - the gateway's listener of each external port has one filter chain per
//!   host (the main host and one per broker), matched by SNI, and each sends
//!   to its own broker's Service and port — by TCP proxy for TLS protocols,
//!   by an HTTP route for 443 in SIMPLE mode; passthrough chains terminate
//!   nothing (no transport socket), SIMPLE chains terminate TLS;
//! - the broker's inbound listener has no plain-text filter chain (STRICT),
//!   every chain requires a client certificate, and its RBAC filters allow
//!   exactly the principals and ports of the broker's AuthorizationPolicy,
//!   rule by rule.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::render_for_istio;
use common::stand_ins::{GATEWAY_NAMESPACE, gateway_api_pod, stand_ins, str_at};
use magnetar_testenv::crds::yaml_documents;
use magnetar_testenv::{istio_tools, repo_root};
use serde_json::Value;

/// How the gateway hands one external port to the brokers.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// A TCP proxy to this port of the host's Service.
    Tcp(u16),
    /// TLS terminated, then an HTTP route to this port of the host's Service.
    Http(u16),
}

struct Port {
    /// The Gateway's port, and the gateway pod's port it maps to (the
    /// stand-in Service maps 443 to 8443, as Istio's gateway chart does).
    gateway: u16,
    listener: u16,
    backend: Backend,
    passthrough: bool,
}

struct Fixture {
    file: PathBuf,
    namespace: &'static str,
    /// The broker StatefulSet (and main Service).
    broker: &'static str,
    /// Host → the Service it must reach.
    hosts: Vec<(String, String)>,
    ports: Vec<Port>,
}

fn quick_start() -> Fixture {
    let root = repo_root().unwrap();
    Fixture {
        file: root.parent().unwrap().join("shared/compat/streamnative-quick-start-istio.yaml"),
        namespace: "pulsar",
        broker: "private-cloud-broker",
        hosts: vec![
            ("pulsar.example.com".into(), "private-cloud-broker".into()),
            ("pb0-pulsar.example.com".into(), "private-cloud-broker-0".into()),
            ("pb1-pulsar.example.com".into(), "private-cloud-broker-1".into()),
        ],
        ports: vec![
            Port { gateway: 6651, listener: 6651, backend: Backend::Tcp(6652), passthrough: false },
            Port { gateway: 443, listener: 8443, backend: Backend::Http(8080), passthrough: false },
        ],
    }
}

fn five_brokers_passthrough() -> Fixture {
    let mut hosts = vec![("streams.example.com".to_string(), "five-broker".to_string())];
    hosts.extend((0..5).map(|i| (format!("five-broker-{i}.streams.example.com"), format!("five-broker-{i}"))));
    Fixture {
        file: repo_root().unwrap().join("examples/passthrough-all-protocols.yaml"),
        namespace: "pulsar-streams",
        broker: "five-broker",
        hosts,
        ports: vec![
            Port { gateway: 6651, listener: 6651, backend: Backend::Tcp(6653), passthrough: true },
            Port { gateway: 443, listener: 8443, backend: Backend::Tcp(8443), passthrough: true },
            Port { gateway: 9093, listener: 9093, backend: Backend::Tcp(9095), passthrough: true },
            Port { gateway: 8883, listener: 8883, backend: Backend::Tcp(5685), passthrough: true },
            // AMQP's proxy speaks plain TCP: the gateway terminates TLS.
            Port { gateway: 5671, listener: 5671, backend: Backend::Tcp(5683), passthrough: false },
        ],
    }
}

/// examples/gateway-api.yaml: five brokers, every protocol, through a
/// Gateway API Gateway of class `istio` (TLS terminated at the gateway).
fn gateway_api() -> Fixture {
    let mut hosts = vec![("streams.example.com".to_string(), "gapi-broker".to_string())];
    hosts.extend((0..5).map(|i| (format!("pb{i}-streams.example.com"), format!("gapi-broker-{i}"))));
    Fixture {
        file: repo_root().unwrap().join("examples/gateway-api.yaml"),
        namespace: "pulsar-gateway-api",
        broker: "gapi-broker",
        hosts,
        // istiod's gateway deployment listens on the Gateway's own ports.
        ports: vec![
            Port { gateway: 6651, listener: 6651, backend: Backend::Tcp(6652), passthrough: false },
            Port { gateway: 443, listener: 443, backend: Backend::Http(8080), passthrough: false },
            Port { gateway: 9093, listener: 9093, backend: Backend::Tcp(9094), passthrough: false },
            // MoP's and AoP's proxies inside the broker.
            Port { gateway: 8883, listener: 8883, backend: Backend::Tcp(5682), passthrough: false },
            Port { gateway: 5671, listener: 5671, backend: Backend::Tcp(5683), passthrough: false },
        ],
    }
}

fn yaml_file(path: &Path, docs: &[Value]) {
    let text: Vec<String> = docs.iter().map(|d| serde_norway::to_string(d).unwrap()).collect();
    std::fs::write(path, text.join("---\n")).unwrap();
}

/// istiod's configuration for the proxy of pod `pod` (`namespace/name`).
fn xds_dump(files: &[PathBuf], proxy: &str, pod: &str) -> Value {
    let bin = istio_tools().unwrap().join("bin/xds-dump");
    let out = Command::new(&bin)
        .args(["-proxy", proxy, "-pod", pod])
        .args(files)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(out.status.success(), "xds-dump {proxy} {pod}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("xds-dump's JSON: {e}"))
}

fn named<'a>(items: &'a Value, name: &str) -> Option<&'a Value> {
    items.as_array()?.iter().find(|i| i["name"] == name)
}

fn filter<'a>(chain: &'a Value, name: &str) -> Option<&'a Value> {
    chain["filters"].as_array()?.iter().find(|f| f["name"] == name).map(|f| &f["typedConfig"])
}

/// The Envoy cluster of a Kubernetes Service port.
fn cluster(service: &str, namespace: &str, port: u16) -> String {
    format!("outbound|{port}||{service}.{namespace}.svc.cluster.local")
}

/// Every string under `key` anywhere in `v` (principal names, ports).
fn collect(v: &Value, key: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    match x {
                        Value::String(s) => {
                            out.insert(s.clone());
                        }
                        Value::Number(n) => {
                            out.insert(n.to_string());
                        }
                        Value::Object(o) => {
                            if let Some(Value::String(s)) = o.get("exact") {
                                out.insert(s.clone());
                            }
                        }
                        _ => {}
                    }
                } else {
                    collect(x, key, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, key, out)),
        _ => {}
    }
}

/// The gateway's pod in the stand-ins: the one the Gateways select.
fn gateway_pod(rendered: &[Value], stand_ins: &[Value]) -> String {
    if let Some(pod) = gateway_api_pod(rendered) {
        return pod;
    }
    let gw = rendered.iter().find(|o| o["kind"] == "Gateway").expect("the render has a Gateway");
    let selector = gw["spec"]["selector"].as_object().unwrap();
    let pod = stand_ins
        .iter()
        .filter(|o| o["kind"] == "Pod" && o["metadata"]["namespace"] == GATEWAY_NAMESPACE)
        .find(|p| selector.iter().all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v)))
        .expect("a stand-in gateway pod");
    format!("{GATEWAY_NAMESPACE}/{}", pod["metadata"]["name"].as_str().unwrap())
}

fn check_gateway(fx: &Fixture, dump: &Value) {
    let expected: BTreeMap<&str, &str> = fx.hosts.iter().map(|(h, s)| (h.as_str(), s.as_str())).collect();
    for port in &fx.ports {
        let name = format!("0.0.0.0_{}", port.listener);
        let listener = named(&dump["listeners"], &name)
            .unwrap_or_else(|| panic!("no gateway listener {name} for port {}", port.gateway));
        let mut seen = BTreeMap::new();
        for chain in listener["filterChains"].as_array().unwrap() {
            let hosts = chain["filterChainMatch"]["serverNames"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                hosts.len(),
                1,
                "port {}: a chain not for exactly one host: {}",
                port.gateway,
                chain["filterChainMatch"]
            );
            let host = hosts[0].as_str().unwrap().to_string();
            let tls = chain["transportSocket"]["name"] == "envoy.transport_sockets.tls";
            assert_eq!(tls, !port.passthrough, "port {} {host}: TLS terminated at the gateway: {tls}", port.gateway);
            let target = match port.backend {
                Backend::Tcp(_) => filter(chain, "envoy.filters.network.tcp_proxy")
                    .and_then(|t| t["cluster"].as_str())
                    .unwrap_or_else(|| panic!("port {} {host}: no TCP proxy", port.gateway))
                    .to_string(),
                Backend::Http(_) => {
                    let rds = filter(chain, "envoy.filters.network.http_connection_manager")
                        .and_then(|h| h["rds"]["routeConfigName"].as_str())
                        .unwrap_or_else(|| panic!("port {} {host}: no HTTP routes", port.gateway));
                    let routes = named(&dump["routes"], rds).unwrap_or_else(|| panic!("no route configuration {rds}"));
                    let vhosts: Vec<&Value> = routes["virtualHosts"].as_array().unwrap().iter().collect();
                    assert_eq!(vhosts.len(), 1, "{rds}: one virtual host per host");
                    assert!(vhosts[0]["domains"].as_array().unwrap().contains(&Value::from(host.as_str())), "{rds}");
                    vhosts[0]["routes"][0]["route"]["cluster"].as_str().unwrap_or_default().to_string()
                }
            };
            assert!(seen.insert(host.clone(), target).is_none(), "port {}: two chains for {host}", port.gateway);
        }
        let want: BTreeMap<String, String> = expected
            .iter()
            .map(|(h, s)| {
                let p = match port.backend {
                    Backend::Tcp(p) | Backend::Http(p) => p,
                };
                (h.to_string(), cluster(s, fx.namespace, p))
            })
            .collect();
        assert_eq!(seen, want, "gateway port {}: host → broker Service and port", port.gateway);
    }
}

/// RBAC policy name → (principals, ports), from every RBAC filter of the
/// inbound listener (network filters and the HTTP filters of HTTP chains).
fn rbac_policies(inbound: &Value) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut add = |rbac: &Value| {
        for (name, policy) in rbac["rules"]["policies"].as_object().into_iter().flatten() {
            let mut principals = BTreeSet::new();
            let mut ports = BTreeSet::new();
            collect(&policy["principals"], "principalName", &mut principals);
            collect(&policy["permissions"], "destinationPort", &mut ports);
            let entry = out.entry(name.clone()).or_default();
            entry.0.extend(principals);
            entry.1.extend(ports);
        }
    };
    for chain in inbound["filterChains"].as_array().unwrap() {
        if let Some(rbac) = filter(chain, "envoy.filters.network.rbac") {
            add(rbac);
        }
        if let Some(hcm) = filter(chain, "envoy.filters.network.http_connection_manager") {
            for f in hcm["httpFilters"].as_array().into_iter().flatten() {
                if f["name"] == "envoy.filters.http.rbac" {
                    add(&f["typedConfig"]);
                }
            }
        }
    }
    out
}

/// An AuthorizationPolicy's rules, each as (principals, ports) the way the
/// policy spells them (principals without `spiffe://`).
fn policy_rules(ap: &Value) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let mut out = Vec::new();
    for rule in ap["spec"]["rules"].as_array().into_iter().flatten() {
        let mut principals = BTreeSet::new();
        for from in rule["from"].as_array().into_iter().flatten() {
            for p in from["source"]["principals"].as_array().into_iter().flatten() {
                principals.insert(p.as_str().unwrap().to_string());
            }
        }
        let mut ports = BTreeSet::new();
        for to in rule["to"].as_array().into_iter().flatten() {
            for p in to["operation"]["ports"].as_array().into_iter().flatten() {
                ports.insert(p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string()));
            }
        }
        out.push((principals, ports));
    }
    out
}

/// Whether the AuthorizationPolicy's selector matches `labels`.
fn selects(ap: &Value, labels: &Value) -> bool {
    let selector = ap["spec"]["selector"]["matchLabels"].as_object().cloned().unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn check_broker(fx: &Fixture, rendered: &[Value], dump: &Value) {
    let inbound = named(&dump["listeners"], "virtualInbound").expect("the broker sidecar's virtualInbound listener");
    let mut ports_served = 0;
    for chain in inbound["filterChains"].as_array().unwrap() {
        let name = chain["name"].as_str().unwrap_or_default();
        if name == "virtualInbound-blackhole" {
            continue;
        }
        let m = &chain["filterChainMatch"];
        assert_eq!(m["transportProtocol"], "tls", "{name}: a plain-text inbound chain: mTLS is not STRICT");
        let tls = &chain["transportSocket"];
        assert_eq!(tls["name"], "envoy.transport_sockets.tls", "{name}");
        assert_eq!(tls["typedConfig"]["requireClientCertificate"], true, "{name}: no client certificate required");
        ports_served += usize::from(m["destinationPort"].is_number());
    }
    assert!(ports_served >= 3, "the broker's ports have inbound chains: {ports_served}");

    // Expected: every ALLOW AuthorizationPolicy of the render selecting the
    // broker's pods, rule by rule.
    let pod_labels = rendered
        .iter()
        .find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == fx.broker)
        .map(|s| s["spec"]["template"]["metadata"]["labels"].clone())
        .expect("the broker StatefulSet");
    let mut want = BTreeMap::new();
    for ap in rendered.iter().filter(|o| o["kind"] == "AuthorizationPolicy") {
        if !selects(ap, &pod_labels) {
            continue;
        }
        assert!(ap["spec"]["action"].is_null() || ap["spec"]["action"] == "ALLOW", "{}", ap["metadata"]["name"]);
        let name = ap["metadata"]["name"].as_str().unwrap();
        for (i, (principals, ports)) in policy_rules(ap).into_iter().enumerate() {
            let principals = principals.iter().map(|p| format!("spiffe://{p}")).collect();
            want.insert(format!("ns[{}]-policy[{name}]-rule[{i}]", fx.namespace), (principals, ports));
        }
    }
    assert!(!want.is_empty(), "no AuthorizationPolicy selects the broker");
    assert_eq!(rbac_policies(inbound), want, "the broker's RBAC: policy → (principals, ports)");
}

fn judge(fx: &Fixture, label: &str) -> (Value, Value, Vec<Value>) {
    let yaml = render_for_istio(&fx.file).unwrap_or_else(|| panic!("{} renders", fx.file.display()));
    let rendered = yaml_documents(&yaml).unwrap();
    let extra = stand_ins(&rendered);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("istio_xds").join(label);
    std::fs::create_dir_all(&dir).unwrap();
    let files = [dir.join("rendered.yaml"), dir.join("stand-ins.yaml")];
    std::fs::write(&files[0], &yaml).unwrap();
    yaml_file(&files[1], &extra);
    let gateway = xds_dump(&files, "router", &gateway_pod(&rendered, &extra));
    let broker = xds_dump(&files, "sidecar", &format!("{}/{}-0", fx.namespace, fx.broker));
    std::fs::write(dir.join("gateway.json"), serde_json::to_string_pretty(&gateway).unwrap()).unwrap();
    std::fs::write(dir.join("broker-0.json"), serde_json::to_string_pretty(&broker).unwrap()).unwrap();
    (gateway, broker, rendered)
}

#[test]
fn quick_start_gateway_routes_each_host_to_its_broker_and_brokers_admit_only_named_peers() {
    let fx = quick_start();
    let (gateway, broker, rendered) = judge(&fx, "quick-start");
    check_gateway(&fx, &gateway);
    check_broker(&fx, &rendered, &broker);
    // SPEC 3.5, spelled out once: the cluster's own components reach the
    // broker's service ports, the ingress gateway only its external ones.
    let policies = rbac_policies(named(&broker["listeners"], "virtualInbound").unwrap());
    let sa = |s: &str| format!("spiffe://cluster.local/ns/pulsar/sa/{s}");
    let internal = &policies["ns[pulsar]-policy[private-cloud-broker]-rule[0]"];
    let members = ["private-cloud-bk", "private-cloud-bk-auto-recovery", "private-cloud-broker", "private-cloud-zk"];
    assert_eq!(internal.0, members.iter().map(|s| sa(s)).collect());
    let edge = &policies["ns[pulsar]-policy[private-cloud-broker]-rule[1]"];
    let gateway_sa = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
    assert_eq!(edge.0, BTreeSet::from([gateway_sa.to_string()]));
}

#[test]
fn five_passthrough_brokers_each_get_their_own_sni_route_on_every_protocol() {
    let fx = five_brokers_passthrough();
    let (gateway, broker, rendered) = judge(&fx, "five-brokers-passthrough");
    check_gateway(&fx, &gateway);
    check_broker(&fx, &rendered, &broker);
}

/// Issue 12.4: istiod converts magnetar's Gateway API objects (the Gateway,
/// a TLSRoute per broker and protocol, an HTTPRoute per host) into a
/// gateway configuration in which each per-broker host has its own filter
/// chain on every port, to its own broker's Service.
#[test]
fn gateway_api_objects_route_each_broker_host_to_its_own_broker_in_istiod() {
    let fx = gateway_api();
    let (gateway, broker, rendered) = judge(&fx, "gateway-api");
    check_gateway(&fx, &gateway);
    check_broker(&fx, &rendered, &broker);
    // The edge rule names the identity of istiod's gateway deployment.
    let policies = rbac_policies(named(&broker["listeners"], "virtualInbound").unwrap());
    let gateway_sa = "spiffe://cluster.local/ns/pulsar-gateway-api/sa/gapi-broker-gateway-istio";
    assert!(policies.values().any(|(principals, _)| principals.contains(gateway_sa)), "{policies:?}");
}

/// Identity names of an ambient `Match` list: principals (`exact`) and
/// service accounts, spelled as AuthorizationPolicy principals
/// (`<trust domain>/ns/<namespace>/sa/<name>`).
fn ztunnel_identities(matches: &Value, trust_domain: &str, out: &mut BTreeSet<String>) {
    for m in matches.as_array().into_iter().flatten() {
        for p in m["principals"].as_array().into_iter().flatten() {
            out.insert(p["exact"].as_str().unwrap_or_else(|| panic!("a non-exact principal: {p}")).to_string());
        }
        for sa in m["serviceAccounts"].as_array().into_iter().flatten() {
            out.insert(format!("{trust_domain}/ns/{}/sa/{}", str_at(sa, "/namespace"), str_at(sa, "/serviceAccount")));
        }
    }
}

#[test]
fn ambient_ztunnel_authorization_holds_the_same_l4_rules() {
    let file = repo_root().unwrap().join("examples/ambient.yaml");
    let yaml = render_for_istio(&file).expect("examples/ambient.yaml renders");
    let rendered = yaml_documents(&yaml).unwrap();
    // ztunnel is told about running pods with an address: give the
    // stand-in pods what the kubelet would report.
    let mut extra = stand_ins(&rendered);
    for (i, pod) in extra.iter_mut().filter(|o| o["kind"] == "Pod").enumerate() {
        pod["status"] = serde_json::json!({
            "phase": "Running",
            "podIP": format!("10.244.{}.{}", i / 200, 10 + i % 200),
            "conditions": [{"type": "Ready", "status": "True"}],
        });
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("istio_xds").join("ambient");
    std::fs::create_dir_all(&dir).unwrap();
    let files = [dir.join("rendered.yaml"), dir.join("stand-ins.yaml")];
    std::fs::write(&files[0], &yaml).unwrap();
    yaml_file(&files[1], &extra);
    let bin = istio_tools().unwrap().join("bin/xds-dump");
    let out = Command::new(&bin)
        // istiod's switch for its ambient index (as the ambient profile sets it).
        .env("PILOT_ENABLE_AMBIENT", "true")
        .args(["-proxy", "ztunnel"])
        .args(&files)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "xds-dump ztunnel: {}", String::from_utf8_lossy(&out.stderr));
    let dump: Value = serde_json::from_slice(&out.stdout).unwrap();
    std::fs::write(dir.join("ztunnel.json"), serde_json::to_string_pretty(&dump).unwrap()).unwrap();

    // Every ALLOW AuthorizationPolicy of the render is an ALLOW
    // authorization for the workloads it selects, rule by rule (one group
    // per rule): the same identities and the same ports.
    let trust_domain = "cluster.local";
    let authorizations = dump["authorizations"].as_array().cloned().unwrap_or_default();
    let policies: Vec<&Value> = rendered.iter().filter(|o| o["kind"] == "AuthorizationPolicy").collect();
    assert!(policies.len() >= 4, "the ambient render has AuthorizationPolicies: {}", policies.len());
    for ap in &policies {
        let (ns, name) = (str_at(ap, "/metadata/namespace"), str_at(ap, "/metadata/name"));
        let authz = authorizations
            .iter()
            .find(|a| a["name"] == name && a["namespace"] == ns)
            .unwrap_or_else(|| panic!("no ztunnel authorization for AuthorizationPolicy {ns}/{name}"));
        assert!(authz["action"].is_null() || authz["action"] == "ALLOW", "{ns}/{name}: {}", authz["action"]);
        assert_eq!(authz["scope"], "WORKLOAD_SELECTOR", "{ns}/{name}");
        let rules = policy_rules(ap);
        let groups = authz["groups"].as_array().cloned().unwrap_or_default();
        assert_eq!(groups.len(), rules.len(), "{ns}/{name}: one group per rule");
        for (i, ((want_ids, want_ports), group)) in rules.iter().zip(&groups).enumerate() {
            let (mut ids, mut ports) = (BTreeSet::new(), BTreeSet::new());
            for r in group["rules"].as_array().into_iter().flatten() {
                ztunnel_identities(&r["matches"], trust_domain, &mut ids);
                for m in r["matches"].as_array().into_iter().flatten() {
                    for p in m["destinationPorts"].as_array().into_iter().flatten() {
                        ports.insert(p.to_string());
                    }
                }
            }
            assert_eq!(&ids, want_ids, "{ns}/{name} rule {i}: identities");
            assert_eq!(&ports, want_ports, "{ns}/{name} rule {i}: ports");
        }
    }

    // Each pod's workload is bound to exactly the render's policies whose
    // selector matches it, and to a STRICT mTLS rule (a DENY of every
    // connection without a peer identity).
    let workloads = dump["workloads"].as_array().cloned().unwrap_or_default();
    let pods: Vec<&Value> =
        extra.iter().filter(|o| o["kind"] == "Pod" && o["metadata"]["namespace"] == "pulsar-ambient").collect();
    assert!(pods.len() >= 9, "pods of the ambient cluster: {}", pods.len());
    for pod in pods {
        let name = str_at(pod, "/metadata/name");
        let w = workloads
            .iter()
            .find(|w| w["name"] == name && w["namespace"] == "pulsar-ambient")
            .unwrap_or_else(|| panic!("no ztunnel workload for pod {name}"));
        let bound: BTreeSet<String> = w["authorizationPolicies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        let want: BTreeSet<String> = policies
            .iter()
            .filter(|ap| selects(ap, &pod["metadata"]["labels"]))
            .map(|ap| format!("pulsar-ambient/{}", str_at(ap, "/metadata/name")))
            .collect();
        assert!(!want.is_empty(), "{name}: no AuthorizationPolicy selects it");
        let strict: Vec<&String> = bound
            .iter()
            .filter(|b| {
                authorizations.iter().any(|a| {
                    format!("{}/{}", str_at(a, "/namespace"), str_at(a, "/name")) == **b
                        && a["action"] == "DENY"
                        && a.to_string().contains("\"notPrincipals\":[{\"presence\":{}}]")
                })
            })
            .collect();
        assert!(!strict.is_empty(), "{name}: no STRICT mTLS rule bound to the workload: {bound:?}");
        let allow: BTreeSet<String> = bound.iter().filter(|b| !strict.contains(b)).cloned().collect();
        assert_eq!(allow, want, "{name}: the ALLOW policies ztunnel applies");
    }
}
