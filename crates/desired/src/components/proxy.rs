//! Workload objects of a PulsarProxy (SPEC 3.1): StatefulSet `<n>-proxy`,
//! Service `<n>-proxy`, ConfigMap (proxy.conf entries), PDB and
//! ServiceAccount. `replicas: 0` keeps every object but runs no pod.
//!
//! Ports come from [`crate::listeners::ProxyListeners::ports`], the table the gateway routes
//! and the AuthorizationPolicy read: 6650 and 8080, plus 6651 and 8443 when
//! the proxy serves TLS itself (its own certificate, `config.tls`, or the
//! gateway's when the gateway passes TLS through).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Volume, VolumeMount};
use magnetar_api::common::PodSpec;
use magnetar_api::istio::GatewaySpec;
use magnetar_api::proxy::PulsarProxySpec;

use super::objects::{self, ServiceKind};
use super::workload::{self, PodParts, Probes};
use super::{config_files, monitoring, pulsar_auth};
use crate::mesh::Enrolment;
use crate::names::Component;
use crate::paths::{self, GATEWAY_TLS_DIR, PROXY_TLS_DIR};
use crate::ports::*;
use crate::validate::ValidProxy;
use crate::{BuildContext, Object, Owner};

const C: Component = Component::Proxy;
/// Key of the generated proxy.conf entries in the ConfigMap.
pub const PROXY_CONF: &str = "proxy.conf";

pub fn build(valid: &ValidProxy, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let spec = &valid.resource.spec;
    let default_pod = PodSpec::default();
    let pod_spec =
        monitoring::annotate(spec.pod.as_ref().unwrap_or(&default_pod), spec.monitoring.as_ref(), monitoring::PULSAR);
    let pod_spec = pod_spec.as_ref();
    let no_custom = BTreeMap::new();
    let custom = spec.config.as_ref().map_or(&no_custom, |c| &c.custom);
    let (custom_conf, mut env) = config_files::split_custom(custom);
    let (host, pulsar_port) = broker_address(&spec.broker_address, &owner.namespace, &ctx.cluster_domain);
    let mut entries: BTreeMap<String, String> = BTreeMap::from([
        ("brokerServiceURL".to_string(), format!("pulsar://{host}:{pulsar_port}")),
        ("brokerWebServiceURL".to_string(), format!("http://{host}:{HTTP}")),
        ("servicePort".to_string(), PULSAR.to_string()),
        ("statusFilePath".to_string(), paths::STATUS_FILE.to_string()),
        ("webServicePort".to_string(), HTTP.to_string()),
    ]);
    if let Some(ws) = spec.web_socket_service_enabled {
        entries.insert("webSocketServiceEnabled".into(), ws.to_string());
    }
    if let Some(store) = spec.configuration_store_servers.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let url = config_files::metadata_store_url(store);
        entries.insert("metadataStoreUrl".into(), url.clone());
        entries.insert("configurationMetadataStoreUrl".into(), url);
    }
    if valid.listeners.kafka {
        entries.extend(kafka_entries(spec, owner, ctx));
    }
    let config = spec.config.as_ref();
    if let Some(cluster) = config.and_then(|c| c.cluster_name.as_deref()).filter(|c| !c.is_empty()) {
        entries.insert("clusterName".into(), cluster.to_string());
    }
    let pod_ip = config.and_then(|c| c.use_pod_ip_as_advertised_address) == Some(true);
    if pod_ip {
        // Written into proxy.conf by the image's apply-config-from-env.py;
        // listed before the user's config.custom variables, which win.
        let advertised = config_files::env_var(
            &format!("{}advertisedAddress", config_files::PULSAR_PREFIX),
            &format!("$({})", workload::POD_IP_ENV),
        );
        env.splice(0..0, [workload::pod_ip_env(), advertised]);
    }
    let auth = pulsar_auth::of(
        config.and_then(|c| c.authentication.as_ref()),
        config
            .and_then(|c| c.authorization.as_ref())
            .map(|a| pulsar_auth::Roles { super_users: a.super_user_roles.as_deref(), proxies: None }),
        config.and_then(|c| c.client_auth.as_ref()),
    );
    entries.extend(auth.entries);
    let passthrough = valid.listeners.passthrough();
    let cert = certificate(valid, passthrough);
    if valid.listeners.serves_tls() {
        entries.extend(tls_entries(cert.as_ref()));
    }
    // The user's entries win, e.g. their own certificate paths.
    entries.extend(custom_conf);
    let mut data =
        BTreeMap::from([(PROXY_CONF.to_string(), config_files::properties("proxy.conf of PulsarProxy", &entries))]);
    config_files::add_log_config(spec.log_config.as_ref(), &mut data, &mut env);
    let (mut volumes, mut mounts) = cert.map(Certificate::mount).unwrap_or_default();
    volumes.extend(auth.volumes);
    mounts.extend(auth.mounts);
    let ports = valid.listeners.ports();
    let parts = PodParts {
        owner,
        component: C,
        image: workload::image(spec.image.as_deref()),
        pull_policy: spec.image_pull_policy,
        pod: pod_spec,
        enrolment: Enrolment::of(spec.istio.as_ref()),
        script: config_files::shell(&format!(
            "{}{}exec bin/pulsar proxy\n",
            config_files::install_conf_script(PROXY_CONF),
            config_files::status_file_script(PROXY_CONF)
        )),
        env,
        ports: ports.clone(),
        config: &data,
        config_map: C.object_name(&owner.name),
        volumes,
        mounts,
        probes: Probes::same(workload::http_probe("/status.html", HTTP), 5),
    };
    let name = C.object_name(&owner.name);
    let replicas = workload::replicas(spec.replicas, spec.auto_scaling_policy.as_ref());
    let sts = workload::stateful_set(owner, C, replicas, name.clone(), parts, Vec::new(), None);
    let mut out = vec![
        Object::typed(&sts),
        objects::service(owner, name, C, &ports, ServiceKind::ClusterIp),
        objects::config_map(owner, C, data),
        objects::pdb(owner, C),
    ];
    out.extend(objects::service_account(owner, C, pod_spec));
    out.extend(spec.auto_scaling_policy.as_ref().map(|p| objects::hpa(owner, C, p)));
    let enrolment = Enrolment::of(spec.istio.as_ref());
    out.extend(monitoring::pod_monitor(owner, C, spec.monitoring.as_ref(), &enrolment, monitoring::PULSAR));
    out
}

