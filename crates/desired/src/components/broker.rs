//! Workload objects of a PulsarBroker (SPEC 3.1, 3.4): StatefulSet
//! `<n>-broker`, Services `<n>-broker` and `<n>-broker-headless`, ConfigMap
//! (broker.conf entries), PDB and ServiceAccount.
//!
//! Listeners: every broker advertises `internal` (its pod DNS name, 6650)
//! and, with external access, `external` (its per-broker host, 6651 at the
//! gateway) bound to its own port, so that a lookup made through the
//! gateway answers with a host the gateway routes to that very broker. The
//! host depends on the ordinal, so the start-up script forms it from the
//! pod name with the same prefix and suffix as [`crate::hosts`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{RollingUpdateStatefulSetStrategy, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    EnvVar, EnvVarSource, SecretKeySelector, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use magnetar_api::PulsarBroker;
use magnetar_api::broker::{BrokerConfig, KopTls, LoadManagerType, PodService, PodServiceType};
use magnetar_api::common::PodSpec;
use magnetar_api::istio::GatewayTlsMode;
use magnetar_api::labels::STS_POD_NAME;

use super::objects::{self, ServiceKind};
use super::workload::{self, PodParts, Probes};
use super::{config_files, monitoring, pulsar_auth};
use crate::listeners::{BrokerListeners, External};
use crate::mesh::Enrolment;
use crate::names::{self, Component};
use crate::paths::{self, BROKER_TLS_DIR, GATEWAY_TLS_DIR, KOP_GATEWAY_KEYSTORE, KOP_TLS_DIR};
use crate::ports::*;
use crate::validate::ValidBroker;
use crate::{BuildContext, Object, Owner};

const C: Component = Component::Broker;
/// Key of the generated broker.conf entries in the ConfigMap.
pub const BROKER_CONF: &str = "broker.conf";
const INTERNAL: &str = "internal";
const EXTERNAL: &str = "external";
const KAFKA_INTERNAL: &str = "kafka_internal";
const KAFKA_EXTERNAL: &str = "kafka_external";

pub fn build(valid: &ValidBroker, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let (res, listeners) = (valid.resource, &valid.listeners);
    let spec = &res.spec;
    let default_config = BrokerConfig::default();
    let config = spec.config.as_ref().unwrap_or(&default_config);
    let default_pod = PodSpec::default();
    let pod_spec =
        monitoring::annotate(spec.pod.as_ref().unwrap_or(&default_pod), spec.monitoring.as_ref(), monitoring::PULSAR);
    let pod_spec = pod_spec.as_ref();
    let (custom_conf, custom_env) = config_files::split_custom(&config.custom);
    let stores = MetadataStores::of(res);
    let mut entries = broker_entries(owner, &stores, config, listeners);
    let auth = pulsar_auth::of(config.authentication.as_ref(), roles(config), config.client_auth.as_ref());
    entries.extend(auth.entries);
    // The user's entries win.
    entries.extend(custom_conf);
    let mut data =
        BTreeMap::from([(BROKER_CONF.to_string(), config_files::properties("broker.conf of PulsarBroker", &entries))]);

    let kop_tls = kop_tls(config, listeners);
    let gateway_secret = passthrough_secret(listeners);
    let own_secret = listeners.own_tls.and_then(|t| t.cert_secret_name.as_deref());
    let (mut volumes, mut mounts) = tls_volumes(kop_tls, gateway_secret, own_secret);
    volumes.extend(auth.volumes);
    mounts.extend(auth.mounts);
    let mut env = custom_env;
    env.extend(kop_tls.map(kop_password_env).unwrap_or_default());
    env.extend(listeners.pod_ip.then(workload::pod_ip_env));
    config_files::add_log_config(spec.log_config.as_ref(), &mut data, &mut env);

    let parts = PodParts {
        owner,
        component: C,
        image: workload::image(spec.image.as_deref()),
        pull_policy: spec.image_pull_policy,
        pod: pod_spec,
        enrolment: Enrolment::of(spec.istio.as_ref()),
        script: start_script(owner, &cluster_name(owner, config), &stores, listeners, config, ctx),
        env,
        ports: listeners.container_ports(),
        config: &data,
        config_map: C.object_name(&owner.name),
        volumes,
        mounts,
        probes: Probes::same(workload::http_probe("/status.html", HTTP), 10),
    };
    let mut service_ports = listeners.internal_ports();
    service_ports.extend(listeners.external_ports());
    let replicas = workload::replicas(spec.replicas, spec.auto_scaling_policy.as_ref());
    let mut sts = workload::stateful_set(owner, C, replicas, C.headless_name(&owner.name), parts, Vec::new(), None);
    if let (Some(u), Some(spec)) = (spec.update_strategy.as_ref(), sts.spec.as_mut()) {
        spec.revision_history_limit = u.revision_history_limit;
        spec.update_strategy = u.partition.map(|partition| StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateStatefulSetStrategy { partition: Some(partition), ..Default::default() }),
        });
    }
    let mut out = vec![
        Object::typed(&sts),
        objects::service(owner, C.object_name(&owner.name), C, &service_ports, ServiceKind::ClusterIp),
        objects::service(owner, C.headless_name(&owner.name), C, &listeners.container_ports(), ServiceKind::Headless),
        objects::config_map(owner, C, data),
        objects::pdb(owner, C),
    ];
    out.extend(objects::service_account(owner, C, pod_spec));
    out.extend(per_broker_services(res, listeners, owner));
    out.extend(spec.auto_scaling_policy.as_ref().map(|p| objects::hpa(owner, C, p)));
    let enrolment = Enrolment::of(spec.istio.as_ref());
    out.extend(monitoring::pod_monitor(owner, C, spec.monitoring.as_ref(), &enrolment, monitoring::PULSAR));
    out
}

/// How many brokers may run: replicas, or up to maxReplicas while an
/// autoscaler decides. Per-broker hosts, routes and Services cover them all,
/// so that a broker the autoscaler adds is reachable from the start.
pub fn max_brokers(res: &PulsarBroker) -> i32 {
    let max = res.spec.auto_scaling_policy.as_ref().map_or(0, |p| p.max_replicas);
    res.spec.replicas.max(max).max(0)
}

/// The labels that select broker `ordinal` alone.
pub(crate) fn pod_selector(owner: &Owner, ordinal: i32) -> BTreeMap<String, String> {
    let mut s = names::selector(C, &owner.name);
    s.insert(STS_POD_NAME.into(), names::broker_pod_name(&owner.name, ordinal));
    s
}

/// `<n>-broker-<i>` for every broker that may run, when
/// [`BrokerListeners::per_broker_services`] says so: what the per-broker
/// routes of external access point at (a Service, not a pod address, works
/// with auto-mTLS in sidecar mode and HBONE in ambient), and what
/// `networking.podService` asks for, with its type, annotations, labels and
/// extra ports.
fn per_broker_services(res: &PulsarBroker, listeners: &BrokerListeners, owner: &Owner) -> Vec<Object> {
    if !listeners.per_broker_services() {
        return Vec::new();
    }
    let mut ports = crate::ports::service_ports(&listeners.per_broker_service_ports());
    let pod_service = listeners.pod_service;
    ports.extend(pod_service.iter().flat_map(|p| p.ports.iter().cloned()));
    (0..max_brokers(res)).map(|i| per_broker_service(i, &ports, pod_service, owner)).collect()
}

fn per_broker_service(ordinal: i32, ports: &[ServicePort], pod: Option<&PodService>, owner: &Owner) -> Object {
    let mut metadata = owner.metadata(names::broker_pod_name(&owner.name, ordinal), C);
    if let Some(p) = pod {
        metadata.annotations = Some(p.annotations.clone()).filter(|a| !a.is_empty());
        // magnetar's own labels win: the operator finds its objects by them.
        let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &p.labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let type_ = pod.and_then(|p| p.type_).map(|t| match t {
        PodServiceType::ClusterIP => "ClusterIP".to_string(),
        PodServiceType::LoadBalancer => "LoadBalancer".to_string(),
        PodServiceType::NodePort => "NodePort".to_string(),
    });
    let spec = ServiceSpec {
        selector: Some(pod_selector(owner, ordinal)),
        ports: Some(ports.to_vec()),
        type_,
        ..Default::default()
    };
    Object::typed(&Service { metadata, spec: Some(spec), ..Default::default() })
}

/// The metadata stores of a broker: StreamNative's explicit fields win over
/// what magnetar derives from zkServers (validation requires one of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataStores {
    /// broker.conf metadataStoreUrl.
    pub store: String,
    /// broker.conf configurationMetadataStoreUrl; the metadata store by default.
    pub configuration: String,
    /// broker.conf bookkeeperMetadataServiceUri; unset, Pulsar uses the
    /// metadata store for BookKeeper too (where magnetar's bookies register
    /// when they share the brokers' ZooKeeper).
    pub bookkeeper: Option<String>,
}

