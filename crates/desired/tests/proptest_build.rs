//! Property test: arbitrary specs of the five kinds (valid and invalid:
//! every enum, optional blocks, replicas -2..12, odd names and domains,
//! protocol handlers, gateway modes, customization with random regexes and
//! manifests, authRules, mTLS/dataplane combinations, coordinator
//! propagation) go through validation and build. Validation and build never
//! panic; what validation must refuse is refused; and whatever builds is
//! valid against the real Kubernetes and both Istio schemas, carries the
//! common labels and owner references, has valid names and port names, and
//! is deterministic.

mod support;

use kube::{Resource, ResourceExt};
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};
use magnetar_desired::cluster::Inventory;
use magnetar_desired::{BuildContext, Invalid, Object, OperatorIdentity, propagate};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

const CASES: u32 = 96;
const SEED: u64 = 0x6d61_676e_6574_6172;
const COORDINATOR: &str = "coord";
const COORDINATOR_LABEL: &str = "k8s.streamnative.io/coordinator-name";

// ---------------------------------------------------------------- strategies

type S = BoxedStrategy<Value>;

fn pick(values: &[Value]) -> S {
    proptest::sample::select(values.to_vec()).boxed()
}

fn strs(values: &[&str]) -> S {
    pick(&values.iter().map(|v| json!(v)).collect::<Vec<_>>())
}

