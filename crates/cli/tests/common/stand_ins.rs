//! What a cluster holds beside magnetar's objects, for tools that judge a
//! render offline (Istio's analyzers, istiod's configuration generator):
//! the namespaces, the pods the controllers would create (with the sidecar
//! the injector adds, or the ambient annotation istio-cni sets), the
//! ingress gateway's pod, Service and ServiceAccount, and a TLS Secret for
//! every `credentialName`; for a Gateway API `Gateway`, what istiod's
//! gateway deployment controller creates (the `<name>-istio` pod, Service
//! and ServiceAccount) and a TLS Secret with a real key pair for every
//! `certificateRefs` (istiod converts a terminating listener only when its
//! certificate and key parse). `crates/cli/tests/istio_analyze.rs`
//! describes each in its module comment.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

pub const GATEWAY_NAMESPACE: &str = "istio-system";
pub const PROXY_IMAGE: &str = "docker.io/istio/proxyv2:1.24.2";
pub const GATEWAY_SERVICE_ACCOUNT: &str = "istio-ingressgateway-service-account";

pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn labels_match(selector: &serde_json::Map<String, Value>, labels: &Value) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pods a StatefulSet or Deployment controller would create.
fn workload_pods(workload: &Value) -> Vec<Value> {
    let ns = str_at(workload, "/metadata/namespace");
    let name = str_at(workload, "/metadata/name");
    let template = &workload["spec"]["template"];
    let containers: Vec<Value> = template["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let mut out = json!({"name": c["name"], "image": c["image"]});
            if c["ports"].is_array() {
                out["ports"] = c["ports"].clone();
            }
            out
        })
        .collect();
    let replicas = match workload["kind"].as_str() {
        Some("StatefulSet") => workload["spec"]["replicas"].as_i64().unwrap_or(1).max(1),
        _ => 1,
    };
    (0..replicas)
        .map(|ordinal| {
            let pod_name = format!("{name}-{ordinal}");
            let mut labels = template["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            if workload["kind"] == "StatefulSet" {
                labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
                labels["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
            }
            let mut annotations = template["metadata"]["annotations"].clone();
            if !annotations.is_object() {
                annotations = json!({});
            }
            let mut containers = containers.clone();
            let label = |k: &str| labels.get(k).and_then(Value::as_str);
            let injected = label("sidecar.istio.io/inject") != Some("false")
                && (label("sidecar.istio.io/inject") == Some("true") || label("istio.io/rev").is_some());
            if injected {
                containers.push(json!({"name": "istio-proxy", "image": PROXY_IMAGE}));
            }
            if label("istio.io/dataplane-mode") == Some("ambient") {
                annotations["ambient.istio.io/redirection"] = json!("enabled");
            }
            let metadata = json!({"name": pod_name, "namespace": ns, "labels": labels, "annotations": annotations});
            let mut spec = json!({"containers": containers});
            if let Some(sa) = template["spec"]["serviceAccountName"].as_str() {
                spec["serviceAccountName"] = json!(sa);
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
        })
        .collect()
}

/// Base64 (standard alphabet, padded) for Secret data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn is_istio_gateway(o: &Value) -> bool {
    o["kind"] == "Gateway" && str_at(o, "/apiVersion").starts_with("networking.istio.io/")
}

fn is_gateway_api_gateway(o: &Value) -> bool {
    o["kind"] == "Gateway" && str_at(o, "/apiVersion").starts_with("gateway.networking.k8s.io/")
}

/// The label istiod's deployment controller puts on a Gateway API
/// gateway's pods (and selects them by).
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// The pod istiod's deployment controller runs for a Gateway API Gateway
/// (`namespace/name`), if the render has one.
pub fn gateway_api_pod(rendered: &[Value]) -> Option<String> {
    let gw = rendered.iter().find(|o| is_gateway_api_gateway(o))?;
    Some(format!("{}/{}-istio-0", str_at(gw, "/metadata/namespace"), str_at(gw, "/metadata/name")))
}