impl MetadataStores {
    pub fn of(res: &PulsarBroker) -> Self {
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let spec = &res.spec;
        let store = given(&spec.metadata_store_url)
            .unwrap_or_else(|| config_files::metadata_store_url(spec.zk_servers.as_deref().unwrap_or_default()));
        let configuration = given(&spec.configuration_metadata_store_url).unwrap_or_else(|| store.clone());
        MetadataStores { store, configuration, bookkeeper: given(&spec.bk_metadata_service_uri) }
    }
}

/// `config.authorization`, when given.
fn roles(config: &BrokerConfig) -> Option<pulsar_auth::Roles<'_>> {
    config
        .authorization
        .as_ref()
        .map(|a| pulsar_auth::Roles { super_users: a.super_user_roles.as_deref(), proxies: a.proxy_roles.as_deref() })
}

fn cluster_name(owner: &Owner, config: &BrokerConfig) -> String {
    config.cluster_name.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| owner.name.clone())
}

/// Pulsar's load managers and the extensible one's shedding strategy (the
/// pair Pulsar's own integration tests set to run it).
const EXTENSIBLE_LOAD_MANAGER: &str = "org.apache.pulsar.broker.loadbalance.extensions.ExtensibleLoadManagerImpl";
const TRANSFER_SHEDDER: &str = "org.apache.pulsar.broker.loadbalance.extensions.scheduler.TransferShedder";
const MODULAR_LOAD_MANAGER: &str = "org.apache.pulsar.broker.loadbalance.impl.ModularLoadManagerImpl";

/// broker.conf entries magnetar owns. The advertised listeners depend on
/// the pod, so the start-up script sets them (see [`listener_exports`]).
fn broker_entries(
    owner: &Owner,
    stores: &MetadataStores,
    config: &BrokerConfig,
    l: &BrokerListeners,
) -> BTreeMap<String, String> {
    let mut e: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        e.insert(k.to_string(), v);
    };
    set("clusterName", cluster_name(owner, config));
    set("metadataStoreUrl", stores.store.clone());
    set("configurationMetadataStoreUrl", stores.configuration.clone());
    if let Some(bk) = &stores.bookkeeper {
        set("bookkeeperMetadataServiceUri", bk.clone());
    }
    set("brokerServicePort", PULSAR.to_string());
    set("webServicePort", HTTP.to_string());
    set("internalListenerName", INTERNAL.into());
    set("statusFilePath", paths::STATUS_FILE.into());
    if l.internal_tls {
        // The internal listener's pulsar+ssl URL and the admin client's
        // HTTPS URL need these ports (the certificate is spec.tls's, the
        // user's from config.custom, or the gateway's in PASSTHROUGH mode).
        set("brokerServicePortTls", PULSAR_TLS.to_string());
        set("webServicePortTls", HTTPS.to_string());
    }
    if let Some(tls) = l.own_tls {
        for (k, v) in config_files::server_certificate(BROKER_TLS_DIR, tls.trust_certs_enabled == Some(true)) {
            set(k, v);
        }
    }
    // Validation accepts only the off switch; say so in broker.conf too.
    if config.function.as_ref().is_some_and(|f| f.enabled == Some(false)) {
        set("functionsWorkerEnabled", "false".into());
    }
    if let Some(txn) = config.transaction_enabled {
        set("transactionCoordinatorEnabled", txn.to_string());
    }
    match config.load_manager_type {
        Some(LoadManagerType::ExtensibleLoadManager) => {
            set("loadManagerClassName", EXTENSIBLE_LOAD_MANAGER.into());
            set("loadBalancerLoadSheddingStrategy", TRANSFER_SHEDDER.into());
        }
        Some(LoadManagerType::ModularLoadManager) => set("loadManagerClassName", MODULAR_LOAD_MANAGER.into()),
        // Refused by validation.
        Some(LoadManagerType::ShadowNamespaceLoadManager) | None => {}
    }
    let servlets: Vec<&str> = config.additional_servlets.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if !servlets.is_empty() {
        set("additionalServlets", servlets.join(","));
    }
    if let Some(ws) = config.web_socket_service_enabled {
        set("webSocketServiceEnabled", ws.to_string());
    }
    if let Some(rest) = config.pulsar_rest_messaging_service_enabled {
        set("pulsarRestMessagingServiceEnabled", rest.to_string());
    }
    let binds: Vec<String> = l
        .external
        .iter()
        .map(bind_address)
        .chain(l.advertised.iter().map(|a| format!("{}:pulsar://0.0.0.0:{}", a.name, a.port.port)))
        .collect();
    if !binds.is_empty() {
        set("bindAddresses", binds.join(","));
    }
    if let Some(ext) = l.external.as_ref().filter(|e| e.tls_mode == GatewayTlsMode::Passthrough) {
        passthrough_tls(ext, &mut set);
    }
    protocol_handlers(config, l, &mut set);
    e
}

/// `external` listens on its own port: plaintext behind a terminating
/// gateway (SIMPLE), TLS when the gateway passes TLS through.
fn bind_address(ext: &External) -> String {
    match ext.tls_mode {
        GatewayTlsMode::Simple => format!("{EXTERNAL}:pulsar://0.0.0.0:{EXT_PULSAR_PLAIN}"),
        GatewayTlsMode::Passthrough => format!("{EXTERNAL}:pulsar+ssl://0.0.0.0:{EXT_PULSAR_TLS}"),
    }
}

/// PASSTHROUGH: the broker terminates TLS with the gateway's certificate
/// (external Pulsar listener and HTTPS on 8443).
fn passthrough_tls(ext: &External, set: &mut impl FnMut(&str, String)) {
    let trust = ext.gateway.tls.as_ref().and_then(|t| t.trust_certs_enabled).unwrap_or(false);
    for (k, v) in config_files::server_certificate(GATEWAY_TLS_DIR, trust) {
        set(k, v);
    }
    set("webServicePortTls", EXT_HTTPS_TLS.to_string());
}

