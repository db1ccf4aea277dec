//! Every object `render` produces from the compat manifests and the examples
//! is valid against the real schemas the API server would use: Istio's CRDs
//! (istio.io/api at 1.24.2 and 1.32.0), the Gateway API's standard channel
//! (sigs.k8s.io/gateway-api v1.6.3) and Kubernetes' OpenAPI v3 (1.36.3),
//! with strict field validation — and the validator itself refuses what the
//! API server refuses.

mod support;

use serde_json::{Value, json};
use support::Schemas;

fn gateway() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "pulsar", "labels": {"a": "b"}},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [{
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": ["pulsar.example.com"],
                "tls": {"mode": "SIMPLE", "credentialName": "tls"}
            }]
        }
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": "pulsar"},
        "spec": {
            "selector": {"app": "x"},
            "ports": [
                {"name": "tcp-pulsar", "port": 6650, "targetPort": 6650, "appProtocol": "tcp"},
                {"name": "http-web", "port": 8080, "targetPort": "http-web", "appProtocol": "http"}
            ]
        }
    })
}

fn statefulset() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "sts", "namespace": "pulsar"},
        "spec": {
            "serviceName": "sts",
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "main", "image": "busybox", "ports": [{"name": "tcp", "containerPort": 1}]}]}
            }
        }
    })
}

fn authorization_policy() -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "ap", "namespace": "pulsar"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/pulsar/sa/x"]}}], "to": [{"operation": {"ports": ["6650"]}}]}]
        }
    })
}

/// Applies `edit` to a copy of `base` and returns the schema errors.
fn errors_after(base: &Value, edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut v = base.clone();
    edit(&mut v);
    Schemas::get().errors(&v)
}

#[track_caller]
fn assert_rejected(base: &Value, what: &str, expect: &str, edit: impl FnOnce(&mut Value)) {
    let errors = errors_after(base, edit);
    assert!(!errors.is_empty(), "{what}: the validator accepted it");
    assert!(
        errors.iter().any(|e| e.contains(expect)),
        "{what}: expected an error mentioning {expect:?}, got {errors:#?}"
    );
    let sets = Schemas::sets_for(base["apiVersion"].as_str().unwrap()).len();
    assert!(errors.len() >= sets, "{what}: every schema set ({sets}) must refuse it, got {errors:#?}");
}

#[test]
fn validator_accepts_well_formed_objects() {
    for v in [gateway(), service(), statefulset(), authorization_policy(), tls_route()] {
        let errors = Schemas::get().errors(&v);
        assert!(errors.is_empty(), "{} must be valid: {errors:#?}", v["kind"]);
    }
}

#[test]
fn validator_refuses_unknown_fields() {
    let gw = gateway();
    assert_rejected(&gw, "Gateway spec.bogus", "bogus", |v| v["spec"]["bogus"] = json!(1));
    assert_rejected(&gw, "Gateway servers[0].bogus", "bogus", |v| v["spec"]["servers"][0]["bogus"] = json!("x"));
    assert_rejected(&gw, "Gateway servers[0].tls.bogus", "bogus", |v| {
        v["spec"]["servers"][0]["tls"]["bogus"] = json!(true)
    });
    assert_rejected(&gw, "Gateway top-level bogus", "bogus", |v| v["bogus"] = json!({}));
    assert_rejected(&gw, "Gateway metadata.bogus", "bogus", |v| v["metadata"]["bogus"] = json!("x"));
    let svc = service();
    assert_rejected(&svc, "Service spec.bogus", "bogus", |v| v["spec"]["bogus"] = json!(1));
    assert_rejected(&svc, "Service ports[0].bogus", "bogus", |v| v["spec"]["ports"][0]["bogus"] = json!(1));
    assert_rejected(&svc, "Service metadata.bogus", "bogus", |v| v["metadata"]["bogus"] = json!(1));
    let sts = statefulset();
    assert_rejected(&sts, "StatefulSet container bogus", "bogus", |v| {
        v["spec"]["template"]["spec"]["containers"][0]["bogus"] = json!(1)
    });
    let ap = authorization_policy();
    assert_rejected(&ap, "AuthorizationPolicy rule bogus", "bogus", |v| v["spec"]["rules"][0]["bogus"] = json!(1));
    let route = tls_route();
    assert_rejected(&route, "TLSRoute rule bogus", "bogus", |v| v["spec"]["rules"][0]["bogus"] = json!(1));
    assert_rejected(&route, "TLSRoute backend without a name", "name", |v| {
        v["spec"]["rules"][0]["backendRefs"][0].as_object_mut().unwrap().remove("name");
    });
}