/// An object from optional fields (absent fields are left out).
fn obj(fields: Vec<(&'static str, BoxedStrategy<Option<Value>>)>) -> S {
    fields
        .into_iter()
        .fold(Just(Map::new()).boxed(), |acc, (k, s)| {
            (acc, s)
                .prop_map(move |(mut m, v)| {
                    if let Some(v) = v {
                        m.insert(k.to_string(), v);
                    }
                    m
                })
                .boxed()
        })
        .prop_map(Value::Object)
        .boxed()
}

fn opt(s: S) -> BoxedStrategy<Option<Value>> {
    proptest::option::weighted(0.6, s).boxed()
}

fn often(s: S) -> BoxedStrategy<Option<Value>> {
    proptest::option::weighted(0.9, s).boxed()
}

/// Mostly one of `good`, sometimes one of `bad` (values validation refuses).
fn mostly(good: &[&str], bad: &[&str]) -> S {
    prop_oneof![12 => strs(good), 1 => strs(bad)].boxed()
}

fn always(s: S) -> BoxedStrategy<Option<Value>> {
    s.prop_map(Some).boxed()
}

fn boolean() -> S {
    any::<bool>().prop_map(Value::Bool).boxed()
}

fn list(s: S, max: usize) -> S {
    proptest::collection::vec(s, 0..=max).prop_map(Value::Array).boxed()
}

fn map_of(keys: &[&str], values: S, max: usize) -> S {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    proptest::collection::btree_map(proptest::sample::select(keys), values, 0..=max)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

/// CR names: mostly valid, some at and over the length limit, some invalid.
fn cr_name() -> BoxedStrategy<String> {
    prop_oneof![
        24 => "[a-z][a-z0-9-]{0,12}[a-z0-9]",
        1 => Just("a".repeat(42)),
        1 => Just(format!("pulsar-{}", "x".repeat(35))),
        1 => Just("b".repeat(43)),
        1 => "[A-Za-z0-9_.-]{1,10}",
        1 => Just("-bad".to_string()),
        // A DNS-1123 label, but Service names (<name>-broker) need a letter first.
        1 => Just("9lives".to_string()),
    ]
    .boxed()
}

fn namespace() -> BoxedStrategy<String> {
    prop_oneof![Just("pulsar".to_string()), "[a-z][a-z0-9-]{0,14}[a-z0-9]"].boxed()
}

fn uid() -> BoxedStrategy<Option<String>> {
    proptest::option::of("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").boxed()
}

fn image() -> S {
    prop_oneof![
        12 => Just(json!("streamnative/private-cloud:4.0.5.2")),
        1 => Just(json!("")),
        1 => Just(json!("  ")),
        6 => "[a-z]{1,8}/[a-z]{1,8}:[0-9][0-9.]{0,4}".prop_map(Value::String),
    ]
    .boxed()
}

fn replicas() -> S {
    prop_oneof![12 => 1i32..12, 1 => -2i32..1].prop_map(|r| json!(r)).boxed()
}

fn quantity() -> S {
    strs(&["1Gi", "10Gi", "500Mi", "1Ti", "20G"])
}

fn pod() -> S {
    obj(vec![
        ("labels", opt(map_of(&["team", "example.com/tier", "app"], strs(&["a", "blue", "x-1"]), 2))),
        ("annotations", opt(map_of(&["example.com/note", "prometheus.io/scrape"], strs(&["true", "any text: ok"]), 2))),
        (
            "resources",
            opt(obj(vec![
                ("requests", opt(map_of(&["cpu", "memory"], strs(&["100m", "1", "512Mi", "2Gi"]), 2))),
                ("limits", opt(map_of(&["cpu", "memory"], strs(&["2", "4Gi"]), 2))),
            ])),
        ),
        ("securityContext", opt(pick(&[json!({"runAsUser": 10000, "fsGroup": 0}), json!({"runAsNonRoot": true})]))),
        ("nodeSelector", opt(map_of(&["kubernetes.io/os", "pool"], strs(&["linux", "pulsar"]), 2))),
        (
            "tolerations",
            opt(list(
                pick(&[
                    json!({"key": "dedicated", "operator": "Equal", "value": "pulsar", "effect": "NoSchedule"}),
                    json!({"operator": "Exists"}),
                ]),
                2,
            )),
        ),
        (
            "affinity",
            opt(pick(&[json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}
            }]}})])),
        ),
        ("serviceAccountName", opt(strs(&["custom-sa", "pulsar-runner"]))),
        (
            "secretRefs",
            opt(list(
                obj(vec![
                    ("secretName", always(mostly(&["tls-client", "creds"], &[""]))),
                    ("mountPath", always(mostly(&["/etc/tls/client", "/secrets/creds"], &["relative/path"]))),
                ]),
                2,
            )),
        ),
        ("terminationGracePeriodSeconds", opt((0i64..120).prop_map(|s| json!(s)).boxed())),
        ("minReadySeconds", opt((-1i32..60).prop_map(|s| json!(s)).boxed())),
        (
            "vars",
            opt(list(
                pick(&[
                    json!({"name": "tokenSecretKey", "value": "file:///mnt/secrets/k"}),
                    json!({"name": "brokerClientAuthenticationParameters", "valueFrom": {"secretKeyRef": {"name": "t", "key": "token"}}}),
                    json!({"name": "PULSAR_MEM", "value": "-Xmx1g"}),
                    json!({"name": "authenticationEnabled", "value": "true"}),
                    json!({"name": "bad=name", "value": "x"}),
                    json!({"name": "both", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
                ]),
                3,
            )),
        ),
        (
            "sidecars",
            opt(list(
                pick(&[
                    json!({"name": "shipper", "image": "fluent-bit:3"}),
                    json!({"name": "istio-proxy", "image": "envoy:1"}),
                    json!({"name": "noimage"}),
                ]),
                2,
            )),
        ),
        (
            "initContainers",
            opt(list(
                pick(&[json!({"name": "wait", "image": "busybox:1.36"}), json!({"name": "Bad_Name", "image": "x"})]),
                2,
            )),
        ),
        (
            "volumes",
            opt(list(
                pick(&[
                    json!({"name": "extra", "configMap": {"name": "cm"}}),
                    json!({"name": "journal", "secret": {"secretName": "s"}}),
                    json!({"name": "neither"}),
                ]),
                2,
            )),
        ),
        (
            "topologySpreadConstraints",
            opt(list(
                pick(&[
                    json!({"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}),
                ]),
                1,
            )),
        ),
        (
            "jvmOptions",
            opt(obj(vec![
                ("memoryOptions", opt(list(strs(&["-Xmx1g", "bad option"]), 2))),
                ("gcOptions", opt(list(strs(&["-XX:+UseZGC"]), 1))),
                ("extraOptions", opt(list(strs(&["-Da=1"]), 1))),
            ])),
        ),
    ])
}

/// A PersistentVolumeClaim spec as users write one in StreamNative's fields.
fn claim_spec() -> S {
    obj(vec![
        ("accessModes", opt(pick(&[json!(["ReadWriteOnce"]), json!(["ReadWriteOncePod"])]))),
        ("storageClassName", opt(mostly(&["standard", "fast-ssd"], &["<Your Storage Class name>", ""]))),
        (
            "resources",
            opt(obj(vec![("requests", opt(obj(vec![("storage", opt(mostly(&["8Gi", "16Gi"], &["0", "-1Gi"])))])))])),
        ),
    ])
}

fn auth_rule() -> S {
    obj(vec![
        (
            "fromSource",
            opt(list(
                obj(vec![
                    (
                        "principals",
                        opt(list(mostly(&["cluster.local/ns/clients/sa/app", "td.example/ns/x/sa/y"], &[""]), 2)),
                    ),
                    ("namespaces", opt(list(strs(&["clients", "team-a"]), 2))),
                    ("ipBlocks", opt(list(strs(&["10.0.0.0/8", "192.168.1.7"]), 1))),
                ]),
                2,
            )),
        ),
        (
            "toOperation",
            opt(list(obj(vec![("ports", opt(list(mostly(&["6650", "9092", "8080"], &["0", "70000", "abc"]), 2)))]), 2)),
        ),
    ])
}

fn mesh_fields(gateway: bool) -> Vec<(&'static str, BoxedStrategy<Option<Value>>)> {
    let mut f = vec![
        ("enabled", opt(boolean())),
        ("dataplaneMode", opt(strs(&["sidecar", "ambient"]))),
        ("revision", opt(strs(&["", "default", "canary", "1-24-2"]))),
        ("trustDomain", opt(strs(&["", "cluster.local", "td.example.com"]))),
        ("mtls", opt(obj(vec![("mode", opt(strs(&["strict", "permissive", "none"])))]))),
        (
            "metrics",
            opt(obj(vec![
                ("permissive", opt(boolean())),
                (
                    "allowFrom",
                    opt(list(
                        obj(vec![
                            ("namespaces", opt(list(strs(&["monitoring"]), 1))),
                            ("ipBlocks", opt(list(mostly(&["10.42.0.0/16", "10.0.0.7"], &["10.0.0.0/40"]), 1))),
                        ]),
                        2,
                    )),
                ),
            ])),
        ),
        ("authRules", opt(list(auth_rule(), 2))),
    ];
    if gateway {
        f.push((
            "gateway",
            opt(obj(vec![
                (
                    "selector",
                    opt(pick(&[json!({}), json!({"istio": "ingressgateway"}), json!({"app": "custom-gateway"})])),
                ),
                ("namespace", opt(strs(&["", "istio-system", "gateways"]))),
                ("serviceAccount", opt(strs(&["", "istio-ingressgateway-service-account", "custom-gw"]))),
                ("gateways", opt(list(strs(&["shared-gw", "istio-system/public-gw"]), 2))),
                ("meshInternalHosts", opt(boolean())),
                (
                    "gatewayAPI",
                    rare(obj(vec![
                        ("gatewayClassName", opt(mostly(&["istio", "cilium"], &[""]))),
                        (
                            "parentRefs",
                            opt(list(
                                pick(&[
                                    json!({"name": "shared", "namespace": "ingress"}),
                                    json!({"name": "gw"}),
                                    json!({"name": "Bad Name"}),
                                ]),
                                2,
                            )),
                        ),
                    ])),
                ),
                (
                    "tls",
                    often(obj(vec![
                        ("mode", opt(strs(&["simple", "passthrough"]))),
                        ("certSecretName", often(mostly(&["ingress-tls"], &[""]))),
                        ("trustCertsEnabled", opt(boolean())),
                    ])),
                ),
            ])),
        ));
    }
    f
}

fn mesh(gateway: bool) -> S {
    obj(mesh_fields(gateway))
}

fn gvk() -> S {
    let kinds = [
        ("networking.istio.io", "DestinationRule"),
        ("security.istio.io", "AuthorizationPolicy"),
        ("security.istio.io", "PeerAuthentication"),
        ("networking.istio.io", "Gateway"),
        ("", "Service"),
        ("", "ConfigMap"),
        ("apps", "StatefulSet"),
        ("policy", "PodDisruptionBudget"),
    ];
    let kinds: Vec<Value> = kinds.iter().map(|(g, k)| json!({"group": g, "kind": k})).collect();
    (proptest::sample::select(kinds), proptest::option::of(prop_oneof![Just("v1"), Just("v9")]))
        .prop_map(|(mut g, v)| {
            if let Some(v) = v {
                g["version"] = json!(v);
            }
            g
        })
        .boxed()
}

/// Name regexes: valid, anchored-matching, and malformed.
fn name_regex() -> S {
    prop_oneof![
        8 => strs(&["", ".*", ".*-broker", ".*-zk", "[a-z]+-proxy", ".*-(zk|bk)(-headless)?"]),
        // Invalid on their own; ")(" and "a)|(b" only look valid inside
        // the anchoring wrapper ^(?:...)$, which they would escape.
        1 => strs(&["(", "[", "a{2,1}", "(?P<x", "\\", ")(", "a)|(b"]),
        1 => "[a-z.*()|\\[\\]+?-]{0,8}".prop_map(Value::String),
    ]
    .boxed()
}

/// A customization entry. Patches that parse as mappings are ones that keep
/// the matched kinds schema-valid; the rest are junk validation must refuse.
fn customization() -> S {
    let metadata_patch = strs(&[
        "metadata:\n  annotations:\n    example.com/patched: \"yes\"\n",
        "{metadata: {labels: {team: platform}}}",
        "{}",
    ]);
    let junk = prop_oneof![
        strs(&["", "42", "null", "~", "- a\n- b", "[1, 2]", "just text", "'quoted'", "{", "spec: [", "{a: 1", ": :"]),
        "[a-z0-9 \\[\\],'\"#-]{0,16}".prop_map(Value::String),
    ];
    let any_kinds =
        prop_oneof![12 => proptest::collection::vec(gvk(), 1..=2).prop_map(Value::Array), 1 => Just(json!([]))];
    let generic = (prop_oneof![8 => metadata_patch, 1 => junk], any_kinds, name_regex())
        .prop_map(|(m, k, n)| json!({"manifest": m, "match": {"groupVersionKinds": k, "name": n}}));
    let dr = (
        strs(&[
            "spec:\n  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 1000}\n",
            "{spec: {trafficPolicy: {connectionPool: {tcp: {connectTimeout: 5s}}}}}",
        ]),
        name_regex(),
    )
        .prop_map(|(m, n)| {
            json!({"manifest": m, "match": {"groupVersionKinds": [{"group": "networking.istio.io", "kind": "DestinationRule"}], "name": n}})
        });
    let sts = (strs(&["spec:\n  template:\n    metadata:\n      annotations: {example.com/restart: \"1\"}\n"]), name_regex())
        .prop_map(|(m, n)| json!({"manifest": m, "match": {"groupVersionKinds": [{"group": "apps", "kind": "StatefulSet"}], "name": n}}));
    prop_oneof![3 => generic, 1 => dr, 1 => sts].boxed()
}

fn custom_config(keys: &[&str]) -> S {
    obj(vec![("custom", opt(map_of(keys, strs(&["1", "true", "some value", "a=b"]), 3)))])
}

fn zk_servers() -> S {
    prop_oneof![
        24 => strs(&["zk:2181", "pc-zk:2181", "a-zk:2181,b-zk.pulsar.svc:2181"]),
        1 => strs(&["", "nohost", "zk:99999", "zk:0", ":2181", "zk:2181,"]),
        1 => "[a-z0-9.:,-]{0,16}".prop_map(Value::String),
    ]
    .boxed()
}

fn domain() -> S {
    prop_oneof![
        30 => strs(&["pulsar.example.com", "example.com", "streams.a-b.example.org"]),
        1 => strs(&["", "Pulsar.Example.com", "localhost", "-bad.example.com", "a..b.com", "x_y.example.com"]),
        1 => Just(json!(format!("{}.example.com", "l".repeat(63)))),
        1 => Just(json!(format!("{}.example.com", "l".repeat(64)))),
        1 => Just(json!(format!("{}.com", ["abcdefghij"; 19].join(".")))),
        1 => "[a-z0-9.-]{1,24}".prop_map(Value::String),
    ]
    .boxed()
}

fn proxied_handler() -> S {
    obj(vec![("enabled", opt(boolean())), ("proxyEnabled", opt(boolean()))])
}

fn broker_config() -> S {
    obj(vec![
        ("clusterName", opt(mostly(&["pulsar-cluster", "c1"], &["", "my cluster", "a/b"]))),
        ("advertisedDomain", often(domain())),
        ("serviceURLGenerationPolicy", opt(strs(&["NameUIDPrefix", "OrdinalPrefix", "FQDN"]))),
        (
            "protocolHandlers",
            opt(obj(vec![
                (
                    "kop",
                    opt(obj(vec![
                        ("enabled", opt(boolean())),
                        (
                            "tls",
                            opt(obj(vec![
                                ("enabled", opt(boolean())),
                                ("certSecretName", often(mostly(&["kop-tls"], &[""]))),
                                ("trustCertsEnabled", opt(boolean())),
                                ("passwordSecretRef", opt(pick(&[json!({"name": "kop-pass", "key": "password"})]))),
                            ])),
                        ),
                    ])),
                ),
                ("mop", opt(proxied_handler())),
                ("aop", opt(proxied_handler())),
            ])),
        ),
        ("transactionEnabled", opt(boolean())),
        ("authentication", opt(authentication())),
        (
            "authorization",
            opt(obj(vec![
                ("superUserRoles", opt(strs(&["admin", "admin,proxy", ""]))),
                ("proxyRoles", opt(strs(&["proxy", " "]))),
            ])),
        ),
        ("clientAuth", opt(client_auth())),
        (
            "custom",
            opt(map_of(
                &["PULSAR_PREFIX_custom_key", "managedLedgerDefaultEnsembleSize", "brokerDeleteInactiveTopicsEnabled"],
                strs(&["1", "true", "x y"]),
                3,
            )),
        ),
    ])
}

/// Common metadata plus `spec`, and whether the resource is linked to the
/// coordinator (then `propagate::apply` runs, as in render).
#[derive(Clone, Debug)]
struct Input {
    value: Value,
    coordinator: Option<Value>,
}

fn coordinator_spec() -> S {
    obj(vec![
        ("image", opt(image())),
        (
            "istio",
            opt(obj(vec![
                ("revision", opt(strs(&["", "default", "canary"]))),
                ("trustDomain", opt(strs(&["", "cluster.local", "td.example.com"]))),
                ("dataplaneMode", opt(strs(&["sidecar", "ambient"]))),
                ("mtls", opt(obj(vec![("mode", opt(strs(&["strict", "permissive", "none"])))]))),
            ])),
        ),
        (
            "toolSet",
            opt(obj(vec![
                ("enabled", opt(boolean())),
                ("replicas", opt((-1i32..4).prop_map(|r| json!(r)).boxed())),
                ("pod", opt(pod())),
            ])),
        ),
    ])
}

fn resource(api_version: &'static str, kind: &'static str, spec: S) -> BoxedStrategy<Input> {
    (cr_name(), namespace(), uid(), any::<bool>(), proptest::option::of(coordinator_spec()), spec)
        .prop_map(move |(name, ns, uid, ignore_leader, coordinator, spec)| {
            let mut metadata = json!({"name": name, "namespace": ns});
            if let Some(u) = uid {
                metadata["uid"] = json!(u);
            }
            if coordinator.is_some() {
                metadata["labels"] = json!({COORDINATOR_LABEL: COORDINATOR});
            }
            if ignore_leader && kind == "ZooKeeperCluster" {
                metadata["annotations"] = json!({"cloud.streamnative.io/ignore-leader-check": "true"});
            }
            Input {
                value: json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}),
                coordinator,
            }
        })
        .boxed()
}