/// Settings of the Kafka, MQTT and AMQP protocol handlers that are on.
fn protocol_handlers(config: &BrokerConfig, l: &BrokerListeners, set: &mut impl FnMut(&str, String)) {
    let passthrough = l.external.as_ref().is_some_and(|e| e.tls_mode == GatewayTlsMode::Passthrough);
    let mut protocols = Vec::new();
    if l.kop {
        protocols.push("kafka");
        let (ext_port, ext_proto) = if passthrough { (EXT_KAFKA_TLS, "SSL") } else { (EXT_KAFKA_PLAIN, "PLAINTEXT") };
        let mut listen = vec![format!("{KAFKA_INTERNAL}://0.0.0.0:{KAFKA}")];
        let mut map = vec![format!("{KAFKA_INTERNAL}:PLAINTEXT")];
        if l.external.is_some() {
            listen.push(format!("{KAFKA_EXTERNAL}://0.0.0.0:{ext_port}"));
            map.push(format!("{KAFKA_EXTERNAL}:{ext_proto}"));
        }
        set("kafkaListeners", listen.join(","));
        set("kafkaProtocolMap", map.join(","));
        // KoP needs message indexes and partitioned auto-created topics.
        set(
            "brokerEntryMetadataInterceptors",
            "org.apache.pulsar.common.intercept.AppendIndexMetadataInterceptor".into(),
        );
        set("allowAutoTopicCreationType", "partitioned".into());
        if kop_tls(config, l).is_some() {
            // cert-manager's JKS layout; the passwords come from env.
            set("kopSslKeystoreType", "JKS".into());
            set("kopSslKeystoreLocation", format!("{KOP_TLS_DIR}/keystore.jks"));
            set("kopSslTruststoreType", "JKS".into());
            set("kopSslTruststoreLocation", format!("{KOP_TLS_DIR}/truststore.jks"));
        } else if kop_uses_gateway_certificate(config, l) {
            // The start-up script builds this keystore from the gateway's
            // certificate (see [`gateway_keystore_script`]).
            set("kopSslKeystoreType", "PKCS12".into());
            set("kopSslKeystoreLocation", KOP_GATEWAY_KEYSTORE.into());
        }
    }
    if l.mop {
        protocols.push("mqtt");
        let mut listen = vec![format!("mqtt://0.0.0.0:{MQTT}")];
        if passthrough {
            // The gateway passes MQTT TLS through to MoP's proxy when it runs
            // (mqttProxyTlsPort, below), else to this listener.
            if !l.mop_proxy {
                listen.push(format!("mqtt+ssl://0.0.0.0:{EXT_MQTT_TLS}"));
            }
            // MoP's own certificate keys (MQTTCommonConfiguration), so that
            // MQTT keeps the gateway's certificate even where the user points
            // the broker's tls* keys elsewhere (the KSN example does).
            set("mqttTlsCertificateFilePath", format!("{GATEWAY_TLS_DIR}/tls.crt"));
            set("mqttTlsKeyFilePath", format!("{GATEWAY_TLS_DIR}/tls.key"));
            if l.external
                .as_ref()
                .and_then(|e| e.gateway.tls.as_ref())
                .and_then(|t| t.trust_certs_enabled)
                .unwrap_or(false)
            {
                set("mqttTlsTrustCertsFilePath", format!("{GATEWAY_TLS_DIR}/ca.crt"));
            }
        }
        set("mqttListeners", listen.join(","));
        if l.mop_proxy {
            // MoP reads mqttProxyEnabled; mqttProxyEnable is its deprecated
            // spelling, which MQTTService no longer checks.
            set("mqttProxyEnabled", "true".into());
            set("mqttProxyPort", MQTT_PROXY.to_string());
            if passthrough {
                set("mqttProxyTlsEnabled", "true".into());
                set("mqttProxyTlsPort", EXT_MQTT_PROXY_TLS.to_string());
            }
        }
    }
    if l.aop {
        protocols.push("amqp");
        // AoP serves plaintext AMQP only (AmqpProtocolHandler skips every
        // listener but amqp://): the gateway terminates AMQP TLS in both
        // modes and sends plaintext on.
        set("amqpListeners", format!("amqp://0.0.0.0:{AMQP}"));
        if l.aop_proxy {
            // AmqpServiceConfiguration's key is amqpProxyEnable (no "d").
            set("amqpProxyEnable", "true".into());
            set("amqpProxyPort", AMQP_PROXY.to_string());
        }
    }
    if !protocols.is_empty() {
        set("messagingProtocols", protocols.join(","));
        set("protocolHandlerDirectory", "./protocols".into());
    }
}

/// KoP's TLS block when KoP and its TLS are on and a Secret is named.
fn kop_tls<'a>(config: &'a BrokerConfig, l: &BrokerListeners) -> Option<&'a KopTls> {
    if !l.kop {
        return None;
    }
    let tls = config.protocol_handlers.as_ref()?.kop.as_ref()?.tls.as_ref()?;
    let named = tls.cert_secret_name.as_deref().is_some_and(|s| !s.is_empty());
    (tls.enabled.unwrap_or(false) && named).then_some(tls)
}

/// PASSTHROUGH with KoP but without `kop.tls`: the broker terminates Kafka
/// TLS with the gateway's certificate, as it does for Pulsar and HTTPS.
fn kop_uses_gateway_certificate(config: &BrokerConfig, l: &BrokerListeners) -> bool {
    l.kop && kop_tls(config, l).is_none() && passthrough_secret(l).is_some()
}

/// KoP reads a keystore (Jetty's SslContextFactory: JKS or PKCS12), not PEM,
/// and the gateway's Secret holds PEM (`tls.crt`, `tls.key`): convert it at
/// every start, under a random password that never leaves the pod and
/// reaches KoP through its PULSAR_PREFIX_ variables (so this runs before
/// broker.conf is installed).
fn gateway_keystore_script() -> String {
    format!(
        r#"# KoP needs a keystore: build one from the gateway certificate.
command -v openssl >/dev/null || {{ echo "magnetar: KoP TLS with the gateway certificate needs openssl in the image; set kop.tls instead" >&2; exit 1; }}
KOP_KEYSTORE_PASSWORD="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KOP_KEYSTORE_PASSWORD
openssl pkcs12 -export -name kop -in {dir}/tls.crt -inkey {dir}/tls.key -passout env:KOP_KEYSTORE_PASSWORD -out {KOP_GATEWAY_KEYSTORE}
export PULSAR_PREFIX_kopSslKeystorePassword="$KOP_KEYSTORE_PASSWORD"
export PULSAR_PREFIX_kopSslKeyPassword="$KOP_KEYSTORE_PASSWORD"
"#,
        dir = GATEWAY_TLS_DIR,
    )
}

/// The gateway certificate Secret the broker needs in PASSTHROUGH mode.
fn passthrough_secret<'a>(l: &'a BrokerListeners) -> Option<&'a str> {
    let ext = l.external.as_ref()?;
    (ext.tls_mode == GatewayTlsMode::Passthrough).then(|| ext.gateway.cert_secret_name()).flatten()
}

/// Read-only mounts of the KoP keystore and the gateway certificate.
fn tls_volumes(
    kop: Option<&KopTls>,
    gateway_secret: Option<&str>,
    own_secret: Option<&str>,
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    if let Some(secret) = kop.and_then(|k| k.cert_secret_name.as_deref()) {
        volumes.push(workload::secret_volume("kop-tls", secret));
        mounts.push(workload::mount("kop-tls", KOP_TLS_DIR, true));
    }
    if let Some(secret) = gateway_secret {
        volumes.push(workload::secret_volume("gateway-tls", secret));
        mounts.push(workload::mount("gateway-tls", GATEWAY_TLS_DIR, true));
    }
    if let Some(secret) = own_secret {
        volumes.push(workload::secret_volume("broker-tls", secret));
        mounts.push(workload::mount("broker-tls", BROKER_TLS_DIR, true));
    }
    (volumes, mounts)
}

/// The keystore password, from its Secret, for KoP's key and trust stores.
fn kop_password_env(tls: &KopTls) -> Vec<EnvVar> {
    let Some(r) = tls.password_secret_ref.as_ref().filter(|r| !r.name.is_empty() && !r.key.is_empty()) else {
        return Vec::new();
    };
    ["kopSslKeystorePassword", "kopSslKeyPassword", "kopSslTruststorePassword"]
        .into_iter()
        .map(|k| EnvVar {
            name: format!("{}{k}", config_files::PULSAR_PREFIX),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector { name: r.name.clone(), key: r.key.clone(), optional: None }),
                ..EnvVarSource::default()
            }),
        })
        .collect()
}

/// Shell that exports the advertised listeners: `internal` on the pod's
/// DNS name (or its IP, `usePodIPAsAdvertisedAddress`) and, with external
/// access, `external` on the per-broker host `prefix + ORDINAL + suffix`,
/// the ordinal read from the pod name.
fn listener_exports(owner: &Owner, l: &BrokerListeners, ctx: &BuildContext) -> String {
    let headless = ctx.service_host(&C.headless_name(&owner.name), &owner.namespace);
    let pod_host = if l.pod_ip {
        format!("${{{}}}", workload::POD_IP_ENV)
    } else {
        format!("${{HOSTNAME}}.{}", config_files::shell_safe(&headless))
    };
    let mut s = format!("ORDINAL=\"${{HOSTNAME##*-}}\"\nPOD_HOST=\"{pod_host}\"\n");
    let mut pulsar = vec![format!("{INTERNAL}:pulsar://${{POD_HOST}}:{PULSAR}")];
    if l.internal_tls {
        pulsar.push(format!("{INTERNAL}:pulsar+ssl://${{POD_HOST}}:{PULSAR_TLS}"));
    }
    let mut kafka = vec![format!("{KAFKA_INTERNAL}://${{POD_HOST}}:{KAFKA}")];
    if let Some(ext) = &l.external {
        s.push_str(&format!(
            "EXTERNAL_HOST=\"{}${{ORDINAL}}{}\"\n",
            config_files::shell_safe(&ext.hosts.prefix),
            config_files::shell_safe(&ext.hosts.suffix)
        ));
        pulsar.push(format!("{EXTERNAL}:pulsar+ssl://${{EXTERNAL_HOST}}:{GW_PULSAR}"));
        kafka.push(format!("{KAFKA_EXTERNAL}://${{EXTERNAL_HOST}}:{GW_KAFKA}"));
    }
    for a in &l.advertised {
        let host = advertised_host(a.host_template, &owner.namespace);
        pulsar.push(format!("{}:pulsar://{host}:{}", a.name, a.advertised_port));
    }
    s.push_str(&format!("export PULSAR_PREFIX_advertisedListeners=\"{}\"\n", pulsar.join(",")));
    if l.kop {
        s.push_str(&format!("export PULSAR_PREFIX_kafkaAdvertisedListeners=\"{}\"\n", kafka.join(",")));
    }
    s
}