/// The Kafka proxy extension (PIP-99 proxy extensions; KoP's is named
/// `kafka` and reads KoP's listener keys): it listens on 9092 and
/// advertises `kafkaAdvertisedListener`, or the proxies' Service.
fn kafka_entries(spec: &PulsarProxySpec, owner: &Owner, ctx: &BuildContext) -> BTreeMap<String, String> {
    let advertised = spec
        .config
        .as_ref()
        .and_then(|c| c.kop_proxy.as_ref())
        .and_then(|k| k.kafka_advertised_listener.clone())
        .unwrap_or_else(|| format!("{}:{KAFKA}", ctx.service_host(&C.object_name(&owner.name), &owner.namespace)));
    BTreeMap::from([
        ("proxyExtensions".to_string(), "kafka".to_string()),
        ("kafkaListeners".to_string(), format!("PLAINTEXT://0.0.0.0:{KAFKA}")),
        ("kafkaAdvertisedListeners".to_string(), format!("PLAINTEXT://{advertised}")),
    ])
}

/// The certificate the proxy serves on its TLS ports, and where it is
/// mounted: its own (`config.tls`), or the gateway's in PASSTHROUGH mode
/// (validation refuses both at once).
struct Certificate<'a> {
    volume: &'static str,
    dir: &'static str,
    secret: &'a str,
    trust: bool,
}

impl Certificate<'_> {
    fn mount(self) -> (Vec<Volume>, Vec<VolumeMount>) {
        (vec![workload::secret_volume(self.volume, self.secret)], vec![workload::mount(self.volume, self.dir, true)])
    }
}