/// For each Gateway API Gateway: the `<name>-istio` pod, Service (each
/// listener's port, to the same port) and ServiceAccount istiod creates for
/// it, and its certificates.
fn gateway_api_stand_ins(rendered: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut secrets = BTreeSet::new();
    for gw in rendered.iter().filter(|o| is_gateway_api_gateway(o)) {
        let ns = str_at(gw, "/metadata/namespace");
        let name = format!("{}-istio", str_at(gw, "/metadata/name"));
        let labels = json!({GATEWAY_NAME_LABEL: str_at(gw, "/metadata/name")});
        let mut ports = BTreeSet::new();
        for l in gw["spec"]["listeners"].as_array().into_iter().flatten() {
            if let Some(p) = l["port"].as_u64() {
                ports.insert(p);
            }
            for r in l["tls"]["certificateRefs"].as_array().into_iter().flatten() {
                let secret_ns = r["namespace"].as_str().unwrap_or(ns);
                secrets.insert((secret_ns.to_string(), str_at(r, "/name").to_string()));
            }
        }
        out.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-0"), "namespace": ns, "labels": labels},
            "spec": {"serviceAccountName": name, "containers": [{"name": "istio-proxy", "image": PROXY_IMAGE}]}
        }));
        let service_ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({"name": format!("p-{p}"), "port": p, "targetPort": p, "protocol": "TCP"}))
            .collect();
        out.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"type": "LoadBalancer", "selector": labels, "ports": service_ports}
        }));
        out.push(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}));
    }
    for (ns, name) in secrets {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["stand-in.example.com".to_string()]).unwrap().self_signed(&key).unwrap();
        out.push(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": base64(cert.pem().as_bytes()), "tls.key": base64(key.serialize_pem().as_bytes())}
        }));
    }
    out
}

/// What a cluster holds before magnetar's objects: see the module comment.
pub fn stand_ins(rendered: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut namespaces: BTreeSet<String> = BTreeSet::from([GATEWAY_NAMESPACE.to_string()]);
    for obj in rendered {
        let ns = str_at(obj, "/metadata/namespace");
        if !ns.is_empty() {
            namespaces.insert(ns.to_string());
        }
    }
    for ns in &namespaces {
        out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    for obj in rendered {
        if matches!(obj["kind"].as_str(), Some("StatefulSet" | "Deployment")) {
            out.extend(workload_pods(obj));
        }
    }

    // The ingress gateway(s), by name: pod labels, ports its Gateways use.
    let default_labels = json!({
        "app": "istio-ingressgateway",
        "istio": "ingressgateway",
        "cloud.streamnative.io/role": "istio-ingressgateway",
    });
    let mut gateways: BTreeMap<String, (Value, BTreeSet<u64>)> = BTreeMap::new();
    gateways.insert("istio-ingressgateway".into(), (default_labels.clone(), BTreeSet::new()));
    let mut credentials = BTreeSet::new();
    for gw in rendered.iter().filter(|o| is_istio_gateway(o)) {
        let selector = gw["spec"]["selector"].as_object().cloned().unwrap_or_default();
        let name = if labels_match(&selector, &default_labels) {
            "istio-ingressgateway".to_string()
        } else {
            let values: Vec<&str> = selector.values().filter_map(Value::as_str).collect();
            values.join("-")
        };
        let entry = gateways.entry(name).or_insert_with(|| (Value::Object(selector.clone()), BTreeSet::new()));
        for server in gw["spec"]["servers"].as_array().into_iter().flatten() {
            if let Some(port) = server["port"]["number"].as_u64() {
                entry.1.insert(port);
            }
            if let Some(cn) = server["tls"]["credentialName"].as_str() {
                credentials.insert(cn.to_string());
            }
        }
    }
    for (name, (labels, ports)) in &gateways {
        out.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-0"), "namespace": GATEWAY_NAMESPACE, "labels": labels},
            "spec": {
                "serviceAccountName": GATEWAY_SERVICE_ACCOUNT,
                "containers": [{"name": "istio-proxy", "image": PROXY_IMAGE}]
            }
        }));
        // Istio's gateway chart, plus each port a Gateway listens on.
        let mut service_ports = vec![
            json!({"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}),
            json!({"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"}),
            json!({"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}),
        ];
        for p in ports.iter().filter(|p| ![80, 443, 15021].contains(*p)) {
            service_ports.push(json!({"name": format!("tls-{p}"), "port": p, "targetPort": p, "protocol": "TCP"}));
        }
        let mut selector = labels.clone();
        if let Some(m) = selector.as_object_mut() {
            m.remove("cloud.streamnative.io/role");
        }
        out.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
            "spec": {"type": "LoadBalancer", "selector": selector, "ports": service_ports}
        }));
    }
    out.push(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": GATEWAY_SERVICE_ACCOUNT, "namespace": GATEWAY_NAMESPACE}
    }));
    out.extend(gateway_api_stand_ins(rendered));
    let cert = include_bytes!("../istio/stand-in-tls.crt");
    for cn in credentials {
        out.push(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": cn, "namespace": GATEWAY_NAMESPACE},
            "data": {"tls.crt": base64(cert), "tls.key": base64(b"stand-in: the analyzer reads only the certificate")}
        }));
    }
    out
}