fn authentication() -> S {
    obj(vec![
        (
            "jwt",
            opt(obj(vec![
                ("tokenAuthClaim", opt(strs(&["sub", ""]))),
                ("tokenPublicKey", opt(mostly(&["file:///etc/jwt/public.key", "data:;base64,cHVi"], &[""]))),
                (
                    "tokenSecretKey",
                    often(mostly(&["file:///etc/jwt/secret.key"], &["data:;base64,c2Vj", "inline", ""])),
                ),
            ])),
        ),
        ("mtls", opt(obj(vec![("enabled", opt(boolean()))]))),
    ])
}

fn client_auth() -> S {
    let generic = obj(vec![
        ("authPlugin", always(mostly(&["org.example.Auth"], &[""]))),
        ("authParams", always(mostly(&["file:///etc/creds"], &["token:abc"]))),
        ("custom", opt(map_of(&["brokerClientTrustCertsFilePath"], strs(&["/etc/ca.crt"]), 1))),
    ]);
    let jwt = obj(vec![
        ("secret", always(mostly(&["broker-token"], &["Bad_Secret"]))),
        ("token", opt(mostly(&["token", "jwt"], &["eyJhbGciOiJIUzI1NiJ9.e30.x"]))),
    ]);
    let mtls = obj(vec![("certSecretName", always(mostly(&["client-cert"], &[""])))]);
    let one = |k: &'static str, v: S| v.prop_map(move |v| json!({ k: v })).boxed();
    prop_oneof![
        4 => one("generic", generic.clone()),
        4 => one("jwt", jwt.clone()),
        4 => one("mtls", mtls.clone()),
        1 => (jwt, mtls).prop_map(|(j, m)| json!({"jwt": j, "mtls": m})).boxed(),
    ]
    .boxed()
}