/// An advertised listener's host for the start-up script (inside double
/// quotes): `$(POD_NAME)` becomes the pod's `${HOSTNAME}`, `$(POD_NAMESPACE)`
/// the namespace; validation refuses any other `$(…)`.
fn advertised_host(template: &str, namespace: &str) -> String {
    template
        .replace(POD_NAMESPACE_VAR, namespace)
        .split(POD_NAME_VAR)
        .map(config_files::shell_safe)
        .collect::<Vec<_>>()
        .join("${HOSTNAME}")
}

/// The variables an advertised listener's `hostTemplate` may use.
pub const POD_NAME_VAR: &str = "$(POD_NAME)";
pub const POD_NAMESPACE_VAR: &str = "$(POD_NAMESPACE)";

/// Exports the listeners, installs broker.conf, registers the cluster in
/// the metadata store (idempotent; retried while the metadata store and the
/// bookies come up, then left to the broker), and starts the broker. This
/// runs in the main container so that it runs behind the sidecar. With
/// bkMetadataServiceUri the BookKeeper metadata lives elsewhere (the
/// bookies create it, see the bookie script), so the setup is told it
/// exists instead of creating its own under the brokers' store.
fn start_script(
    owner: &Owner,
    cluster: &str,
    stores: &MetadataStores,
    l: &BrokerListeners,
    config: &BrokerConfig,
    ctx: &BuildContext,
) -> String {
    let existing_bk = stores
        .bookkeeper
        .as_deref()
        .map(|bk| format!(" \\\n      --existing-bk-metadata-service-uri '{}'", shell_quoted(bk)))
        .unwrap_or_default();
    let svc = ctx.service_host(&C.object_name(&owner.name), &owner.namespace);
    config_files::shell(&format!(
        r#"{exports}{keystore}{install}# Register the cluster (a no-op when it exists already).
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if bin/pulsar initialize-cluster-metadata --cluster '{cluster}' \
      --metadata-store '{store}' --configuration-metadata-store '{configuration}' \
      --web-service-url 'http://{svc}:{HTTP}' --broker-service-url 'pulsar://{svc}:{PULSAR}'{existing_bk}; then
    break
  fi
  sleep 10
done
{status}exec bin/pulsar broker
"#,
        exports = listener_exports(owner, l, ctx),
        keystore = if kop_uses_gateway_certificate(config, l) { gateway_keystore_script() } else { String::new() },
        install = config_files::install_conf_script(BROKER_CONF),
        status = config_files::status_file_script(BROKER_CONF),
        cluster = shell_quoted(cluster),
        store = shell_quoted(&stores.store),
        configuration = shell_quoted(&stores.configuration),
    ))
}

