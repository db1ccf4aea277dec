//! What a pod sees of the cluster: its `/etc/hosts` (the DNS the cluster
//! would answer), its environment, and `$(VAR)` references. Pure functions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};

/// The hosts file for the pods of `ns`: every running pod by its DNS name
/// (`<hostname>.<subdomain>.<ns>.svc.<domain>`, with the shorter forms the
/// search path resolves inside `ns`), and every Service that selects running
/// pods by `<svc>.<ns>.svc.<domain>`, one line per pod address (no
/// kube-proxy: a Service name resolves straight to its pods).
pub fn hosts_file(ns: &str, running: &[&Pod], services: &[Service], domain: &str) -> String {
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |ip: &str, names: Vec<String>| lines.entry(ip.to_string()).or_default().extend(names);
    for p in running {
        let (Some(ip), Some(pod_ns)) = (pod_ip(p), p.metadata.namespace.as_deref()) else { continue };
        let spec = p.spec.as_ref();
        let hostname = spec.and_then(|s| s.hostname.clone()).or_else(|| p.metadata.name.clone()).unwrap_or_default();
        let mut names = Vec::new();
        if let Some(sub) = spec.and_then(|s| s.subdomain.as_deref()) {
            names.push(format!("{hostname}.{sub}.{pod_ns}.svc.{domain}"));
            if pod_ns == ns {
                names.push(format!("{hostname}.{sub}.{pod_ns}.svc"));
                names.push(format!("{hostname}.{sub}.{pod_ns}"));
                names.push(format!("{hostname}.{sub}"));
            }
        }
        if pod_ns == ns {
            // A pod's own hostname resolves to its address (the kubelet's
            // hosts file does the same).
            names.push(hostname);
        }
        add(ip, names);
    }
    for svc in services {
        let (Some(name), Some(svc_ns)) = (svc.metadata.name.as_deref(), svc.metadata.namespace.as_deref()) else {
            continue;
        };
        let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()).filter(|s| !s.is_empty()) else {
            continue;
        };
        for p in running {
            if p.metadata.namespace.as_deref() != Some(svc_ns) || !selects(selector, p) {
                continue;
            }
            let Some(ip) = pod_ip(p) else { continue };
            let mut names = vec![format!("{name}.{svc_ns}.svc.{domain}"), format!("{name}.{svc_ns}.svc")];
            if svc_ns == ns {
                names.push(format!("{name}.{svc_ns}"));
                names.push(name.to_string());
            }
            add(ip, names);
        }
    }
    let mut out = String::from("# Written by magnetar-testenv's real node: the cluster's DNS, for these pods.\n");
    out.push_str("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n");
    for (ip, mut names) in lines {
        names.dedup();
        let mut unique = std::collections::BTreeSet::new();
        names.retain(|n| unique.insert(n.clone()));
        if !names.is_empty() {
            out.push_str(&format!("{ip} {}\n", names.join(" ")));
        }
    }
    out
}

fn pod_ip(p: &Pod) -> Option<&str> {
    p.status.as_ref()?.pod_ip.as_deref()
}

fn selects(selector: &BTreeMap<String, String>, p: &Pod) -> bool {
    let labels = p.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Expands `$(NAME)` references to earlier variables, as the kubelet does
/// for env values, command and args: `$$` escapes, unknown names stay.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(v) = vars.get(&inner[..end])
        {
            out.push_str(v);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, ip: &str, sub: Option<&str>, app: &str) -> Pod {
        let mut spec = json!({"containers": [], "hostname": name});
        if let Some(s) = sub {
            spec["subdomain"] = json!(s);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
            "spec": spec,
            "status": {"podIP": ip},
        }))
        .unwrap()
    }

    #[test]
    fn hosts_name_pods_and_services_with_the_search_path_of_their_namespace() {
        let a = pod("ns1", "zk-0", "127.245.0.2", Some("zk-headless"), "zk");
        let b = pod("ns2", "web-0", "127.245.0.3", None, "web");
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "zk", "namespace": "ns1"}, "spec": {"selector": {"app": "zk"}}
        }))
        .unwrap();
        let text = hosts_file("ns1", &[&a, &b], std::slice::from_ref(&svc), "cluster.local");
        assert!(text.contains(
            "127.245.0.2 zk-0.zk-headless.ns1.svc.cluster.local zk-0.zk-headless.ns1.svc zk-0.zk-headless.ns1 zk-0.zk-headless zk-0 zk.ns1.svc.cluster.local zk.ns1.svc zk.ns1 zk\n"
        ), "{text}");
        // Another namespace's pod without a subdomain has no DNS name here.
        assert!(!text.contains("127.245.0.3"), "{text}");
        let other = hosts_file("ns2", &[&a, &b], &[svc], "cluster.local");
        assert!(
            other.contains("127.245.0.2 zk-0.zk-headless.ns1.svc.cluster.local zk.ns1.svc.cluster.local zk.ns1.svc\n"),
            "{other}"
        );
        assert!(other.contains("127.245.0.3 web-0\n"), "{other}");
    }

    #[test]
    fn expands_references_like_the_kubelet() {
        let vars = BTreeMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(B) $A $", &vars), "$(B) $A $");
    }
}