/// Some value about one time in six.
fn rare(s: S) -> BoxedStrategy<Option<Value>> {
    proptest::option::weighted(1.0 / 6.0, s).boxed()
}

fn monitoring() -> S {
    obj(vec![
        ("enabled", opt(boolean())),
        ("interval", opt(mostly(&["30s", "1m"], &["soon", ""]))),
        ("labels", opt(map_of(&["release", "team"], strs(&["prometheus", "x"]), 2))),
    ])
}

fn component_spec(mut fields: Vec<(&'static str, BoxedStrategy<Option<Value>>)>, gateway: bool) -> S {
    fields.extend([
        // Often: a missing image is one refusal among many the generator
        // already makes; the coordinator's image covers some of the rest.
        ("image", often(image())),
        ("imagePullPolicy", opt(strs(&["Always", "IfNotPresent", "Never"]))),
        ("replicas", opt(replicas())),
        ("pod", opt(pod())),
        ("monitoring", rare(monitoring())),
        ("istio", opt(mesh(gateway))),
        ("customization", opt(list(customization(), 3))),
    ]);
    obj(fields)
}

fn zookeeper() -> BoxedStrategy<Input> {
    let persistence = obj(vec![
        ("reclaimPolicy", opt(strs(&["Retain", "Delete"]))),
        ("storageClassName", opt(strs(&["", "standard", "fast-ssd"]))),
        ("size", opt(quantity())),
        ("data", opt(claim_spec())),
        ("dataLog", opt(claim_spec())),
    ]);
    let spec = component_spec(
        vec![
            ("persistence", opt(persistence)),
            ("config", opt(custom_config(&["tickTime", "maxClientCnxns", "autopurge.purgeInterval"]))),
        ],
        false,
    );
    resource("zookeeper.streamnative.io/v1alpha1", "ZooKeeperCluster", spec)
}

fn bookkeeper() -> BoxedStrategy<Input> {
    let volume = obj(vec![
        ("size", opt(quantity())),
        ("numVolumes", opt((1i32..4).prop_map(|n| json!(n)).boxed())),
        ("numDirsPerVolume", opt((1i32..4).prop_map(|n| json!(n)).boxed())),
        ("volumeClaimTemplate", opt(claim_spec())),
    ]);
    let storage = obj(vec![
        ("reclaimPolicy", opt(strs(&["Retain", "Delete"]))),
        ("storageClassName", opt(strs(&["", "standard"]))),
        ("journal", opt(volume.clone())),
        ("ledger", opt(volume.clone())),
        ("ledgers", opt(volume)),
    ]);
    let auto_recovery = obj(vec![
        ("replicas", opt((-1i32..4).prop_map(|r| json!(r)).boxed())),
        ("pod", opt(pod())),
        ("conf", opt(obj(vec![("zkServers", opt(zk_servers()))]))),
    ]);
    let spec = component_spec(
        vec![
            ("zkServers", always(zk_servers())),
            ("storage", opt(storage)),
            ("autoRecovery", opt(auto_recovery)),
            (
                "autoScalingPolicy",
                opt(obj(vec![
                    ("minReplicas", opt((0i32..4).prop_map(|n| json!(n)).boxed())),
                    ("maxReplicas", always((1i32..8).prop_map(|n| json!(n)).boxed())),
                ])),
            ),
            ("config", opt(custom_config(&["journalMaxGroupWaitMSec", "PULSAR_PREFIX_x"]))),
        ],
        false,
    );
    resource("bookkeeper.streamnative.io/v1alpha1", "BookKeeperCluster", spec)
}

fn broker() -> BoxedStrategy<Input> {
    let spec = component_spec(vec![("zkServers", always(zk_servers())), ("config", often(broker_config()))], true);
    resource("pulsar.streamnative.io/v1alpha1", "PulsarBroker", spec)
}

fn proxy() -> BoxedStrategy<Input> {
    let dns = prop_oneof![
        12 => strs(&["proxy.example.com", "pulsar.example.org"]),
        1 => strs(&["Bad_Name", "localhost", ""]),
    ];
    let spec = component_spec(
        vec![
            ("brokerAddress", always(mostly(&["pc-broker", "pc-broker.pulsar.svc:6650"], &["", "  "]))),
            ("dnsNames", often(list(dns.boxed(), 3))),
            ("configurationStoreServers", opt(mostly(&["pc-zk:2181", "zk:pc-zk:2181"], &["pc-zk", ""]))),
            (
                "config",
                opt(obj(vec![
                    (
                        "custom",
                        opt(map_of(&["maxConcurrentLookupRequests", "PULSAR_PREFIX_y"], strs(&["1", "x y"]), 2)),
                    ),
                    ("authentication", rare(authentication())),
                    ("authorization", rare(obj(vec![("superUserRoles", opt(strs(&["admin", ""])))]))),
                    ("clientAuth", rare(client_auth())),
                    (
                        "kopProxy",
                        opt(obj(vec![
                            ("enabled", opt(boolean())),
                            ("kafkaAdvertisedListener", opt(mostly(&["kafka.example.com:9092"], &["no-port", ""]))),
                        ])),
                    ),
                ])),
            ),
        ],
        true,
    );
    resource("pulsar.streamnative.io/v1alpha1", "PulsarProxy", spec)
}

// ---------------------------------------------------------------- checks

fn typed<T: DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("the generator made an undeserializable resource: {e}\n{v:#}"))
}