fn tls_route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "TLSRoute",
        "metadata": {"name": "r", "namespace": "pulsar"},
        "spec": {
            "parentRefs": [{"name": "gw", "sectionName": "tls-6651"}],
            "hostnames": ["pb0-pulsar.example.com"],
            "rules": [{"backendRefs": [{"name": "pc-broker-0", "port": 6651}]}]
        }
    })
}

#[test]
fn validator_refuses_wrong_types_enums_required_and_duplicates() {
    let svc = service();
    assert_rejected(&svc, "Service port as string", "6650x", |v| v["spec"]["ports"][0]["port"] = json!("6650x"));
    assert_rejected(&svc, "Service missing port", "port", |v| {
        v["spec"]["ports"][0].as_object_mut().unwrap().remove("port");
    });
    assert_rejected(&svc, "Service bad type enum", "Bogus", |v| v["spec"]["type"] = json!("Bogus"));
    assert_rejected(&svc, "Service bad protocol enum", "QUIC", |v| v["spec"]["ports"][0]["protocol"] = json!("QUIC"));
    assert_rejected(&svc, "Service duplicate port", "duplicate", |v| v["spec"]["ports"][1]["port"] = json!(6650));
    let gw = gateway();
    assert_rejected(&gw, "Gateway bad tls mode", "BOGUS", |v| v["spec"]["servers"][0]["tls"]["mode"] = json!("BOGUS"));
    assert_rejected(&gw, "Gateway port number as object", "number", |v| {
        v["spec"]["servers"][0]["port"]["number"] = json!({"n": 1})
    });
    assert_rejected(&gw, "Gateway missing hosts", "hosts", |v| {
        v["spec"]["servers"][0].as_object_mut().unwrap().remove("hosts");
    });
    let ap = authorization_policy();
    assert_rejected(&ap, "AuthorizationPolicy bad action", "PERMIT", |v| v["spec"]["action"] = json!("PERMIT"));
    assert_rejected(&gw, "Gateway at an unserved version", "serves no Gateway", |v| {
        v["apiVersion"] = json!("networking.istio.io/v9")
    });
    assert_rejected(&svc, "unknown Kubernetes kind", "no kind", |v| v["kind"] = json!("Servicey"));
}

#[test]
fn both_istio_versions_are_checked() {
    let errors = errors_after(&gateway(), |v| v["spec"]["bogus"] = json!(1));
    for version in support::schemas::ISTIO_VERSIONS {
        assert!(
            errors.iter().any(|e| e.contains(&format!("Istio {version}"))),
            "no error from Istio {version}: {errors:#?}"
        );
    }
}