fn certificate<'a>(valid: &ValidProxy<'a>, passthrough: Option<&'a GatewaySpec>) -> Option<Certificate<'a>> {
    if let Some(own) = valid.listeners.own_tls {
        let secret = own.cert_secret_name?;
        return Some(Certificate { volume: "proxy-tls", dir: PROXY_TLS_DIR, secret, trust: own.trust_certs });
    }
    let gw = passthrough?;
    let trust = gw.tls.as_ref().and_then(|t| t.trust_certs_enabled).unwrap_or(false);
    Some(Certificate { volume: "gateway-tls", dir: GATEWAY_TLS_DIR, secret: gw.cert_secret_name()?, trust })
}

/// The proxy terminates TLS on 6651 and 8443, with the certificate when
/// one is named (else the user configures it through `config.custom` and
/// `pod.secretRefs`).
fn tls_entries(cert: Option<&Certificate>) -> BTreeMap<String, String> {
    let mut e = BTreeMap::from([
        ("servicePortTls".to_string(), PROXY_PULSAR_TLS.to_string()),
        ("webServicePortTls".to_string(), PROXY_HTTPS.to_string()),
    ]);
    if let Some(c) = cert {
        e.extend(config_files::server_certificate(c.dir, c.trust).into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    e
}

/// Host and Pulsar port of `brokerAddress`: a bare Service name is
/// `<name>.<ns>.svc.<cluster domain>`; a host with dots is used as given; a
/// `:port` is the Pulsar port (the web port stays 8080); a URL scheme is
/// ignored.
pub fn broker_address(address: &str, namespace: &str, cluster_domain: &str) -> (String, i32) {
    let a = address.trim();
    let a = a.split_once("://").map_or(a, |(_, rest)| rest);
    let a = a.trim_end_matches('/');
    let (host, port) = match a.rsplit_once(':') {
        Some((h, p)) => match p.parse::<i32>() {
            Ok(p) if (1..=65535).contains(&p) => (h, p),
            _ => (a, PULSAR),
        },
        None => (a, PULSAR),
    };
    let host =
        if host.contains('.') { host.to_string() } else { crate::names::service_host(host, namespace, cluster_domain) };
    (host, port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::test_util::*;

    use magnetar_api::PulsarProxy;

    fn proxy(yaml_spec: &str) -> PulsarProxy {
        resource("pc", &format!("  image: img\n  brokerAddress: pc-broker\n{yaml_spec}"))
    }

    fn objects(p: &PulsarProxy) -> Vec<Object> {
        build(&ValidProxy::unchecked(p), &Owner::of(p), &BuildContext::default())
    }

    #[test]
    fn builds_the_objects_and_points_at_the_brokers() {
        let o = objects(&proxy(""));
        for (kind, name) in [
            ("StatefulSet", "pc-proxy"),
            ("Service", "pc-proxy"),
            ("ConfigMap", "pc-proxy"),
            ("PodDisruptionBudget", "pc-proxy"),
            ("ServiceAccount", "pc-proxy"),
        ] {
            assert!(has(&o, kind, name), "{kind} {name}");
        }
        let c = config_file(&o, "pc-proxy", PROXY_CONF);
        assert!(c.contains("brokerServiceURL=pulsar://pc-broker.pulsar.svc.cluster.local:6650\n"));
        assert!(c.contains("brokerWebServiceURL=http://pc-broker.pulsar.svc.cluster.local:8080\n"));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-proxy")), [6650, 8080]);
        let names: Vec<_> = service_spec(&o, "pc-proxy").ports.into_iter().flatten().filter_map(|p| p.name).collect();
        assert_eq!(names, ["tcp-pulsar", "http-web"]);
        assert_port_names(&o);
    }

    /// Same as the broker: the proxy's `/status.html` needs statusFilePath
    /// and the file, created before `exec`.
    #[test]
    fn probes_find_the_status_file() {
        let o = objects(&proxy(""));
        let c = config_file(&o, "pc-proxy", PROXY_CONF);
        assert!(c.contains("statusFilePath=/pulsar/logs/status\n"));
        let s = script(find(&o, "StatefulSet", "pc-proxy"));
        let installed = s.find("bin/apply-config-from-env.py conf/proxy.conf").unwrap();
        let created = s.find("echo OK > \"$STATUS_FILE\"").expect("the script creates the status file");
        let started = s.find("exec bin/pulsar proxy").unwrap();
        assert!(installed < created && created < started, "{s}");
        let probe = main_container(find(&o, "StatefulSet", "pc-proxy")).readiness_probe;
        assert_eq!(probe.and_then(|p| p.http_get).and_then(|h| h.path).as_deref(), Some("/status.html"));
    }

    #[test]
    fn auto_scaling_policy_builds_an_hpa_for_the_proxies() {
        let o = objects(&proxy("  autoScalingPolicy: {minReplicas: 1, maxReplicas: 4}\n"));
        let hpa = hpa_spec(&o, "pc-proxy");
        assert_eq!((hpa.scale_target_ref.name.as_str(), hpa.max_replicas), ("pc-proxy", 4));
        assert_eq!(sts_spec(&o, "pc-proxy").replicas, None);
        let err = crate::validate::proxy(&proxy("  autoScalingPolicy: {minReplicas: 0, maxReplicas: 2}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("spec.autoScalingPolicy.minReplicas: must be at least 1"), "{err}");
    }

    /// `usePodIPAsAdvertisedAddress` on proxies: proxy.conf's
    /// advertisedAddress is the pod's IP, set through the image's
    /// PULSAR_PREFIX_ variables after POD_IP (Kubernetes expands `$(POD_IP)`
    /// only from a variable listed before it).
    #[test]
    fn pod_ip_is_the_advertised_address_when_asked() {
        let o = objects(&proxy("  config: {usePodIPAsAdvertisedAddress: true}\n"));
        let env = main_container(find(&o, "StatefulSet", "pc-proxy")).env.unwrap_or_default();
        let at = |name: &str| env.iter().position(|e| e.name == name);
        let (ip, advertised) =
            (at("POD_IP").expect("POD_IP"), at("PULSAR_PREFIX_advertisedAddress").expect("advertised"));
        assert!(ip < advertised);
        assert_eq!(env[advertised].value.as_deref(), Some("$(POD_IP)"));
        let plain = objects(&proxy(""));
        let env = main_container(find(&plain, "StatefulSet", "pc-proxy")).env.unwrap_or_default();
        assert!(env.iter().all(|e| e.name != "POD_IP" && e.name != "PULSAR_PREFIX_advertisedAddress"));
    }

    #[test]
    fn cluster_name_goes_to_proxy_conf() {
        let named = config_file(&objects(&proxy("  config: {clusterName: east}\n")), "pc-proxy", PROXY_CONF);
        assert!(named.contains("clusterName=east\n"), "{named}");
        assert!(!config_file(&objects(&proxy("")), "pc-proxy", PROXY_CONF).contains("clusterName="));
    }

    #[test]
    fn zero_replicas_keeps_the_objects() {
        let o = objects(&proxy("  replicas: 0\n"));
        assert_eq!(sts_spec(&o, "pc-proxy").replicas, Some(0));
        assert!(has(&o, "Service", "pc-proxy"));
    }

    #[test]
    fn passthrough_proxy_serves_tls_itself() {
        let o = objects(&proxy(
            "  dnsNames: [proxy.example.com]\n  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: gw-tls}}}\n",
        ));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-proxy")), [6650, 8080, 6651, 8443]);
        let c = config_file(&o, "pc-proxy", PROXY_CONF);
        assert!(c.contains("servicePortTls=6651\n") && c.contains("webServicePortTls=8443\n"));
        assert!(c.contains("tlsCertificateFilePath=/etc/tls/gateway/tls.crt\n"));
        let volumes = pod_spec(&o, "StatefulSet", "pc-proxy").volumes.unwrap_or_default();
        assert_eq!(volumes[1].secret.as_ref().and_then(|s| s.secret_name.as_deref()), Some("gw-tls"));
        assert_port_names(&o);
        // SIMPLE: the gateway terminates TLS, the proxy stays plaintext.
        let o = objects(&proxy(
            "  dnsNames: [proxy.example.com]\n  istio: {enabled: true, gateway: {tls: {certSecretName: gw-tls}}}\n",
        ));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-proxy")), [6650, 8080]);
    }

    /// StreamNative's `config.tls`: the proxies serve pulsar+ssl and HTTPS
    /// with the named Secret, or `spec.certSecretName`'s; the ports join
    /// the Service (and with it the AuthorizationPolicy).
    #[test]
    fn own_tls_serves_the_secrets_certificate() {
        let o = objects(&proxy("  config: {tls: {enabled: true, certSecretName: px-tls, trustCertsEnabled: true}}\n"));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-proxy")), [6650, 8080, 6651, 8443]);
        let c = config_file(&o, "pc-proxy", PROXY_CONF);
        for line in [
            "servicePortTls=6651",
            "webServicePortTls=8443",
            "tlsCertificateFilePath=/etc/tls/proxy/tls.crt",
            "tlsKeyFilePath=/etc/tls/proxy/tls.key",
            "tlsTrustCertsFilePath=/etc/tls/proxy/ca.crt",
        ] {
            assert!(c.contains(&format!("{line}\n")), "{line} missing from\n{c}");
        }
        let spec = pod_spec(&o, "StatefulSet", "pc-proxy");
        let tls = spec.volumes.unwrap_or_default().into_iter().find(|v| v.name == "proxy-tls").unwrap();
        assert_eq!(tls.secret.and_then(|s| s.secret_name).as_deref(), Some("px-tls"));
        let mounts = main_container(find(&o, "StatefulSet", "pc-proxy")).volume_mounts.unwrap_or_default();
        assert!(mounts.iter().any(|m| m.mount_path == "/etc/tls/proxy" && m.read_only == Some(true)));
        assert_port_names(&o);

        let top = objects(&proxy("  certSecretName: top-tls\n  config: {tls: {enabled: true}}\n"));
        let c = config_file(&top, "pc-proxy", PROXY_CONF);
        assert!(c.contains("tlsKeyFilePath=/etc/tls/proxy/tls.key\n") && !c.contains("tlsTrustCertsFilePath"), "{c}");
        let volumes = pod_spec(&top, "StatefulSet", "pc-proxy").volumes.unwrap_or_default();
        assert!(volumes.iter().any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("top-tls")));

        let off = objects(&proxy("  certSecretName: top-tls\n  config: {tls: {enabled: false, certSecretName: px}}\n"));
        assert_eq!(service_port_numbers(find(&off, "Service", "pc-proxy")), [6650, 8080]);
        assert!(!config_file(&off, "pc-proxy", PROXY_CONF).contains("servicePortTls"));
    }

    #[test]
    fn own_tls_needs_one_certificate_and_no_passthrough() {
        let err = |spec: &str| crate::validate::proxy(&proxy(spec)).map(|_| ()).unwrap_err().to_string();
        let e = err("  config: {tls: {enabled: true}}\n");
        assert!(e.contains("spec.config.tls.certSecretName: is required when config.tls.enabled is true"), "{e}");
        let e = err("  certSecretName: a\n  config: {tls: {enabled: true, certSecretName: b}}\n");
        assert!(e.contains("spec.certSecretName: names \"a\" but config.tls.certSecretName names \"b\""), "{e}");
        let e = err(concat!(
            "  dnsNames: [proxy.example.com]\n",
            "  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: gw-tls}}}\n",
            "  config: {tls: {enabled: true, certSecretName: px-tls}}\n",
        ));
        assert!(e.contains("spec.config.tls.enabled: cannot be combined with the gateway's PASSTHROUGH mode"), "{e}");
        assert!(
            crate::validate::proxy(&proxy(
                "  certSecretName: a\n  config: {tls: {enabled: true, certSecretName: a}}\n"
            ))
            .is_ok()
        );
    }

    /// StreamNative's KoP proxy: the `kafka` proxy extension on 9092,
    /// advertising the user's load balancer or else the proxies' Service.
    #[test]
    fn kop_proxy_listens_on_kafka_and_advertises() {
        let o = objects(&proxy(
            "  config: {kopProxy: {enabled: true, kafkaAdvertisedListener: \"kafka.example.com:9092\"}}\n",
        ));
        let c = config_file(&o, "pc-proxy", PROXY_CONF);
        assert!(c.contains("proxyExtensions=kafka\n"), "{c}");
        assert!(c.contains("kafkaListeners=PLAINTEXT://0.0.0.0:9092\n"));
        assert!(c.contains("kafkaAdvertisedListeners=PLAINTEXT://kafka.example.com:9092\n"));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-proxy")), [6650, 8080, 9092]);
        assert_port_names(&o);
        let c = config_file(&objects(&proxy("  config: {kopProxy: {enabled: true}}\n")), "pc-proxy", PROXY_CONF);
        assert!(c.contains("kafkaAdvertisedListeners=PLAINTEXT://pc-proxy.pulsar.svc.cluster.local:9092\n"), "{c}");
        let off = objects(&proxy("  config: {kopProxy: {enabled: false}}\n"));
        assert!(!config_file(&off, "pc-proxy", PROXY_CONF).contains("proxyExtensions"));
        assert_eq!(service_port_numbers(find(&off, "Service", "pc-proxy")), [6650, 8080]);
    }

    /// config.authentication/authorization/clientAuth become proxy.conf
    /// entries; the token Secret is mounted, never copied; the user's
    /// custom entries still win; an exposed proxy with them is not flagged.
    #[test]
    fn pulsar_security_of_the_proxy() {
        let p = proxy(concat!(
            "  dnsNames: [proxy.example.com]\n",
            "  istio: {enabled: true, gateway: {tls: {certSecretName: gw-tls}}}\n",
            "  configurationStoreServers: pc-zk:2181\n",
            "  config:\n",
            "    authentication: {jwt: {tokenPublicKey: \"file:///etc/jwt/public.key\"}}\n",
            "    authorization: {superUserRoles: admin}\n",
            "    clientAuth: {jwt: {secret: proxy-token, token: jwt}}\n",
            "    custom: {superUserRoles: \"admin,ops\"}\n",
        ));
        let o = objects(&p);
        let c = config_file(&o, "pc-proxy", PROXY_CONF);
        for line in [
            "authenticationEnabled=true",
            "authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken",
            "tokenPublicKey=file:///etc/jwt/public.key",
            "authorizationEnabled=true",
            "superUserRoles=admin,ops",
            "brokerClientAuthenticationParameters=file:///etc/pulsar/client-token/jwt",
            "metadataStoreUrl=zk:pc-zk:2181",
            "configurationMetadataStoreUrl=zk:pc-zk:2181",
        ] {
            assert!(c.contains(&format!("{line}\n")), "{line} missing from\n{c}");
        }
        let spec = pod_spec(&o, "StatefulSet", "pc-proxy");
        let token = spec.volumes.unwrap_or_default().into_iter().find(|v| v.name == "client-token").unwrap();
        assert_eq!(token.secret.and_then(|s| s.secret_name).as_deref(), Some("proxy-token"));
        let valid = crate::validate::proxy(&p).unwrap();
        assert!(!valid.exposed_without_authentication());
    }

    #[test]
    fn broker_address_forms() {
        let cl = "cluster.local";
        assert_eq!(broker_address("b", "ns", cl), ("b.ns.svc.cluster.local".to_string(), 6650));
        assert_eq!(broker_address("b.other.svc:6651", "ns", cl), ("b.other.svc".to_string(), 6651));
        assert_eq!(broker_address("pulsar://b:6650/", "ns", cl), ("b.ns.svc.cluster.local".to_string(), 6650));
        assert_eq!(broker_address("b:x", "ns", cl), ("b:x.ns.svc.cluster.local".to_string(), 6650));
        assert_eq!(broker_address("b", "ns", "k8s.example.com"), ("b.ns.svc.k8s.example.com".to_string(), 6650));
    }
}