/// The coordinator (if linked) propagated into the resource, like render.
fn prepare(input: &Input) -> (Value, Option<PulsarCoordinator>) {
    let mut value = input.value.clone();
    let coordinator = input.coordinator.as_ref().map(|spec| {
        let c: PulsarCoordinator = typed(&json!({
            "apiVersion": "k8s.streamnative.io/v1alpha1",
            "kind": "PulsarCoordinator",
            "metadata": {"name": COORDINATOR, "namespace": value["metadata"]["namespace"]},
            "spec": spec,
        }));
        propagate::apply(&c.spec, &mut value);
        c
    });
    (value, coordinator)
}

fn context<K: Resource>(
    res: &K,
    coordinator: Option<PulsarCoordinator>,
    inventory: impl FnOnce(&mut Inventory),
) -> BuildContext {
    let mut inv = Inventory::default();
    inv.coordinators.extend(coordinator);
    inventory(&mut inv);
    inv.context_for(res.meta(), &OperatorIdentity::default())
}

/// What a successful build must satisfy.
fn check_output<K: Resource<DynamicType = ()>>(
    res: &K,
    app_name: &str,
    instance: &str,
    objects: &[Object],
) -> Result<(), TestCaseError> {
    let mut problems = support::all_errors(objects, false);
    let ns = res.namespace().unwrap_or_default();
    let uid = res.uid().filter(|u| !u.is_empty());
    for o in objects {
        let meta = support::metadata(o);
        let labels = meta.labels.unwrap_or_default();
        let name = support::entry(&labels, "app.kubernetes.io/name");
        if name != Some(app_name) {
            problems.push(format!("{} {}: app.kubernetes.io/name is {name:?}, want {app_name}", o.kind, o.name));
        }
        let inst = support::entry(&labels, "app.kubernetes.io/instance");
        if inst != Some(instance) {
            problems.push(format!("{} {}: app.kubernetes.io/instance is {inst:?}, want {instance}", o.kind, o.name));
        }
        let refs = meta.owner_references.unwrap_or_default();
        let want = usize::from(uid.is_some() && o.namespace == ns);
        let controller_to_owner = refs.iter().any(|r| {
            r.controller == Some(true) && Some(r.uid.as_str()) == uid.as_deref() && r.kind == K::kind(&()).as_ref()
        });
        if refs.len() != want || (want == 1 && !controller_to_owner) {
            problems.push(format!(
                "{} {}/{}: ownerReferences {} (CR uid {uid:?}, namespace {ns}): want {want} controller reference to the CR, none across namespaces",
                o.kind,
                o.namespace,
                o.name,
                serde_json::to_string(&refs).unwrap()
            ));
        }
    }
    prop_assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    Ok(())
}