fn check_manifests(files: Vec<(String, String)>) -> usize {
    let mut failures = Vec::new();
    let mut total = 0;
    let pending = support::refused_compat();
    for (source, text) in &files {
        let result = magnetar_desired::render::render(&[(source.clone(), text.clone())]);
        if let Some((_, field)) = pending.iter().find(|(f, _)| source.ends_with(f.as_str())) {
            // Not implemented yet (issue 11): still refused, naming the field.
            match &result {
                Err(e) if e.to_string().contains(field.as_str()) => {}
                Err(e) => failures.push(format!("{source}: refused, but not for {field}:\n{e}")),
                Ok(_) => failures.push(format!("{source}: renders now: remove it from testdata/compat-refused.txt")),
            }
            continue;
        }
        let rendered = match result {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{source}: does not render:\n{e}"));
                continue;
            }
        };
        total += rendered.objects.len();
        for e in support::all_errors(&rendered.objects, true) {
            failures.push(format!("{source}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
    total
}

#[test]
fn every_compat_manifest_renders_schema_valid_objects() {
    let total = check_manifests(support::compat_manifests());
    assert!(total > 0, "the compat manifests rendered no object at all");
}

#[test]
fn every_example_renders_schema_valid_objects() {
    let total = check_manifests(support::example_manifests());
    assert!(total > 0, "the examples rendered no object at all");
}

fn object(v: Value) -> magnetar_desired::Object {
    magnetar_desired::Object::from_value(v)
}

fn labelled(mut v: Value) -> Value {
    v["metadata"]["labels"] = json!({
        "app.kubernetes.io/name": "pulsar-broker",
        "app.kubernetes.io/instance": "x",
        "app.kubernetes.io/component": "broker",
        "app.kubernetes.io/managed-by": "magnetar",
        "app": "x",
    });
    v
}

/// The checks beyond the schema find what they are meant to find.
#[test]
fn invariant_checks_catch_mistakes() {
    let svc = labelled(service());
    let mut sts = labelled(statefulset());
    sts["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"name": "http-web", "containerPort": 8080}]);
    sts["spec"]["serviceName"] = json!("svc");
    sts["spec"]["template"]["metadata"]["labels"] = sts["metadata"]["labels"].clone();
    let good = vec![object(svc.clone()), object(sts.clone())];
    assert_eq!(support::all_errors(&good, true), Vec::<String>::new());

    let expect = |objects: Vec<Value>, needle: &str| {
        let objects: Vec<_> = objects.into_iter().map(object).collect();
        let errors = support::all_errors(&objects, true);
        assert!(errors.iter().any(|e| e.contains(needle)), "expected {needle:?} in {errors:#?}");
    };
    let mut v = svc.clone();
    v["metadata"]["labels"].as_object_mut().unwrap().remove("app.kubernetes.io/managed-by");
    expect(vec![v, sts.clone()], "missing label app.kubernetes.io/managed-by");
    let mut v = svc.clone();
    v["spec"]["ports"][0]["name"] = json!("pulsar");
    expect(vec![v, sts.clone()], "tcp-/tls-/http-/https- prefix");
    let mut v = svc.clone();
    v["spec"]["ports"][0]["name"] = json!("tcp-much-too-long-name");
    expect(vec![v, sts.clone()], "at most 15 chars");
    let mut v = svc.clone();
    v["spec"]["ports"][1]["targetPort"] = json!("http-admin");
    expect(vec![v, sts.clone()], "no container port name");
    let mut v = svc.clone();
    v["spec"]["selector"] =
        json!({"app": "y", "app.kubernetes.io/name": "pulsar-broker", "app.kubernetes.io/instance": "x"});
    expect(vec![v, sts.clone()], "selects no generated workload");
    let mut v = sts.clone();
    v["spec"]["selector"]["matchLabels"] = json!({"app": "other"});
    expect(vec![svc.clone(), v], "does not match the pod template");
    let mut v = sts.clone();
    v["metadata"]["name"] = json!("s".repeat(53));
    expect(vec![svc.clone(), v], "not valid for a StatefulSet");
    let mut v = sts.clone();
    v["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    expect(vec![svc.clone(), v], "does not declare");
    let mut v = svc.clone();
    v["metadata"]["labels"]["bad key!"] = json!("v");
    expect(vec![v, sts.clone()], "label key");
    expect(vec![svc.clone(), sts.clone(), svc.clone()], "generated twice");
}