/// A value for inside single quotes: a quote in it is closed, escaped and reopened.
fn shell_quoted(s: &str) -> String {
    s.replace('\'', r"'\''")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::test_util::*;

    fn broker(yaml_spec: &str) -> PulsarBroker {
        resource("pc", &format!("  image: img\n  zkServers: pc-zk:2181\n{yaml_spec}"))
    }

    fn objects(b: &PulsarBroker) -> Vec<Object> {
        build(&ValidBroker::unchecked(b), &Owner::of(b), &BuildContext::default())
    }

    fn conf(o: &[Object]) -> String {
        config_file(o, "pc-broker", BROKER_CONF)
    }

    fn container(o: &[Object]) -> k8s_openapi::api::core::v1::Container {
        main_container(find(o, "StatefulSet", "pc-broker"))
    }

    /// config.clientAuth.mtls: the brokers' internal client presents the
    /// certificate of the Secret, mounted read-only.
    #[test]
    fn client_certificate_of_the_internal_client() {
        let o = objects(&broker(concat!(
            "  config:\n",
            "    authentication: {mtls: {enabled: true}, jwt: {tokenSecretKey: \"file:///etc/jwt/secret.key\"}}\n",
            "    authorization: {superUserRoles: admin, proxyRoles: proxy}\n",
            "    clientAuth: {mtls: {certSecretName: broker-client}}\n",
        )));
        let c = conf(&o);
        assert!(c.contains("authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken,org.apache.pulsar.broker.authentication.AuthenticationProviderTls\n"), "{c}");
        assert!(c.contains("proxyRoles=proxy\n") && c.contains("tokenSecretKey=file:///etc/jwt/secret.key\n"));
        assert!(c.contains("brokerClientAuthenticationPlugin=org.apache.pulsar.client.impl.auth.AuthenticationTls\n"));
        let m = container(&o).volume_mounts.unwrap_or_default();
        let mount = m.iter().find(|m| m.name == "client-tls").expect("the certificate is mounted");
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/etc/tls/pulsar-client", Some(true)));
    }

    /// StreamNative's updateStrategy (a canary partition and the revision
    /// history), pod.minReadySeconds, and the WebSocket switch.
    #[test]
    fn update_strategy_min_ready_and_websocket() {
        let o = objects(&broker(concat!(
            "  updateStrategy: {partition: 2, revisionHistoryLimit: 5}\n",
            "  pod: {minReadySeconds: 30}\n",
            "  config: {webSocketServiceEnabled: true, pulsarRestMessagingServiceEnabled: true}\n",
        )));
        let sts = sts_spec(&o, "pc-broker");
        assert_eq!(sts.revision_history_limit, Some(5));
        assert_eq!(sts.min_ready_seconds, Some(30));
        let rolling = sts.update_strategy.unwrap().rolling_update.unwrap();
        assert_eq!(rolling.partition, Some(2));
        assert!(conf(&o).contains("webSocketServiceEnabled=true\n"));
        assert!(conf(&o).contains("pulsarRestMessagingServiceEnabled=true\n"));
        let plain = sts_spec(&objects(&broker("")), "pc-broker");
        assert!(
            plain.update_strategy.is_none()
                && plain.revision_history_limit.is_none()
                && plain.min_ready_seconds.is_none()
        );
    }

    /// StreamNative's pod settings: vars first in the main container's env
    /// (a name magnetar also sets is the user's), init containers and
    /// sidecars beside the main container, extra volumes, spread
    /// constraints, and the JVM options as the variables bin/pulsar reads.
    #[test]
    fn pod_settings_reach_the_pod() {
        let o = objects(&broker(concat!(
            "  pod:\n",
            "    resources: {requests: {memory: 1Gi}}\n",
            "    vars:\n",
            "    - {name: tokenSecretKey, value: 'file:///mnt/secrets/k'}\n",
            "    - {name: brokerClientAuthenticationParameters, valueFrom: {secretKeyRef: {name: admin, key: token}}}\n",
            "    - {name: PULSAR_MEM, value: '-Xmx1g'}\n",
            "    jvmOptions: {gcOptions: ['-XX:+UseZGC'], extraOptions: ['-Da=1', '-Db=2']}\n",
            "    initContainers: [{name: wait, image: busybox:1.36}]\n",
            "    sidecars: [{name: shipper, image: fluent-bit:3, volumeMounts: [{name: shipper-conf, mountPath: /etc/fb}]}]\n",
            "    volumes: [{name: shipper-conf, configMap: {name: fb}}]\n",
            "    topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule}]\n",
        )));
        let env: Vec<(String, Option<String>)> =
            container(&o).env.unwrap().into_iter().map(|e| (e.name, e.value)).collect();
        assert_eq!(env[0], ("tokenSecretKey".into(), Some("file:///mnt/secrets/k".into())));
        assert_eq!(env[1], ("brokerClientAuthenticationParameters".into(), None), "from the Secret, never inlined");
        assert_eq!(
            env.iter().filter(|(n, _)| n == "PULSAR_MEM").collect::<Vec<_>>(),
            [&("PULSAR_MEM".into(), Some("-Xmx1g".into()))]
        );
        assert!(env.contains(&("PULSAR_GC".into(), Some("-XX:+UseZGC".into()))));
        assert!(env.contains(&("PULSAR_EXTRA_OPTS".into(), Some("-Da=1 -Db=2".into()))));
        let pod = pod_spec(&o, "StatefulSet", "pc-broker");
        let containers: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(containers, ["broker", "shipper"]);
        assert_eq!(pod.init_containers.unwrap()[0].name, "wait");
        assert!(
            pod.volumes
                .unwrap()
                .iter()
                .any(|v| v.name == "shipper-conf" && v.config_map.as_ref().unwrap().name == "fb")
        );
        assert_eq!(pod.topology_spread_constraints.unwrap()[0].topology_key, "topology.kubernetes.io/zone");
    }

    const SIMPLE: &str = "  config:\n    advertisedDomain: pulsar.example.com\n    serviceURLGenerationPolicy: OrdinalPrefix\n    protocolHandlers: {kop: {enabled: true}}\n  istio: {enabled: true, gateway: {tls: {certSecretName: gw}}}\n";

    #[test]
    fn builds_the_objects_with_default_cluster_name() {
        let o = objects(&broker("  replicas: 2\n"));
        for (kind, name) in [
            ("StatefulSet", "pc-broker"),
            ("Service", "pc-broker"),
            ("Service", "pc-broker-headless"),
            ("ConfigMap", "pc-broker"),
            ("PodDisruptionBudget", "pc-broker"),
            ("ServiceAccount", "pc-broker"),
        ] {
            assert!(has(&o, kind, name), "{kind} {name}");
        }
        let c = conf(&o);
        assert!(c.contains("clusterName=pc\n"));
        assert!(c.contains("metadataStoreUrl=zk:pc-zk:2181\n"));
        assert!(c.contains("internalListenerName=internal\n"));
        assert!(!c.contains("messagingProtocols"));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-broker")), [6650, 8080]);
        let readiness = container(&o).readiness_probe.and_then(|p| p.http_get).and_then(|h| h.path);
        assert_eq!(readiness.as_deref(), Some("/status.html"));
    }

    /// `/status.html` answers 404 unless statusFilePath names an existing
    /// file: the conf names it and the script creates it before `exec`.
    #[test]
    fn probes_find_the_status_file() {
        let o = objects(&broker(""));
        assert!(conf(&o).contains("statusFilePath=/pulsar/logs/status\n"));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        let installed = s.find("bin/apply-config-from-env.py conf/broker.conf").unwrap();
        let created = s.find("echo OK > \"$STATUS_FILE\"").expect("the script creates the status file");
        let started = s.find("exec bin/pulsar broker").unwrap();
        assert!(installed < created && created < started, "{s}");
        assert!(s.contains("s/^statusFilePath=//p' conf/broker.conf"));
    }

    #[test]
    fn internal_listener_uses_the_pod_dns_name() {
        let o = objects(&broker(""));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(s.contains("POD_HOST=\"${HOSTNAME}.pc-broker-headless.pulsar.svc.cluster.local\""));
        assert!(s.contains("PULSAR_PREFIX_advertisedListeners=\"internal:pulsar://${POD_HOST}:6650\""));
        assert!(s.contains("bin/pulsar initialize-cluster-metadata --cluster 'pc'"));
        assert!(s.trim_end().ends_with("exec bin/pulsar broker"));
    }

    /// StreamNative's `loadManagerType` and `additionalServlets`: Pulsar's
    /// class names; StreamNative's own load manager is refused.
    #[test]
    fn load_manager_and_servlets() {
        let o = objects(&broker(
            "  config: {loadManagerType: extensibleLoadManager, additionalServlets: [prometheus-exporter, ' ', rest]}\n",
        ));
        let c = conf(&o);
        assert!(c.contains(
            "loadManagerClassName=org.apache.pulsar.broker.loadbalance.extensions.ExtensibleLoadManagerImpl\n"
        ));
        assert!(c.contains("loadBalancerLoadSheddingStrategy=org.apache.pulsar.broker.loadbalance.extensions.scheduler.TransferShedder\n"));
        assert!(c.contains("additionalServlets=prometheus-exporter,rest\n"), "{c}");
        let c = conf(&objects(&broker("  config: {loadManagerType: modularLoadManager}\n")));
        assert!(c.contains("loadManagerClassName=org.apache.pulsar.broker.loadbalance.impl.ModularLoadManagerImpl\n"));
        assert!(!c.contains("loadBalancerLoadSheddingStrategy") && !c.contains("additionalServlets"));
        let err = crate::validate::broker(&broker("  config: {loadManagerType: shadowNamespaceLoadManager}\n"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("spec.config.loadManagerType: shadowNamespaceLoadManager is StreamNative's own"), "{err}");
    }

    /// StreamNative's `usePodIPAsAdvertisedAddress`: the internal listeners
    /// (Pulsar's and KoP's) advertise the pod's IP from the downward API.
    #[test]
    fn pod_ip_is_advertised_when_asked() {
        let o = objects(&broker(
            "  config: {usePodIPAsAdvertisedAddress: true, protocolHandlers: {kop: {enabled: true}}}\n",
        ));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(s.contains("POD_HOST=\"${POD_IP}\"\n"), "{s}");
        assert!(s.contains("internal:pulsar://${POD_HOST}:6650"));
        assert!(s.contains("kafka_internal://${POD_HOST}:9092"));
        let env = main_container(find(&o, "StatefulSet", "pc-broker")).env.unwrap_or_default();
        let ip = env.iter().find(|e| e.name == "POD_IP").expect("POD_IP from the downward API");
        let field = ip.value_from.as_ref().and_then(|f| f.field_ref.as_ref()).map(|f| f.field_path.as_str());
        assert_eq!(field, Some("status.podIP"));
        let plain = objects(&broker("  config: {usePodIPAsAdvertisedAddress: false}\n"));
        assert!(script(find(&plain, "StatefulSet", "pc-broker")).contains("POD_HOST=\"${HOSTNAME}."));
        let env = main_container(find(&plain, "StatefulSet", "pc-broker")).env.unwrap_or_default();
        assert!(env.iter().all(|e| e.name != "POD_IP"));
    }

    #[test]
    fn simple_gateway_advertises_the_per_broker_host() {
        let o = objects(&broker(SIMPLE));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(s.contains("ORDINAL=\"${HOSTNAME##*-}\""));
        assert!(s.contains("EXTERNAL_HOST=\"pb${ORDINAL}-pulsar.example.com\""));
        assert!(s.contains("external:pulsar+ssl://${EXTERNAL_HOST}:6651"));
        assert!(s.contains("kafka_external://${EXTERNAL_HOST}:9093"));
        let c = conf(&o);
        assert!(c.contains("bindAddresses=external:pulsar://0.0.0.0:6652\n"));
        assert!(c.contains("messagingProtocols=kafka\n"));
        assert!(c.contains("kafkaListeners=kafka_internal://0.0.0.0:9092,kafka_external://0.0.0.0:9094\n"));
        assert!(c.contains("kafkaProtocolMap=kafka_internal:PLAINTEXT,kafka_external:PLAINTEXT\n"));
        // The main Service exposes the external-listener ports too.
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-broker")), [6650, 8080, 9092, 6652, 9094]);
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-broker-headless")), [6650, 8080, 9092, 6652, 9094]);
        assert_port_names(&o);
    }

    /// StreamNative's per-pod networking: each advertised listener binds
    /// its own port and advertises a host formed from the pod's name; with
    /// external access the `external` listener stays beside it.
    #[test]
    fn advertised_listeners_bind_their_port_and_advertise_the_pod_host() {
        let listener = "  advertisedListeners:\n  - {name: pod, hostTemplate: \"$(POD_NAME).$(POD_NAMESPACE).svc\", protocols: {pulsar: {containerPort: 6660, advertisedPort: 16660}}}\n";
        let o = objects(&broker(listener));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(
            s.contains(
                "advertisedListeners=\"internal:pulsar://${POD_HOST}:6650,pod:pulsar://${HOSTNAME}.pulsar.svc:16660\""
            ),
            "{s}"
        );
        assert!(conf(&o).contains("bindAddresses=pod:pulsar://0.0.0.0:6660\n"));
        let ports = container(&o).ports.unwrap_or_default();
        assert!(ports.iter().any(|p| p.container_port == 6660 && p.name.as_deref() == Some("tcp-adv-0")));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-broker-headless")), [6650, 8080, 6660]);
        assert!(!has(&o, "Service", "pc-broker-0"), "no per-pod Services unless asked");

        let with_gateway = objects(&broker(&format!("{SIMPLE}{listener}")));
        assert!(
            conf(&with_gateway).contains("bindAddresses=external:pulsar://0.0.0.0:6652,pod:pulsar://0.0.0.0:6660\n")
        );
        assert_port_names(&with_gateway);
    }

    /// StreamNative's spec.tls: the brokers serve TLS themselves with the
    /// Secret's certificate, on ports the Services and the mesh policy get.
    #[test]
    fn own_tls_serves_the_secrets_certificate() {
        let o = objects(&broker("  tls: {enabled: true, certSecretName: broker-cert, trustCertsEnabled: true}\n"));
        let c = conf(&o);
        for line in [
            "brokerServicePortTls=6651\n",
            "webServicePortTls=8443\n",
            "tlsCertificateFilePath=/etc/tls/broker/tls.crt\n",
            "tlsKeyFilePath=/etc/tls/broker/tls.key\n",
            "tlsTrustCertsFilePath=/etc/tls/broker/ca.crt\n",
        ] {
            assert!(c.contains(line), "{line}: {c}");
        }
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(s.contains("internal:pulsar+ssl://${POD_HOST}:6651"), "{s}");
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-broker")), [6650, 8080, 6651, 8443]);
        let mount = container(&o).volume_mounts.unwrap_or_default().into_iter().find(|m| m.name == "broker-tls");
        assert_eq!(mount.map(|m| (m.mount_path, m.read_only)), Some(("/etc/tls/broker".to_string(), Some(true))));
        let off = conf(&objects(&broker("  tls: {enabled: false, certSecretName: broker-cert}\n")));
        assert!(!off.contains("tlsCertificateFilePath") && !off.contains("brokerServicePortTls"));

        let err = |spec: &str| crate::validate::broker(&broker(spec)).unwrap_err().to_string();
        assert!(err("  tls: {enabled: true}\n").contains("spec.tls.certSecretName: is required"));
        let passthrough = "  tls: {enabled: true, certSecretName: c}\n  config: {advertisedDomain: pulsar.example.com}\n  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: g}}}\n";
        assert!(err(passthrough).contains("spec.tls.enabled: cannot be combined with the gateway's PASSTHROUGH mode"));
    }

    /// networking.podService: a Service per broker that may run, selecting
    /// that pod, with the brokers' ports, the user's type, annotations,
    /// labels (magnetar's own win) and extra ports.
    #[test]
    fn pod_service_gives_each_broker_its_own_service() {
        let o = objects(&broker(concat!(
            "  replicas: 2\n",
            "  networking:\n",
            "    podService:\n",
            "      type: LoadBalancer\n",
            "      annotations: {example.com/lb: internal}\n",
            "      labels: {team: messaging, app.kubernetes.io/instance: other}\n",
            "      ports: [{name: tcp-extra, port: 7000}]\n",
        )));
        for i in 0..2 {
            let svc: Service = typed(&o, &format!("pc-broker-{i}"));
            let spec = svc.spec.unwrap();
            assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
            assert_eq!(spec.selector.unwrap()[STS_POD_NAME], format!("pc-broker-{i}"));
            let ports: Vec<i32> = spec.ports.unwrap().iter().map(|p| p.port).collect();
            assert_eq!(ports, [6650, 8080, 7000]);
            let labels = svc.metadata.labels.unwrap();
            assert_eq!((labels["team"].as_str(), labels["app.kubernetes.io/instance"].as_str()), ("messaging", "pc"));
            assert_eq!(svc.metadata.annotations.unwrap()["example.com/lb"], "internal");
        }
        assert!(!has(&o, "Service", "pc-broker-2"));
        let off = objects(&broker("  networking: {podService: {enabled: false}}\n"));
        assert!(!has(&off, "Service", "pc-broker-0"));
    }

    #[test]
    fn per_pod_networking_refuses_what_cannot_work() {
        let err = |spec: &str| crate::validate::broker(&broker(spec)).unwrap_err().to_string();
        let e = err(concat!(
            "  advertisedListeners:\n",
            "  - {name: internal, hostTemplate: \"$(POD_IP).example.com\", protocols: {pulsar: {containerPort: 6650}, kafka: {containerPort: 9092}}}\n",
            "  - {name: b, hostTemplate: b.example.com}\n",
            "  - {name: c, hostTemplate: c.example.com, protocols: {pulsar: {scheme: pulsar+ssl}}}\n",
        ));
        for (path, says) in [
            ("spec.advertisedListeners[0].name", "magnetar configures"),
            ("spec.advertisedListeners[0].hostTemplate", "only $(POD_NAME) and $(POD_NAMESPACE)"),
            ("spec.advertisedListeners[0].protocols.kafka", "not supported yet"),
            ("spec.advertisedListeners[0].protocols.pulsar.containerPort", "6650 is a port the brokers already use"),
            ("spec.advertisedListeners[1].protocols.pulsar", "is required"),
            ("spec.advertisedListeners[2].protocols.pulsar.scheme", "not supported"),
            ("spec.advertisedListeners[2].protocols.pulsar.containerPort", "is required"),
        ] {
            assert!(e.contains(&format!("{path}: ")) && e.contains(says), "{path} / {says}: {e}");
        }
        let eleven: String = (0..11)
            .map(|i| {
                format!(
                    "  - {{name: l{i}, hostTemplate: l.example.com, protocols: {{pulsar: {{containerPort: {}}}}}}}\n",
                    7000 + i
                )
            })
            .collect();
        assert!(
            err(&format!("  advertisedListeners:\n{eleven}"))
                .contains("spec.advertisedListeners: has 11 listeners; at most 10")
        );
        let e = err("  networking: {podService: {ports: [{name: tcp-pulsar, port: 6650}, {port: 7000}]}}\n");
        assert!(e.contains("spec.networking.podService.ports[0].port: 6650 is already a port"), "{e}");
        assert!(e.contains("spec.networking.podService.ports[0].name: \"tcp-pulsar\" is already"), "{e}");
        assert!(e.contains("spec.networking.podService.ports[1].name: is required"), "{e}");
    }

    #[test]
    fn fqdn_hosts_use_the_broker_name() {
        let o = objects(&broker(
            "  config: {advertisedDomain: httpbin.example.com, serviceURLGenerationPolicy: FQDN}\n  istio: {enabled: true, gateway: {tls: {certSecretName: c}}}\n",
        ));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(s.contains("EXTERNAL_HOST=\"pc-broker-${ORDINAL}.httpbin.example.com\""));
    }

    #[test]
    fn passthrough_terminates_tls_at_the_broker() {
        let o = objects(&broker(
            "  config:\n    advertisedDomain: pulsar.example.com\n    protocolHandlers:\n      kop:\n        enabled: true\n        tls: {enabled: true, certSecretName: generic-tls, passwordSecretRef: {name: jks, key: pw}}\n  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: generic-tls, trustCertsEnabled: true}}}\n",
        ));
        let c = conf(&o);
        assert!(c.contains("bindAddresses=external:pulsar+ssl://0.0.0.0:6653\n"));
        assert!(c.contains("tlsCertificateFilePath=/etc/tls/gateway/tls.crt\n"));
        assert!(c.contains("tlsTrustCertsFilePath=/etc/tls/gateway/ca.crt\n"));
        assert!(c.contains("webServicePortTls=8443\n"));
        assert!(c.contains("kafkaProtocolMap=kafka_internal:PLAINTEXT,kafka_external:SSL\n"));
        assert!(c.contains("kopSslKeystoreLocation=/etc/tls/pulsar-kop/keystore.jks\n"));
        let ctr = container(&o);
        let mounts: Vec<(&str, bool)> =
            ctr.volume_mounts.iter().flatten().map(|m| (m.mount_path.as_str(), m.read_only.unwrap_or(false))).collect();
        assert!(mounts.contains(&("/etc/tls/pulsar-kop", true)));
        assert!(mounts.contains(&("/etc/tls/gateway", true)));
        let pw = ctr.env.iter().flatten().find(|e| e.name == "PULSAR_PREFIX_kopSslKeystorePassword").unwrap();
        let secret = pw.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).map(|r| r.name.as_str());
        assert_eq!(secret, Some("jks"));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-broker")), [6650, 8080, 9092, 6653, 8443, 9095]);
        assert_port_names(&o);
    }

    /// brokerClientTlsEnabled (here as a PULSAR_PREFIX_ variable, as the KSN
    /// example writes it): the broker's client connects to the internal
    /// listener's pulsar+ssl URL, so the broker serves TLS in the cluster
    /// and declares the ports wherever its ports are declared.
    #[test]
    fn broker_client_tls_gets_an_internal_tls_listener() {
        let o = objects(&broker("  config: {custom: {PULSAR_PREFIX_brokerClientTlsEnabled: 'True'}}\n"));
        let c = conf(&o);
        assert!(c.contains("brokerServicePortTls=6651\n") && c.contains("webServicePortTls=8443\n"), "{c}");
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(
            s.contains(
                "PULSAR_PREFIX_advertisedListeners=\"internal:pulsar://${POD_HOST}:6650,internal:pulsar+ssl://${POD_HOST}:6651\""
            ),
            "{s}"
        );
        for svc in ["pc-broker", "pc-broker-headless"] {
            assert_eq!(service_port_numbers(find(&o, "Service", svc)), [6650, 8080, 6651, 8443], "{svc}");
        }
        let ports: Vec<i32> = container(&o).ports.iter().flatten().map(|p| p.container_port).collect();
        assert_eq!(ports, [6650, 8080, 6651, 8443]);
        assert_port_names(&o);
        // Off (or false): no TLS port appears.
        let o = objects(&broker("  config: {custom: {brokerClientTlsEnabled: 'false'}}\n"));
        assert!(!conf(&o).contains("brokerServicePortTls"));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-broker")), [6650, 8080]);
    }

    /// PASSTHROUGH with KoP but no kop.tls: Kafka TLS uses the gateway's
    /// certificate, turned into the keystore KoP needs before broker.conf is
    /// installed (its password travels as PULSAR_PREFIX_ variables).
    #[test]
    fn passthrough_kafka_without_kop_tls_uses_the_gateway_certificate() {
        let o = objects(&broker(
            "  config: {advertisedDomain: pulsar.example.com, protocolHandlers: {kop: {enabled: true}}}\n  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: gw}}}\n",
        ));
        let c = conf(&o);
        assert!(c.contains("kafkaProtocolMap=kafka_internal:PLAINTEXT,kafka_external:SSL\n"), "{c}");
        assert!(c.contains("kopSslKeystoreType=PKCS12\n"));
        assert!(c.contains("kopSslKeystoreLocation=/pulsar/conf/kop-gateway.p12\n"));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        let built = s
            .find("openssl pkcs12 -export -name kop -in /etc/tls/gateway/tls.crt -inkey /etc/tls/gateway/tls.key")
            .expect("the keystore is built from the gateway certificate");
        let exported = s.find("export PULSAR_PREFIX_kopSslKeystorePassword=\"$KOP_KEYSTORE_PASSWORD\"").unwrap();
        let installed = s.find("bin/apply-config-from-env.py conf/broker.conf").unwrap();
        assert!(built < exported && exported < installed, "{s}");
        let volumes = pod_spec(&o, "StatefulSet", "pc-broker").volumes.unwrap_or_default();
        assert!(volumes.iter().any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("gw")));
        // With kop.tls the user's keystore is used and nothing is converted.
        let o = objects(&broker(
            "  config: {advertisedDomain: pulsar.example.com, protocolHandlers: {kop: {enabled: true, tls: {enabled: true, certSecretName: k, passwordSecretRef: {name: p, key: k}}}}}\n  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: gw}}}\n",
        ));
        assert!(conf(&o).contains("kopSslKeystoreLocation=/etc/tls/pulsar-kop/keystore.jks\n"));
        assert!(!script(find(&o, "StatefulSet", "pc-broker")).contains("openssl"));
    }

    #[test]
    fn pulsar_prefix_custom_entries_become_env_unchanged() {
        let o = objects(&broker(
            "  config:\n    custom:\n      managedLedgerDefaultAckQuorum: '1'\n      PULSAR_PREFIX_superUserRoles: admin\n",
        ));
        let c = conf(&o);
        assert!(c.contains("managedLedgerDefaultAckQuorum=1\n"));
        assert!(!c.contains("superUserRoles"));
        let env = container(&o).env.unwrap_or_default();
        assert!(env.iter().any(|e| e.name == "PULSAR_PREFIX_superUserRoles" && e.value.as_deref() == Some("admin")));
    }

    #[test]
    fn mop_and_aop_get_listeners_and_distinct_proxy_ports() {
        let o = objects(&broker(
            "  config: {transactionEnabled: true, protocolHandlers: {mop: {enabled: true, proxyEnabled: true}, aop: {enabled: true, proxyEnabled: true}}}\n",
        ));
        let c = conf(&o);
        assert!(c.contains("messagingProtocols=mqtt,amqp\n"));
        assert!(c.contains("mqttListeners=mqtt://0.0.0.0:1883\n"));
        assert!(c.contains("amqpListeners=amqp://0.0.0.0:5672\n"));
        assert!(c.contains("mqttProxyPort=5682\n") && c.contains("amqpProxyPort=5683\n"));
        // The keys the handlers read: MoP's mqttProxyEnabled (mqttProxyEnable
        // is deprecated), AoP's amqpProxyEnable (it has no amqpProxyEnabled).
        assert!(c.contains("mqttProxyEnabled=true\n") && !c.contains("mqttProxyEnable=true\n"));
        assert!(c.contains("amqpProxyEnable=true\n") && !c.contains("amqpProxyEnabled"));
        assert!(c.contains("transactionCoordinatorEnabled=true\n"));
        // The proxies' ports are declared (pods reach each other's proxies through the mesh).
        assert_eq!(
            service_port_numbers(find(&o, "Service", "pc-broker-headless")),
            [6650, 8080, 1883, 5672, 5682, 5683]
        );
    }

    /// With a gateway the proxies run unless switched off, so MQTT and AMQP
    /// through the gateway reach the topic's owner; without, they do not.
    #[test]
    fn handler_proxies_run_with_external_access_by_default() {
        let gw = "  istio: {enabled: true, gateway: {tls: {certSecretName: c}}}\n";
        let handlers = "  config: {advertisedDomain: d.example.com, protocolHandlers: {mop: {enabled: true}, aop: {enabled: true}}}\n";
        let c = conf(&objects(&broker(&format!("{handlers}{gw}"))));
        assert!(c.contains("mqttProxyEnabled=true\nmqttProxyPort=5682\n"), "{c}");
        assert!(c.contains("amqpProxyPort=5683\n"), "{c}");
        let c = conf(&objects(&broker(handlers)));
        assert!(!c.contains("ProxyEnabled") && !c.contains("ProxyPort"), "{c}");
        let pass = "  istio: {enabled: true, gateway: {tls: {mode: passthrough}}}\n";
        let c = conf(&objects(&broker(&format!("{handlers}{pass}"))));
        assert!(c.contains("mqttProxyTlsEnabled=true\nmqttProxyTlsPort=5685\n"), "{c}");
    }

    /// PASSTHROUGH: MoP serves mqtt+ssl with its own certificate keys, the
    /// gateway's certificate; AoP keeps plaintext only (it supports no
    /// amqps:// listener), the gateway terminating AMQP TLS.
    #[test]
    fn passthrough_mqtt_has_its_certificate_and_amqp_stays_plaintext() {
        let o = objects(&broker(
            "  config: {advertisedDomain: pulsar.example.com, protocolHandlers: {mop: {enabled: true}, aop: {enabled: true}}}\n  istio: {enabled: true, gateway: {tls: {mode: passthrough, certSecretName: gw, trustCertsEnabled: true}}}\n",
        ));
        let c = conf(&o);
        // MQTT TLS goes to MoP's proxy (on by default behind a gateway), so
        // the broker's own mqtt+ssl listener is not opened.
        assert!(c.contains("mqttListeners=mqtt://0.0.0.0:1883\n"), "{c}");
        assert!(c.contains("mqttProxyTlsEnabled=true\nmqttProxyTlsPort=5685\n"), "{c}");
        assert!(c.contains("mqttTlsCertificateFilePath=/etc/tls/gateway/tls.crt\n"));
        assert!(c.contains("mqttTlsKeyFilePath=/etc/tls/gateway/tls.key\n"));
        assert!(c.contains("mqttTlsTrustCertsFilePath=/etc/tls/gateway/ca.crt\n"));
        assert!(c.contains("amqpListeners=amqp://0.0.0.0:5672\n"), "{c}");
        assert!(!c.contains("amqps") && !c.contains("amqp+ssl"));
        // 5671 is no port of the broker any more; MoP's proxy TLS port is.
        let ports = service_port_numbers(find(&o, "Service", "pc-broker"));
        assert!(ports.contains(&5685) && !ports.contains(&5671) && !ports.contains(&8883), "{ports:?}");
        // SIMPLE: no MQTT TLS at the broker at all.
        let o = objects(&broker(
            "  config: {advertisedDomain: pulsar.example.com, protocolHandlers: {mop: {enabled: true}}}\n  istio: {enabled: true, gateway: {tls: {certSecretName: gw}}}\n",
        ));
        assert!(!conf(&o).contains("mqttTls"));
    }

    /// StreamNative's Oxia fields replace what zkServers would give, in
    /// broker.conf and in the cluster registration.
    #[test]
    fn explicit_metadata_stores_override_zk_servers() {
        let b: PulsarBroker = resource(
            "pc",
            "  image: img\n  metadataStoreUrl: oxia://pc-oxia:6648/broker\n  configurationMetadataStoreUrl: oxia://pc-oxia:6648/config\n  bkMetadataServiceUri: metadata-store:oxia://pc-oxia:6648/bookkeeper\n",
        );
        let o = objects(&b);
        let c = conf(&o);
        for line in [
            "metadataStoreUrl=oxia://pc-oxia:6648/broker\n",
            "configurationMetadataStoreUrl=oxia://pc-oxia:6648/config\n",
            "bookkeeperMetadataServiceUri=metadata-store:oxia://pc-oxia:6648/bookkeeper\n",
        ] {
            assert!(c.contains(line), "{line} missing from {c}");
        }
        assert!(!c.contains("zk:"), "{c}");
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(s.contains("--metadata-store 'oxia://pc-oxia:6648/broker' --configuration-metadata-store 'oxia://pc-oxia:6648/config'"), "{s}");
        assert!(
            s.contains("--existing-bk-metadata-service-uri 'metadata-store:oxia://pc-oxia:6648/bookkeeper'"),
            "{s}"
        );
        // Only metadataStoreUrl: the configuration store follows it, BookKeeper is left to Pulsar's default.
        let o = objects(&broker("  metadataStoreUrl: oxia://x:6648/b\n"));
        let c = conf(&o);
        assert!(c.contains("\nmetadataStoreUrl=oxia://x:6648/b\n"), "{c}");
        assert!(c.contains("configurationMetadataStoreUrl=oxia://x:6648/b\n"), "{c}");
        assert!(
            !c.contains("bookkeeperMetadataServiceUri")
                && !script(find(&o, "StatefulSet", "pc-broker")).contains("existing-bk")
        );
    }

    /// logConfig: the level as the image's environment variables; json or
    /// a template as a log4j2 file in the ConfigMap, pointed at by
    /// PULSAR_LOG_CONF; text alone changes nothing.
    #[test]
    fn log_config_sets_level_and_format() {
        let env_of = |o: &[Object]| -> BTreeMap<String, String> {
            container(o).env.into_iter().flatten().map(|e| (e.name, e.value.unwrap_or_default())).collect()
        };
        let log4j2 = |o: &[Object]| {
            let cm: k8s_openapi::api::core::v1::ConfigMap = typed(o, "pc-broker");
            cm.data.and_then(|mut d| d.remove(config_files::LOG4J2_FILE))
        };
        let o = objects(&broker("  logConfig: {level: DEBUG, format: json}\n"));
        let env = env_of(&o);
        assert_eq!(env["PULSAR_LOG_LEVEL"], "DEBUG");
        assert_eq!(env["PULSAR_LOG_ROOT_LEVEL"], "DEBUG");
        assert_eq!(env["PULSAR_LOG_CONF"], "/pulsar/conf/magnetar/log4j2-magnetar.yaml");
        let file = log4j2(&o).unwrap();
        let parsed: serde_json::Value = serde_norway::from_str(&file).unwrap();
        assert!(parsed["Configuration"]["Appenders"]["Console"]["JsonLayout"].is_object(), "{file}");
        assert_eq!(parsed["Configuration"]["Loggers"]["Root"]["level"], "${sys:pulsar.log.root.level}");

        let o = objects(&broker("  logConfig: {format: json, template: \"Configuration: {name: mine}\"}\n"));
        assert_eq!(log4j2(&o).as_deref(), Some("Configuration: {name: mine}"));
        assert!(!env_of(&o).contains_key("PULSAR_LOG_LEVEL"));

        let o = objects(&broker("  logConfig: {level: WARN, format: text}\n"));
        assert!(log4j2(&o).is_none());
        let env = env_of(&o);
        assert_eq!(env["PULSAR_LOG_LEVEL"], "WARN");
        assert!(!env.contains_key("PULSAR_LOG_CONF"));
        let plain = objects(&broker(""));
        assert!(log4j2(&plain).is_none() && !env_of(&plain).contains_key("PULSAR_LOG_LEVEL"));
    }

    /// autoScalingPolicy: an autoscaling/v2 HPA on the StatefulSet, which
    /// then carries no replicas (the HPA owns them); per-broker routes cover
    /// maxReplicas so added brokers are reachable.
    #[test]
    fn auto_scaling_policy_builds_an_hpa_and_leaves_replicas_to_it() {
        let o = objects(&broker(
            "  replicas: 2\n  autoScalingPolicy:\n    minReplicas: 1\n    maxReplicas: 4\n    metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}]\n    behavior: {scaleDown: {stabilizationWindowSeconds: 600}}\n",
        ));
        assert_eq!(find(&o, "HorizontalPodAutoscaler", "pc-broker")["apiVersion"], "autoscaling/v2");
        let hpa = hpa_spec(&o, "pc-broker");
        let target = &hpa.scale_target_ref;
        assert_eq!(
            (target.api_version.as_deref(), target.kind.as_str(), target.name.as_str()),
            (Some("apps/v1"), "StatefulSet", "pc-broker")
        );
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(1), 4));
        let metric = hpa.metrics.as_ref().and_then(|m| m[0].resource.as_ref()).map(|r| r.target.average_utilization);
        assert_eq!(metric, Some(Some(60)));
        let scale_down = hpa.behavior.and_then(|b| b.scale_down).and_then(|d| d.stabilization_window_seconds);
        assert_eq!(scale_down, Some(600));
        assert_eq!(sts_spec(&o, "pc-broker").replicas, None);

        let o = objects(&broker("  replicas: 2\n"));
        assert!(!has(&o, "HorizontalPodAutoscaler", "pc-broker"));
        assert_eq!(sts_spec(&o, "pc-broker").replicas, Some(2));

        let b = broker(&format!("{SIMPLE}  autoScalingPolicy: {{maxReplicas: 3}}\n"));
        assert_eq!(max_brokers(&b), 3);
        let hpa = hpa_spec(&objects(&b), "pc-broker");
        assert_eq!(hpa.min_replicas, Some(1));
        assert!(hpa.metrics.is_none(), "Kubernetes' CPU default applies");
        let routed = objects(&b);
        assert!(routed.iter().any(|x| x.kind == "Service" && x.name == "pc-broker-2"), "a route for the third broker");

        let bad = broker("  autoScalingPolicy: {minReplicas: 5, maxReplicas: 2}\n");
        let err = crate::validate::broker(&bad).unwrap_err().to_string();
        assert!(err.contains("spec.autoScalingPolicy.minReplicas: 5 exceeds maxReplicas 2"), "{err}");
    }

    #[test]
    fn functions_can_only_be_switched_off() {
        let c = conf(&objects(&broker("  config: {function: {enabled: false, mesh: {uploadEnabled: false}}}\n")));
        assert!(c.contains("functionsWorkerEnabled=false\n"), "{c}");
        let on = broker("  config: {function: {enabled: true}}\n");
        let err = crate::validate::broker(&on).unwrap_err().to_string();
        assert!(err.contains("spec.config.function.enabled: true is not supported"), "{err}");
    }

    #[test]
    fn hostile_values_cannot_escape_the_script() {
        let o = objects(&broker("  config: {clusterName: \"x'; rm -rf /; '\"}\n"));
        let s = script(find(&o, "StatefulSet", "pc-broker"));
        assert!(s.contains(r"--cluster 'x'\''; rm -rf /; '\'''"));
    }
}