/// Builds twice: same objects, same bytes.
fn deterministic(
    first: &Result<Vec<Object>, Invalid>,
    again: Result<Vec<Object>, Invalid>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(first, &again, "building twice gave different results");
    if let (Ok(a), Ok(b)) = (first, again) {
        let bytes = |v: &[Object]| serde_json::to_vec(&v.iter().map(|o| &o.value).collect::<Vec<_>>()).unwrap();
        prop_assert_eq!(bytes(a), bytes(&b));
    }
    Ok(())
}

fn refused(result: &Result<Vec<Object>, Invalid>) -> Result<(), TestCaseError> {
    if let Err(Invalid(errors)) = result {
        prop_assert!(!errors.is_empty(), "Invalid without a reason");
        for e in errors {
            prop_assert!(!e.message.trim().is_empty(), "error without a message at {:?}", e.path);
        }
    }
    Ok(())
}

/// Expectations validation must meet, whatever else the spec holds.
struct Must {
    refuse: Vec<String>,
}

impl Must {
    fn new(v: &Value, min_replicas: i64) -> Self {
        let mut refuse = Vec::new();
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        if name.len() > 42 || !support::dns1123_label(name) {
            refuse.push(format!("name {name:?}"));
        }
        let replicas = v["spec"]["replicas"].as_i64().unwrap_or(1);
        if replicas < min_replicas {
            refuse.push(format!("replicas {replicas}"));
        }
        if v["spec"]["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
            refuse.push("no image".into());
        }
        let istio = &v["spec"]["istio"];
        if istio["mtls"]["mode"] == "none" && istio["dataplaneMode"] == "ambient" {
            refuse.push("mtls none with ambient".into());
        }
        for src in istio["metrics"]["allowFrom"].as_array().into_iter().flatten() {
            let empty = |k: &str| src[k].as_array().is_none_or(Vec::is_empty);
            if empty("principals") && empty("namespaces") && empty("ipBlocks") {
                refuse.push("metrics.allowFrom entry without a source".into());
            }
            if src["ipBlocks"].as_array().into_iter().flatten().any(|b| b == "10.0.0.0/40") {
                refuse.push("metrics.allowFrom ipBlock /40".into());
            }
        }
        for c in v["spec"]["customization"].as_array().into_iter().flatten() {
            let manifest = c["manifest"].as_str().unwrap_or_default();
            let mapping = serde_norway::from_str::<Value>(manifest).is_ok_and(|m| m.is_object());
            if !mapping {
                refuse.push(format!("customization manifest {manifest:?}"));
            }
            if c["match"]["groupVersionKinds"].as_array().is_none_or(Vec::is_empty) {
                refuse.push("customization without groupVersionKinds".into());
            }
            if let Some(n) = c["match"]["name"].as_str().filter(|n| !n.is_empty() && regex::Regex::new(n).is_err()) {
                refuse.push(format!("customization regex {n:?}"));
            }
        }
        Must { refuse }
    }

    fn check(self, result: &Result<Vec<Object>, Invalid>) -> Result<(), TestCaseError> {
        if !self.refuse.is_empty() {
            prop_assert!(result.is_err(), "built although validation must refuse: {:?}", self.refuse);
        }
        Ok(())
    }
}

/// CASES per property from a fixed seed, so that CI is reproducible;
/// PROPTEST_CASES and PROPTEST_RNG_SEED (a number) override them for a
/// deeper or different run.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(CASES);
    let seed = std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn zookeeper_specs(input in zookeeper()) {
        let (value, coordinator) = prepare(&input);
        let zk: ZooKeeperCluster = typed(&value);
        let ctx = context(&zk, coordinator, |i| i.zookeepers.push(zk.clone()));
        let result = magnetar_desired::build_zookeeper(&zk, &ctx);
        Must::new(&value, 1).check(&result)?;
        refused(&result)?;
        deterministic(&result, magnetar_desired::build_zookeeper(&zk, &ctx))?;
        if let Ok(objects) = &result {
            check_output(&zk, "zookeeper", &zk.name_any(), objects)?;
        }
    }

    #[test]
    fn bookkeeper_specs(input in bookkeeper()) {
        let (value, coordinator) = prepare(&input);
        let bk: BookKeeperCluster = typed(&value);
        let ctx = context(&bk, coordinator, |i| i.bookkeepers.push(bk.clone()));
        let result = magnetar_desired::build_bookkeeper(&bk, &ctx);
        Must::new(&value, 1).check(&result)?;
        refused(&result)?;
        deterministic(&result, magnetar_desired::build_bookkeeper(&bk, &ctx))?;
        if let Ok(objects) = &result {
            check_output(&bk, "bookkeeper", &bk.name_any(), objects)?;
        }
    }

    #[test]
    fn broker_specs(input in broker()) {
        let (value, coordinator) = prepare(&input);
        let b: PulsarBroker = typed(&value);
        let ctx = context(&b, coordinator, |i| i.brokers.push(b.clone()));
        let result = magnetar_desired::build_broker(&b, &ctx);
        let mut must = Must::new(&value, 1);
        let config = &value["spec"]["config"];
        if !value["spec"]["istio"]["gateway"].is_null() && config["advertisedDomain"].as_str().is_none_or(str::is_empty) {
            must.refuse.push("gateway without advertisedDomain".into());
        }
        if let Some(d) = config["advertisedDomain"].as_str() {
            let pattern = regex::Regex::new(magnetar_api::broker::DOMAIN_PATTERN).unwrap();
            if d.len() > 200 || !pattern.is_match(d) {
                must.refuse.push(format!("advertisedDomain {d:?}"));
            }
        }
        must.check(&result)?;
        refused(&result)?;
        deterministic(&result, magnetar_desired::build_broker(&b, &ctx))?;
        if let Ok(objects) = &result {
            check_output(&b, "pulsar-broker", &b.name_any(), objects)?;
        }
    }

    #[test]
    fn proxy_specs(input in proxy()) {
        let (value, coordinator) = prepare(&input);
        let p: PulsarProxy = typed(&value);
        let ctx = context(&p, coordinator, |i| i.proxies.push(p.clone()));
        let result = magnetar_desired::build_proxy(&p, &ctx);
        let mut must = Must::new(&value, 0);
        if value["spec"]["brokerAddress"].as_str().is_none_or(|a| a.trim().is_empty()) {
            must.refuse.push("empty brokerAddress".into());
        }
        must.check(&result)?;
        refused(&result)?;
        deterministic(&result, magnetar_desired::build_proxy(&p, &ctx))?;
        if let Ok(objects) = &result {
            check_output(&p, "pulsar-proxy", &p.name_any(), objects)?;
        }
    }

    #[test]
    fn coordinator_specs(
        name in cr_name(),
        ns in namespace(),
        uid in uid(),
        spec in coordinator_spec(),
        brokers in proptest::collection::vec(broker(), 0..=2),
    ) {
        let mut metadata = json!({"name": name, "namespace": ns});
        if let Some(u) = uid {
            metadata["uid"] = json!(u);
        }
        let c: PulsarCoordinator = typed(&json!({
            "apiVersion": "k8s.streamnative.io/v1alpha1", "kind": "PulsarCoordinator", "metadata": metadata, "spec": spec,
        }));
        let brokers: Vec<PulsarBroker> = brokers
            .iter()
            .map(|b| {
                let mut v = b.value.clone();
                v["metadata"]["namespace"] = json!(ns);
                v["metadata"]["labels"] = json!({COORDINATOR_LABEL: c.name_any()});
                propagate::apply(&c.spec, &mut v);
                typed(&v)
            })
            .collect();
        let refs: Vec<&PulsarBroker> = brokers.iter().collect();
        let ctx = context(&c, None, |i| {
            i.coordinators.push(c.clone());
            i.brokers.extend(brokers.iter().cloned());
        });
        let result = magnetar_desired::build_coordinator(&c, &refs, &ctx);
        let mut must = Must { refuse: Vec::new() };
        if name.len() > 42 || !support::dns1123_label(&name) {
            must.refuse.push(format!("name {name:?}"));
        }
        let istio = &c.spec.istio;
        if istio.as_ref().is_some_and(|i| {
            i.mtls.as_ref().and_then(|m| m.mode) == Some(magnetar_api::istio::MtlsMode::None)
                && i.dataplane_mode == Some(magnetar_api::istio::DataplaneMode::Ambient)
        }) {
            must.refuse.push("mtls none with ambient".into());
        }
        if c.spec.tool_set.as_ref().and_then(|t| t.replicas).is_some_and(|r| r < 0) {
            must.refuse.push("toolSet.replicas < 0".into());
        }
        must.check(&result)?;
        refused(&result)?;
        deterministic(&result, magnetar_desired::build_coordinator(&c, &refs, &ctx))?;
        if let Ok(objects) = &result {
            check_output(&c, "pulsar-toolset", &c.name_any(), objects)?;
        }
    }
}

/// The generators reach both outcomes: some specs build, some are refused
/// (otherwise the properties above would hold vacuously).
#[test]
fn generators_reach_valid_and_invalid_specs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut built, mut refused) = (0, 0);
    for _ in 0..200 {
        let input = broker().new_tree(&mut runner).unwrap().current();
        let (value, coordinator) = prepare(&input);
        let b: PulsarBroker = typed(&value);
        let ctx = context(&b, coordinator, |i| i.brokers.push(b.clone()));
        match magnetar_desired::build_broker(&b, &ctx) {
            Ok(_) => built += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(built >= 20, "only {built} of 200 generated brokers built: the generator is too hostile");
    assert!(refused >= 20, "only {refused} of 200 generated brokers were refused: the generator is too tame");
}
