//! Validation of what the schema cannot judge, and of what `render` must
//! judge offline (it has no API server). Every error names the field and the
//! fix; the first check that fails a field is the one reported.

use std::collections::BTreeMap;

use crate::customize::{self, Patches};
use crate::hosts;
use crate::listeners::{BrokerListeners, ProxyListeners};
use crate::security;
use crate::{FieldError, Invalid};
use kube::ResourceExt;
use magnetar_api::auth::{Authentication, ClientAuth};
use magnetar_api::broker::{LoadManagerType, ServiceUrlGenerationPolicy};
use magnetar_api::common::{AutoScalingPolicy, Customization, LogConfig, PodSpec};
use magnetar_api::istio::{
    AuthRule, AuthSource, DataplaneMode, GatewayApi, GatewaySpec, GatewayTlsMode, MeshSettings, MtlsMode,
};
use magnetar_api::labels::{APP_COMPONENT, APP_INSTANCE, APP_MANAGED_BY, APP_NAME};
use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};

/// Longest CR name: `<name>-bk-auto-recovery` and the StatefulSet revision
/// label `<name>-broker-<hash>` must stay within 63 characters.
pub const MAX_NAME: usize = 42;

/// A resource that passed validation, with what validation learned: the
/// builders, the operator's prerequisite checks and its status read these
/// instead of deciding again from the raw spec.
#[derive(Debug)]
pub struct Valid<'a, R, L = ()> {
    pub resource: &'a R,
    /// The ports, listeners and external access (brokers and proxies).
    pub listeners: L,
    /// `spec.customization`, compiled.
    pub patches: Patches<'a>,
}

pub type ValidZooKeeper<'a> = Valid<'a, ZooKeeperCluster>;
pub type ValidBookKeeper<'a> = Valid<'a, BookKeeperCluster>;
pub type ValidBroker<'a> = Valid<'a, PulsarBroker, BrokerListeners<'a>>;
pub type ValidProxy<'a> = Valid<'a, PulsarProxy, ProxyListeners<'a>>;
pub type ValidCoordinator<'a> = Valid<'a, PulsarCoordinator>;

impl<'a> ValidBroker<'a> {
    /// The view of a broker without the checks: for tests that build
    /// objects of a resource validation would refuse (say, without image).
    pub fn unchecked(resource: &'a PulsarBroker) -> Self {
        Valid { resource, listeners: BrokerListeners::of(resource), patches: Patches::default() }
    }

    /// The gateway, when the broker has external access.
    pub fn gateway(&self) -> Option<&'a GatewaySpec> {
        self.listeners.external.as_ref().map(|e| e.gateway)
    }

    /// Reachable through the gateway with Pulsar's authentication off
    /// ([`crate::security`]).
    pub fn exposed_without_authentication(&self) -> bool {
        let spec = &self.resource.spec;
        let (typed, custom) =
            spec.config.as_ref().map_or((None, None), |c| (c.authentication.as_ref(), Some(&c.custom)));
        security::exposed_without_authentication(
            self.gateway().is_some(),
            typed,
            custom.unwrap_or(&BTreeMap::new()),
            spec.pod.as_ref(),
        )
    }
}

impl<'a> ValidProxy<'a> {
    /// The view of a proxy without the checks (see [`ValidBroker::unchecked`]).
    pub fn unchecked(resource: &'a PulsarProxy) -> Self {
        Valid { resource, listeners: ProxyListeners::of(resource), patches: Patches::default() }
    }

    /// The gateway, when the proxy has external access.
    pub fn gateway(&self) -> Option<&'a GatewaySpec> {
        self.listeners.gateway()
    }

    /// Reachable through the gateway with Pulsar's authentication off
    /// ([`crate::security`]).
    pub fn exposed_without_authentication(&self) -> bool {
        let spec = &self.resource.spec;
        let (typed, custom) =
            spec.config.as_ref().map_or((None, None), |c| (c.authentication.as_ref(), Some(&c.custom)));
        security::exposed_without_authentication(
            self.gateway().is_some(),
            typed,
            custom.unwrap_or(&BTreeMap::new()),
            spec.pod.as_ref(),
        )
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { path: path.into(), message: message.into() });
    }
    fn finish<T>(self, valid: T) -> Result<T, Invalid> {
        if self.0.is_empty() { Ok(valid) } else { Err(Invalid(self.0)) }
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, with upper case too when `upper`: a
/// DNS label's characters, not starting or ending with '-'.
fn label_chars(s: &str, upper: bool) -> bool {
    let ok = |c: char| c.is_ascii_digit() || c.is_ascii_lowercase() || (upper && c.is_ascii_uppercase());
    !s.is_empty() && !s.starts_with('-') && !s.ends_with('-') && s.chars().all(|c| c == '-' || ok(c))
}

/// A Kubernetes label key (`[prefix/]name`) and value: the API server
/// refuses any object carrying another.
fn label_syntax(key: &str, value: &str) -> Result<(), String> {
    let part = |s: &str| {
        let edge = |c: char| c.is_ascii_alphanumeric();
        s.len() <= 63
            && s.starts_with(edge)
            && s.ends_with(edge)
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let (prefix, name) = key.rsplit_once('/').map_or((None, key), |(p, n)| (Some(p), n));
    let prefix_ok = prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(|l| label_chars(l, false)));
    if !prefix_ok || !part(name) {
        return Err(format!(
            "{key:?} is not a label key: [prefix/]name, the name at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    if !value.is_empty() && !part(value) {
        return Err(format!(
            "{value:?} is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// `spec.labels`: valid labels, none of the keys magnetar sets itself (the
/// operator finds its objects and the Services their pods by them).
fn object_labels(e: &mut Errors, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        if let Err(m) = label_syntax(k, v) {
            e.add(format!("spec.labels.{k}"), m);
        } else if [APP_NAME, APP_INSTANCE, APP_COMPONENT, APP_MANAGED_BY].contains(&k.as_str()) {
            e.add(format!("spec.labels.{k}"), "is a label magnetar sets on its objects itself: remove it");
        }
    }
}

/// A name magnetar can derive Service names from: a DNS-1035 label (a
/// Service name must start with a letter).
fn service_safe_name(s: &str) -> bool {
    s.len() <= 63 && s.starts_with(|c: char| c.is_ascii_lowercase()) && label_chars(s, false)
}

/// `host:port` (a ZooKeeper server, the Kafka proxy's advertised
/// listener): a host name or address of letters, digits, '-' and '.', not
/// starting or ending with either of the last two, and a port of one to
/// five digits.
fn host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else { return false };
    let edge = |c: char| c.is_ascii_alphanumeric();
    (1..=5).contains(&port.len())
        && port.chars().all(|c| c.is_ascii_digit())
        && host.starts_with(edge)
        && host.ends_with(edge)
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// A lower-case DNS name of at least two labels of at most 63 characters
/// each (the schema's `magnetar_api::broker::DOMAIN_PATTERN`).
fn dns_name(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2 && labels.iter().all(|l| l.len() <= 63 && label_chars(l, false))
}

fn name(e: &mut Errors, obj: &impl ResourceExt) {
    let n = obj.name_any();
    if n.len() > MAX_NAME || !service_safe_name(&n) {
        e.add(
            "metadata.name",
            format!("{n:?} must start with a letter, contain only lower-case letters, digits and '-', and have at most {MAX_NAME} characters (magnetar derives Service names such as <name>-bk-auto-recovery from it)"),
        );
    }
}

fn image(e: &mut Errors, image: Option<&str>) {
    if image.is_none_or(|i| i.trim().is_empty()) {
        e.add(
            "spec.image",
            "is required: set it, or link the component to a PulsarCoordinator that has spec.image (label k8s.streamnative.io/coordinator-name)",
        );
    }
}

fn replicas(e: &mut Errors, replicas: i32, min: i32) {
    if replicas < min {
        e.add("spec.replicas", format!("must be at least {min}, got {replicas}"));
    }
}

/// What the API server would refuse in the HorizontalPodAutoscaler (or
/// what cannot work): at least one pod (scaling to zero needs an alpha
/// feature gate), min not above max, and metrics with their type.
fn auto_scaling(e: &mut Errors, policy: Option<&AutoScalingPolicy>) {
    let Some(p) = policy else { return };
    let path = "spec.autoScalingPolicy";
    if p.max_replicas < 1 {
        e.add(format!("{path}.maxReplicas"), format!("must be at least 1, got {}", p.max_replicas));
    }
    match p.min_replicas {
        Some(min) if min < 1 => e.add(
            format!("{path}.minReplicas"),
            format!("must be at least 1, got {min} (a HorizontalPodAutoscaler cannot scale to zero without an alpha feature gate)"),
        ),
        Some(min) if min > p.max_replicas => e.add(
            format!("{path}.minReplicas"),
            format!("{min} exceeds maxReplicas {}: lower minReplicas or raise maxReplicas", p.max_replicas),
        ),
        _ => {}
    }
    for (i, m) in p.metrics.iter().enumerate() {
        if m.type_.trim().is_empty() {
            e.add(
                format!("{path}.metrics[{i}].type"),
                "is required: Resource, Pods, Object, External or ContainerResource",
            );
        }
    }
}

fn zk_servers(e: &mut Errors, path: &str, value: &str) {
    let ok = !value.is_empty()
        && value.split(',').all(|hp| {
            host_port(hp)
                && hp.rsplit(':').next().and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| (1..=65535).contains(&p))
        });
    if !ok {
        e.add(path, format!("{value:?} is not host:port[,host:port], for example my-cluster-zk:2181"));
    }
}

const STORE_URL_EXAMPLE: &str = "oxia://my-oxia:6648/broker or zk:my-cluster-zk:2181";
const BK_URI_EXAMPLE: &str = "metadata-store:oxia://my-oxia:6648/bookkeeper";

/// zkServers (checked when given) or the explicit metadata fields
/// (`urls`, the first one standing in for zkServers when it is absent).
/// The URLs go into configuration files and start-up scripts: one token,
/// with a scheme, so that a typo is caught here and not by a crash-looping
/// pod.
fn metadata(e: &mut Errors, zk: Option<&str>, urls: &[(&str, Option<&str>, &str)]) {
    let zk = zk.filter(|z| !z.trim().is_empty());
    match (zk, urls.first()) {
        (Some(zk), _) => zk_servers(e, "spec.zkServers", zk),
        (None, Some((field, url, example))) if url.is_none_or(|u| u.trim().is_empty()) => e.add(
            "spec.zkServers",
            format!("is required unless spec.{field} is set: name the ZooKeeper servers (host:port[,host:port]) or set {field}, for example {example}"),
        ),
        _ => {}
    }
    for (field, url, example) in urls {
        let Some(url) = url else { continue };
        let u = url.trim();
        if u.is_empty()
            || u.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '`' | '$'))
            || !u.contains(':')
        {
            e.add(
                format!("spec.{field}"),
                format!("{url:?} is not a metadata store URL: give one URL with its scheme and no spaces or quotes, for example {example}"),
            );
        }
    }
}

/// logConfig.template replaces the image's log4j2.yaml: a file log4j2
/// cannot parse would leave the broker without its configuration (log4j2
/// falls back to errors only), so it must at least be YAML with a
/// `Configuration` mapping at the top.
fn log_config(e: &mut Errors, config: Option<&LogConfig>) {
    if let Some(t) = config.and_then(|l| l.template.as_deref()) {
        log_template(e, t);
    }
}

fn log_template(e: &mut Errors, template: &str) {
    if template.trim().is_empty() {
        return;
    }
    match serde_norway::from_str::<serde_json::Value>(template) {
        Ok(v) if v["Configuration"].is_object() => {}
        Ok(_) => e.add(
            "spec.logConfig.template",
            "must be a log4j2 YAML configuration with a top-level Configuration mapping (see the image's conf/log4j2.yaml)",
        ),
        Err(err) => e.add("spec.logConfig.template", format!("is not valid YAML ({err}): give a log4j2 YAML configuration")),
    }
}

use crate::paths::{RESERVED_CONTAINERS, RESERVED_MOUNTS, reserved_volume};
use k8s_openapi::api::core::v1::{Container, EnvVar, PersistentVolumeClaimSpec};
use magnetar_api::bookkeeper::BookKeeperStorage;

fn pod(e: &mut Errors, path: &str, pod: Option<&PodSpec>) {
    let Some(pod) = pod else { return };
    memory(e, path, pod);
    if let Some(s) = pod.min_ready_seconds.filter(|s| *s < 0) {
        e.add(format!("{path}.minReadySeconds"), format!("must be 0 or more, got {s}"));
    }
    vars(e, path, &pod.vars);
    for (k, v) in &pod.labels {
        if let Err(m) = label_syntax(k, v) {
            e.add(format!("{path}.labels.{k}"), m);
        }
    }
    extra_containers(e, path, pod);
    extra_volumes(e, path, pod);
    for (i, s) in pod.image_pull_secrets.iter().enumerate() {
        if s.name.trim().is_empty() {
            e.add(
                format!("{path}.imagePullSecrets[{i}].name"),
                "must name a Secret of type kubernetes.io/dockerconfigjson in the component's namespace, for example regcred",
            );
        }
    }
    for (i, s) in pod.secret_refs.iter().enumerate() {
        let clean = s.mount_path.trim_end_matches('/');
        if RESERVED_MOUNTS.iter().any(|r| clean == *r || clean.starts_with(&format!("{r}/"))) {
            e.add(
                format!("{path}.secretRefs[{i}].mountPath"),
                format!(
                    "{:?} is where magnetar mounts its own files ({}): choose another path",
                    s.mount_path,
                    RESERVED_MOUNTS.join(", ")
                ),
            );
        } else if pod.secret_refs[..i].iter().any(|o| o.mount_path.trim_end_matches('/') == clean) {
            e.add(
                format!("{path}.secretRefs[{i}].mountPath"),
                format!("{:?} is mounted twice: give each secret its own path", s.mount_path),
            );
        }
        if s.secret_name.is_empty() {
            e.add(format!("{path}.secretRefs[{i}].secretName"), "must name a Secret");
        }
        if !s.mount_path.starts_with('/') {
            e.add(
                format!("{path}.secretRefs[{i}].mountPath"),
                format!("{:?} must be an absolute path, for example /etc/tls/client", s.mount_path),
            );
        }
    }
}

/// A DNS subdomain (RFC 1123), as Kubernetes wants the names of Secrets
/// and StorageClasses.
fn dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| label_chars(l, false))
}

/// A StorageClass name as the API server wants it in a claim: a DNS
/// subdomain. StreamNative's storage example ships the placeholder
/// `<Your Storage Class name>`, which every API server refuses.
fn storage_class(e: &mut Errors, path: &str, class: Option<&str>) {
    let Some(c) = class.filter(|c| !c.is_empty()) else { return };
    if !dns_subdomain(c) {
        e.add(
            path,
            format!("{c:?} is not a StorageClass name (lower-case letters, digits, '-' and '.'): name one of the cluster's StorageClasses (kubectl get storageclass), or leave it out for the default"),
        );
    }
}

/// A user's PersistentVolumeClaim spec for a generated claim template.
fn claim_spec(e: &mut Errors, path: &str, claim: Option<&PersistentVolumeClaimSpec>) {
    let Some(c) = claim else { return };
    storage_class(e, &format!("{path}.storageClassName"), c.storage_class_name.as_deref());
    let size = c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage"));
    if let Some(q) = size
        && crate::components::jvm::quantity_bytes(&q.0).is_none_or(|b| b <= 0.0)
    {
        e.add(
            format!("{path}.resources.requests.storage"),
            format!("{:?} is not a positive size: write one such as 8Gi", q.0),
        );
    }
}

fn bookie_storage(e: &mut Errors, st: &BookKeeperStorage) {
    storage_class(e, "spec.storage.storageClassName", st.storage_class_name.as_deref());
    if st.ledger.is_some() && st.ledgers.is_some() {
        e.add("spec.storage.ledgers", "is the same setting as spec.storage.ledger: keep one of the two");
    }
    for (field, v) in [("journal", &st.journal), ("ledger", &st.ledger), ("ledgers", &st.ledgers)] {
        if let Some(v) = v {
            claim_spec(e, &format!("spec.storage.{field}.volumeClaimTemplate"), v.volume_claim_template.as_ref());
        }
    }
}

/// `pod.vars` become the main container's env: the API server would refuse
/// the whole StatefulSet for one bad entry, so each is judged here.
fn vars(e: &mut Errors, path: &str, vars: &[EnvVar]) {
    for (i, v) in vars.iter().enumerate() {
        let at = format!("{path}.vars[{i}]");
        if v.name.is_empty() || v.name.contains('=') || !v.name.chars().all(|c| c.is_ascii_graphic()) {
            e.add(
                format!("{at}.name"),
                format!(
                    "{:?} is not an environment variable name: use letters, digits and '_', for example tokenSecretKey",
                    v.name
                ),
            );
        }
        if vars[..i].iter().any(|o| o.name == v.name) {
            e.add(format!("{at}.name"), format!("{:?} is set twice: keep one entry", v.name));
        }
        let from = v.value_from.as_ref().map(|f| {
            [
                f.secret_key_ref.is_some(),
                f.config_map_key_ref.is_some(),
                f.field_ref.is_some(),
                f.resource_field_ref.is_some(),
                f.file_key_ref.is_some(),
            ]
            .into_iter()
            .filter(|s| *s)
            .count()
        });
        match (v.value.as_deref().is_some_and(|s| !s.is_empty()), from) {
            (true, Some(_)) => e.add(at.clone(), "has both value and valueFrom: keep one"),
            (_, Some(n)) if n != 1 => e.add(
                format!("{at}.valueFrom"),
                "must name exactly one source: secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef or fileKeyRef",
            ),
            _ => {}
        }
        if let Some(r) = v.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref())
            && (r.name.is_empty() || r.key.is_empty())
        {
            e.add(format!("{at}.valueFrom.secretKeyRef"), "needs the Secret's name and key");
        }
    }
}

/// `pod.initContainers` and `pod.sidecars`: a name of their own and an image.
fn extra_containers(e: &mut Errors, path: &str, pod: &PodSpec) {
    let all: Vec<(String, &Container)> = [("initContainers", &pod.init_containers), ("sidecars", &pod.sidecars)]
        .into_iter()
        .flat_map(|(field, list)| list.iter().enumerate().map(move |(i, c)| (format!("{path}.{field}[{i}]"), c)))
        .collect();
    for (n, (at, c)) in all.iter().enumerate() {
        if c.name.is_empty() || !label_chars(&c.name, false) || c.name.len() > 63 {
            e.add(
                format!("{at}.name"),
                format!("{:?} is not a container name: use lower-case letters, digits and '-'", c.name),
            );
        } else if RESERVED_CONTAINERS.contains(&c.name.as_str()) {
            e.add(
                format!("{at}.name"),
                format!("{:?} is the name of a container magnetar or Istio adds: choose another name", c.name),
            );
        } else if all[..n].iter().any(|(_, o)| o.name == c.name) {
            e.add(
                format!("{at}.name"),
                format!("{:?} is used twice in the pod: give each container its own name", c.name),
            );
        }
        if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
            e.add(format!("{at}.image"), "is required: name the container's image, for example busybox:1.36");
        }
    }
}

/// `pod.volumes`: a name of their own and exactly one source.
fn extra_volumes(e: &mut Errors, path: &str, pod: &PodSpec) {
    for (i, v) in pod.volumes.iter().enumerate() {
        let at = format!("{path}.volumes[{i}]");
        if v.name.is_empty() || !label_chars(&v.name, false) || v.name.len() > 63 {
            e.add(
                format!("{at}.name"),
                format!("{:?} is not a volume name: use lower-case letters, digits and '-'", v.name),
            );
        } else if reserved_volume(&v.name) {
            e.add(
                format!("{at}.name"),
                format!("{:?} is a volume magnetar or Istio adds to the pod: choose another name", v.name),
            );
        } else if pod.volumes[..i].iter().any(|o| o.name == v.name) {
            e.add(format!("{at}.name"), format!("{:?} is used twice: give each volume its own name", v.name));
        }
        if v.config_map.is_some() == v.secret.is_some() {
            e.add(at.clone(), "needs exactly one of configMap or secret");
        }
    }
}

/// The JVM is sized from the memory quantities and given the memory
/// options on its command line, so both must be what they claim to be.
fn memory(e: &mut Errors, path: &str, pod: &PodSpec) {
    if let Some(r) = &pod.resources {
        for (kind, map) in [("limits", r.limits.as_ref()), ("requests", r.requests.as_ref())] {
            if let Some(q) = map.and_then(|m| m.get("memory"))
                && crate::components::jvm::quantity_bytes(&q.0).is_none()
            {
                e.add(
                    format!("{path}.resources.{kind}.memory"),
                    format!("{:?} is not a Kubernetes quantity: write a size such as 512Mi or 2Gi", q.0),
                );
            }
        }
    }
    let options = pod.jvm_options.as_ref().map(|j| j.memory_options.as_slice()).unwrap_or_default();
    for (i, o) in options.iter().enumerate() {
        if !o.starts_with('-') || o.contains(char::is_whitespace) {
            e.add(
                format!("{path}.jvmOptions.memoryOptions[{i}]"),
                format!("{o:?} is not one JVM option: give each option as its own entry starting with '-', for example -Xmx2g"),
            );
        }
    }
}

fn mesh<M: MeshSettings>(e: &mut Errors, istio: Option<&M>) {
    let Some(m) = istio else { return };
    if m.mtls_mode() == MtlsMode::None && m.dataplane_mode() == DataplaneMode::Ambient {
        e.add(
            "spec.istio.mtls.mode",
            "none is not allowed with dataplaneMode ambient (ambient cannot disable mTLS): use strict or permissive",
        );
    }
    auth_rules(e, m.auth_rules());
    metrics_allow_from(e, m.metrics_allow_from());
}

/// Each `metrics.allowFrom` entry becomes an Istio source: an empty one
/// would match every caller, the opposite of what the field is for.
fn metrics_allow_from(e: &mut Errors, sources: &[AuthSource]) {
    for (i, s) in sources.iter().enumerate() {
        let path = format!("spec.istio.metrics.allowFrom[{i}]");
        let values = s.principals.iter().chain(&s.namespaces).chain(&s.ip_blocks);
        if s.principals.is_empty() && s.namespaces.is_empty() && s.ip_blocks.is_empty() {
            e.add(
                path,
                "an empty source would let every caller reach the metrics port (an admin API on brokers, proxies and bookies): give principals, namespaces or ipBlocks of your Prometheus",
            );
        } else if values.clone().any(|v| v.trim().is_empty()) {
            e.add(path, "has an empty principal, namespace or ipBlock: remove it");
        }
        for (k, b) in s.ip_blocks.iter().enumerate() {
            if !b.trim().is_empty() && !ip_block(b) {
                e.add(
                    format!("spec.istio.metrics.allowFrom[{i}].ipBlocks[{k}]"),
                    format!("{b:?} is not an IP address or CIDR block, for example 10.42.0.0/16"),
                );
            }
        }
    }
}

/// An IP address or `address/prefix` with a prefix that fits the family.
fn ip_block(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

fn auth_rules(e: &mut Errors, rules: &[AuthRule]) {
    for (i, r) in rules.iter().enumerate() {
        if r.from_source.is_empty() && r.to_operation.is_empty() {
            e.add(
                format!("spec.istio.authRules[{i}]"),
                "an empty rule would allow every caller: give fromSource and/or toOperation",
            );
        }
        for (j, op) in r.to_operation.iter().enumerate() {
            for (k, p) in op.ports.iter().enumerate() {
                if !p.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p)) {
                    e.add(
                        format!("spec.istio.authRules[{i}].toOperation[{j}].ports[{k}]"),
                        format!("{p:?} is not a port number between 1 and 65535"),
                    );
                }
            }
        }
        for (j, src) in r.from_source.iter().enumerate() {
            for (k, p) in src.principals.iter().enumerate() {
                if p.is_empty() {
                    e.add(
                        format!("spec.istio.authRules[{i}].fromSource[{j}].principals[{k}]"),
                        "must not be empty: write <trustDomain>/ns/<namespace>/sa/<serviceAccount>",
                    );
                }
            }
        }
    }
}

/// `routes` and `hosts` (main host plus one per broker): the routes and
/// host count of the created Gateway API Gateway, checked against its
/// listener limit.
fn gateway(e: &mut Errors, g: &GatewaySpec, routes: &[crate::listeners::Route], hosts: usize) {
    let attached = g.gateway_api.as_ref().is_some_and(|a| !a.parent_refs.is_empty());
    if let Some(api) = &g.gateway_api {
        gateway_api(e, g, api, crate::gateway_api::listener_count(routes, hosts));
    }
    if g.gateways.is_empty() && !attached && g.tls_mode() == GatewayTlsMode::Simple && g.cert_secret_name().is_none() {
        e.add(
            "spec.istio.gateway.tls.certSecretName",
            "is required when tls.mode is simple (the default): name the TLS secret in the gateway's namespace, or set tls.mode: passthrough",
        );
    }
    if g.mesh_internal_hosts == Some(true) && g.tls_mode() == GatewayTlsMode::Simple {
        e.add(
            "spec.istio.gateway.meshInternalHosts",
            "needs tls.mode passthrough: with simple the broker's external listener is plaintext, so mesh clients that follow a lookup (TLS to port 6651) cannot use it; remove meshInternalHosts or set tls.mode: passthrough",
        );
    }
    for (k, v) in &g.selector {
        if k.is_empty() || v.len() > 63 {
            e.add(format!("spec.istio.gateway.selector.{k}"), "is not a valid label selector entry");
        }
    }
}

fn gateway_api(e: &mut Errors, g: &GatewaySpec, api: &GatewayApi, listeners: usize) {
    let path = "spec.istio.gateway.gatewayAPI";
    let class = api.gateway_class_name.as_deref().filter(|c| !c.is_empty());
    if class.is_some() != api.parent_refs.is_empty() {
        e.add(
            path,
            "gatewayAPI needs exactly one of gatewayClassName (magnetar creates the Gateway) and parentRefs (attach to existing Gateways)",
        );
    }
    if !g.gateways.is_empty() {
        e.add(
            "spec.istio.gateway.gateways",
            "names Istio Gateways, which gatewayAPI replaces: remove it, or list the Gateway API Gateways in gatewayAPI.parentRefs",
        );
    }
    for (i, p) in api.parent_refs.iter().enumerate() {
        let ns_ok = p.namespace.as_deref().is_none_or(|n| n.is_empty() || (n.len() <= 63 && label_chars(n, false)));
        if !dns_subdomain(&p.name) || !ns_ok {
            e.add(
                format!("{path}.parentRefs[{i}]"),
                "name must be a Gateway's name and namespace a namespace (lower-case DNS names)",
            );
        }
    }
    if class.is_some() && listeners > crate::gateway_api::MAX_LISTENERS {
        e.add(
            path,
            format!(
                "the Gateway would need {listeners} listeners (one per host for each protocol the gateway terminates), more than the {} Gateway API allows: use tls.mode passthrough (one listener per protocol), fewer brokers or protocols, or parentRefs to Gateways you manage",
                crate::gateway_api::MAX_LISTENERS
            ),
        );
    }
}

/// The compiled patches; none when an entry is invalid (then validation
/// fails anyway).
fn customization<'a>(e: &mut Errors, c: &'a [Customization]) -> Patches<'a> {
    customize::compile(c).unwrap_or_else(|Invalid(errs)| {
        e.0.extend(errs);
        Patches::default()
    })
}

pub fn zookeeper(zk: &ZooKeeperCluster) -> Result<ValidZooKeeper<'_>, Invalid> {
    let mut e = Errors::default();
    name(&mut e, zk);
    object_labels(&mut e, &zk.spec.labels);
    image(&mut e, zk.spec.image.as_deref());
    replicas(&mut e, zk.spec.replicas, 1);
    pod(&mut e, "spec.pod", zk.spec.pod.as_ref());
    log_config(&mut e, zk.spec.log_config.as_ref());
    if zk.spec.config.is_some() && zk.spec.conf.is_some() {
        e.add(
            "spec.conf",
            "is StreamNative's other name for spec.config (zoo.cfg settings): give one of the two, not both",
        );
    }
    if let Some(p) = &zk.spec.persistence {
        storage_class(&mut e, "spec.persistence.storageClassName", p.storage_class_name.as_deref());
        for (field, claim) in [("data", &p.data), ("dataLog", &p.data_log)] {
            claim_spec(&mut e, &format!("spec.persistence.{field}"), claim.as_ref());
        }
    }
    mesh(&mut e, zk.spec.istio.as_ref());
    let patches = customization(&mut e, &zk.spec.customization);
    e.finish(Valid { resource: zk, listeners: (), patches })
}

pub fn bookkeeper(bk: &BookKeeperCluster) -> Result<ValidBookKeeper<'_>, Invalid> {
    let mut e = Errors::default();
    name(&mut e, bk);
    object_labels(&mut e, &bk.spec.labels);
    image(&mut e, bk.spec.image.as_deref());
    replicas(&mut e, bk.spec.replicas, 1);
    metadata(
        &mut e,
        bk.spec.zk_servers.as_deref(),
        &[("metadataServiceUri", bk.spec.metadata_service_uri.as_deref(), BK_URI_EXAMPLE)],
    );
    pod(&mut e, "spec.pod", bk.spec.pod.as_ref());
    auto_scaling(&mut e, bk.spec.auto_scaling_policy.as_ref());
    log_config(&mut e, bk.spec.log_config.as_ref());
    if let Some(st) = &bk.spec.storage {
        bookie_storage(&mut e, st);
    }
    if let Some(ar) = &bk.spec.auto_recovery {
        if let Some(r) = ar.replicas.filter(|r| *r < 0) {
            e.add("spec.autoRecovery.replicas", format!("must be at least 0, got {r}"));
        }
        pod(&mut e, "spec.autoRecovery.pod", ar.pod.as_ref());
        if let Some(zk) = ar.conf.as_ref().and_then(|c| c.zk_servers.as_deref()) {
            zk_servers(&mut e, "spec.autoRecovery.conf.zkServers", zk);
        }
    }
    mesh(&mut e, bk.spec.istio.as_ref());
    let patches = customization(&mut e, &bk.spec.customization);
    e.finish(Valid { resource: bk, listeners: (), patches })
}

/// `config.authentication` and `config.clientAuth`: what Pulsar needs to
/// start, and no credential written into a ConfigMap (the entries are
/// ConfigMap data; credentials are files mounted from Secrets).
fn pulsar_security(e: &mut Errors, authn: Option<&Authentication>, client: Option<&ClientAuth>) {
    if let Some(jwt) = authn.and_then(|a| a.jwt.as_ref()) {
        let path = "spec.config.authentication.jwt";
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let (public, secret) = (given(&jwt.token_public_key), given(&jwt.token_secret_key));
        if public.is_none() && secret.is_none() {
            e.add(
                path,
                "needs tokenSecretKey or tokenPublicKey: Pulsar cannot verify tokens without a key (mount it through pod.secretRefs and give file:///<mountPath>/<key>)",
            );
        }
        if let Some(k) = secret.filter(|k| !k.starts_with("file:")) {
            let shown = if k.starts_with("data:") { "a data: URL" } else { "a key written inline" };
            e.add(
                format!("{path}.tokenSecretKey"),
                format!("is {shown}: the secret key would sit in a ConfigMap anyone who reads ConfigMaps can read. Put it in a Secret, mount it through pod.secretRefs and give file:///<mountPath>/<key>"),
            );
        }
    }
    if let Some(c) = client {
        client_auth(e, "spec.config.clientAuth", c);
    }
}

/// `clientAuth` (a broker's or proxy's, the toolset's): exactly one way,
/// and credentials only as files.
fn client_auth(e: &mut Errors, path: &str, c: &ClientAuth) {
    let set = [c.generic.is_some(), c.jwt.is_some(), c.mtls.is_some()].iter().filter(|b| **b).count();
    if set != 1 {
        e.add(path, format!("sets {set} of generic, jwt and mtls: give exactly one"));
    }
    if let Some(j) = &c.jwt {
        if j.secret.as_deref().is_none_or(|s| !dns_subdomain(s)) {
            e.add(
                format!("{path}.jwt.secret"),
                "must name the Secret that holds the token (a lower-case DNS name); its key goes in jwt.token (default token)",
            );
        }
        if j.token.as_deref().is_some_and(|t| t.starts_with("eyJ") || t.matches('.').count() >= 2) {
            e.add(
                format!("{path}.jwt.token"),
                "looks like a token itself: it names the key in jwt.secret that holds the token. Put the token in that Secret instead of the manifest",
            );
        }
    }
    if c.generic.as_ref().is_some_and(|g| g.auth_params.trim_start().starts_with("token:")) {
        e.add(
            format!("{path}.generic.authParams"),
            "holds a token inline, which would sit in a ConfigMap: mount it from a Secret through pod.secretRefs and write file:///<mountPath>/<key>",
        );
    }
}

/// `spec.tls`: a certificate to serve, and one only (Pulsar's broker has
/// one `tlsCertificateFilePath`; in PASSTHROUGH mode it is the gateway's).
fn broker_tls(e: &mut Errors, l: &BrokerListeners) {
    let Some(tls) = l.own_tls else { return };
    if tls.cert_secret_name.as_deref().is_none_or(str::is_empty) {
        e.add(
            "spec.tls.certSecretName",
            "is required when tls.enabled is true: name the Secret with tls.crt and tls.key (and ca.crt for trustCertsEnabled)",
        );
    }
    if l.external.as_ref().is_some_and(|x| x.tls_mode == GatewayTlsMode::Passthrough) {
        e.add(
            "spec.tls.enabled",
            "cannot be combined with the gateway's PASSTHROUGH mode, in which the brokers serve the gateway's certificate: remove spec.tls or use SIMPLE mode",
        );
    }
}

/// The proxies' own TLS: one certificate, named once, and not beside the
/// gateway's PASSTHROUGH certificate (Pulsar's proxy serves one).
fn proxy_tls(e: &mut Errors, p: &PulsarProxy, l: &ProxyListeners) {
    let Some(own) = l.own_tls else { return };
    if own.cert_secret_name.is_none() {
        e.add(
            "spec.config.tls.certSecretName",
            "is required when config.tls.enabled is true: name the Secret with tls.crt and tls.key (and ca.crt for trustCertsEnabled), here or in spec.certSecretName",
        );
    }
    let tls = p.spec.config.as_ref().and_then(|c| c.tls.as_ref());
    let here = tls.and_then(|t| t.cert_secret_name.as_deref()).filter(|s| !s.is_empty());
    let top = p.spec.cert_secret_name.as_deref().filter(|s| !s.is_empty());
    if let (Some(a), Some(b)) = (here, top)
        && a != b
    {
        e.add(
            "spec.certSecretName",
            format!("names {b:?} but config.tls.certSecretName names {a:?}: the proxies serve one certificate; keep one of the two"),
        );
    }
    if l.passthrough().is_some() {
        e.add(
            "spec.config.tls.enabled",
            "cannot be combined with the gateway's PASSTHROUGH mode, in which the proxies serve the gateway's certificate: remove config.tls or use SIMPLE mode",
        );
    }
}

/// Listener names magnetar's own broker.conf uses.
const RESERVED_LISTENERS: [&str; 4] = ["internal", "external", "kafka_internal", "kafka_external"];

/// `spec.advertisedListeners`: Pulsar's protocol on a port of its own, a
/// host every pod can form, and names that do not clash with magnetar's.
fn advertised_listeners(e: &mut Errors, b: &PulsarBroker, l: &BrokerListeners) {
    let own: Vec<i32> =
        BrokerListeners { advertised: Vec::new(), ..l.clone() }.container_ports().iter().map(|p| p.port).collect();
    let advertised: Vec<i32> = l.advertised.iter().map(|a| a.port.port).collect();
    let count = b.spec.advertised_listeners.len();
    if count > 10 {
        e.add("spec.advertisedListeners", format!("has {count} listeners; at most 10 are allowed"));
    }
    for (i, a) in b.spec.advertised_listeners.iter().enumerate() {
        let at = |f: &str| format!("spec.advertisedListeners[{i}].{f}");
        if RESERVED_LISTENERS.contains(&a.name.as_str()) {
            e.add(at("name"), format!("{:?} is the name of a listener magnetar configures: choose another", a.name));
        }
        if b.spec.advertised_listeners[..i].iter().any(|o| o.name == a.name) {
            e.add(at("name"), format!("{:?} is used by an earlier listener: names must be unique", a.name));
        }
        advertised_host_template(e, &at("hostTemplate"), &a.host_template);
        let protocols = a.protocols.as_ref();
        if protocols.and_then(|p| p.kafka.as_ref()).is_some_and(|k| k.enabled != Some(false)) {
            e.add(
                at("protocols.kafka"),
                "is not supported yet: Kafka clients use config.protocolHandlers.kop's listeners (and the gateway); remove it",
            );
        }
        let Some(pulsar) = protocols.and_then(|p| p.pulsar.as_ref()).filter(|p| p.enabled != Some(false)) else {
            e.add(
                at("protocols.pulsar"),
                "is required: an advertised listener serves Pulsar's protocol, for example {containerPort: 6660}",
            );
            continue;
        };
        if let Some(scheme) = pulsar.scheme.as_deref().filter(|s| *s != "pulsar") {
            e.add(
                at("protocols.pulsar.scheme"),
                format!("{scheme:?} is not supported: the listener serves plain `pulsar` (the mesh encrypts it between pods); remove scheme"),
            );
        }
        match pulsar.container_port {
            None => e.add(
                at("protocols.pulsar.containerPort"),
                "is required: the port the brokers bind for this listener, for example 6660",
            ),
            Some(port) if own.contains(&port) => e.add(
                at("protocols.pulsar.containerPort"),
                format!("{port} is a port the brokers already use (6650, 8080 and the protocol handlers' ports): choose another, for example 6660"),
            ),
            Some(port) if advertised.iter().filter(|p| **p == port).count() > 1 => e.add(
                at("protocols.pulsar.containerPort"),
                format!("{port} is used by another advertised listener: each needs a port of its own"),
            ),
            Some(_) => {}
        }
    }
}

/// A host template becomes a DNS name once `$(POD_NAME)` and
/// `$(POD_NAMESPACE)` are replaced; nothing else is replaced.
fn advertised_host_template(e: &mut Errors, path: &str, template: &str) {
    use crate::components::broker::{POD_NAME_VAR, POD_NAMESPACE_VAR};
    let sample = template.replace(POD_NAME_VAR, "pc-broker-0").replace(POD_NAMESPACE_VAR, "ns");
    if sample.contains("$(") {
        e.add(
            path,
            format!("{template:?} uses a variable magnetar does not replace: only $(POD_NAME) and $(POD_NAMESPACE)"),
        );
    } else if !dns_name(&sample) {
        e.add(
            path,
            format!("{template:?} does not form a DNS name with at least two labels, for example $(POD_NAME).pulsar.svc.cluster.local"),
        );
    }
}

/// `networking.podService.ports` come on top of the brokers' own ports: a
/// port number or name twice makes the API server refuse the Service.
fn pod_service_ports(e: &mut Errors, l: &BrokerListeners) {
    let Some(ps) = l.pod_service else { return };
    let own = crate::ports::service_ports(&l.per_broker_service_ports());
    for (i, p) in ps.ports.iter().enumerate() {
        let at = format!("spec.networking.podService.ports[{i}]");
        let earlier = &ps.ports[..i];
        if own.iter().chain(earlier).any(|o| o.port == p.port) {
            e.add(
                format!("{at}.port"),
                format!("{} is already a port of the per-pod Services: remove it or choose another", p.port),
            );
        }
        match p.name.as_deref() {
            None | Some("") => e.add(
                format!("{at}.name"),
                "is required: the per-pod Services have several ports, and Kubernetes needs each named",
            ),
            Some(n) if own.iter().chain(earlier).any(|o| o.name.as_deref() == Some(n)) => e.add(
                format!("{at}.name"),
                format!("{n:?} is already a port name of the per-pod Services: choose another"),
            ),
            Some(_) => {}
        }
    }
}

pub fn broker(b: &PulsarBroker) -> Result<ValidBroker<'_>, Invalid> {
    let mut e = Errors::default();
    name(&mut e, b);
    object_labels(&mut e, &b.spec.labels);
    if b.spec.config.as_ref().and_then(|c| c.load_manager_type) == Some(LoadManagerType::ShadowNamespaceLoadManager) {
        e.add(
            "spec.config.loadManagerType",
            "shadowNamespaceLoadManager is StreamNative's own load manager, not in Apache Pulsar: use extensibleLoadManager or modularLoadManager",
        );
    }
    image(&mut e, b.spec.image.as_deref());
    replicas(&mut e, b.spec.replicas, 1);
    auto_scaling(&mut e, b.spec.auto_scaling_policy.as_ref());
    metadata(
        &mut e,
        b.spec.zk_servers.as_deref(),
        &[
            ("metadataStoreUrl", b.spec.metadata_store_url.as_deref(), STORE_URL_EXAMPLE),
            ("configurationMetadataStoreUrl", b.spec.configuration_metadata_store_url.as_deref(), STORE_URL_EXAMPLE),
            ("bkMetadataServiceUri", b.spec.bk_metadata_service_uri.as_deref(), BK_URI_EXAMPLE),
        ],
    );
    pod(&mut e, "spec.pod", b.spec.pod.as_ref());
    mesh(&mut e, b.spec.istio.as_ref());
    let config = b.spec.config.as_ref();
    pulsar_security(
        &mut e,
        config.and_then(|c| c.authentication.as_ref()),
        config.and_then(|c| c.client_auth.as_ref()),
    );
    let domain = config.and_then(|c| c.advertised_domain.as_deref());
    if let Some(d) = domain {
        if d.len() > 200 || !dns_name(d) {
            e.add(
                "spec.config.advertisedDomain",
                format!("{d:?} must be a lower-case DNS name with at least two labels, at most 200 characters, for example pulsar.example.com"),
            );
        } else {
            broker_hosts(&mut e, b, d);
        }
    }
    log_config(&mut e, b.spec.log_config.as_ref());
    if let Some(u) = &b.spec.update_strategy {
        if let Some(p) = u.partition.filter(|p| *p < 0) {
            e.add("spec.updateStrategy.partition", format!("must be 0 or more, got {p}"));
        }
        if let Some(r) = u.revision_history_limit.filter(|r| *r < 1) {
            e.add("spec.updateStrategy.revisionHistoryLimit", format!("must be at least 1, got {r}"));
        }
    }
    if let Some(f) = config.and_then(|c| c.function.as_ref()) {
        if f.enabled == Some(true) {
            e.add(
                "spec.config.function.enabled",
                "true is not supported: magnetar runs no Pulsar Functions worker; remove it or set false",
            );
        }
        if f.mesh.as_ref().and_then(|m| m.upload_enabled) == Some(true) {
            e.add(
                "spec.config.function.mesh.uploadEnabled",
                "true is not supported: magnetar runs no Function Mesh; remove it or set false",
            );
        }
    }
    if let Some(cluster) = config.and_then(|c| c.cluster_name.as_deref())
        && (cluster.is_empty() || cluster.contains(['/', ' ', ',']))
    {
        e.add("spec.config.clusterName", format!("{cluster:?} must be a non-empty name without '/', ',' or spaces"));
    }
    let kop_tls =
        config.and_then(|c| c.protocol_handlers.as_ref()).and_then(|h| h.kop.as_ref()).and_then(|k| k.tls.as_ref());
    if let Some(t) = kop_tls
        && t.enabled.unwrap_or(false)
    {
        if t.cert_secret_name.as_deref().is_none_or(str::is_empty) {
            e.add(
                "spec.config.protocolHandlers.kop.tls.certSecretName",
                "is required when kop.tls.enabled is true: name the Secret with the broker's keystore",
            );
        }
        // KoP opens the keystore with this password; without it the Kafka
        // TLS listener cannot load its key and the broker fails to start.
        if t.password_secret_ref.as_ref().is_none_or(|r| r.name.is_empty() || r.key.is_empty()) {
            e.add(
                "spec.config.protocolHandlers.kop.tls.passwordSecretRef",
                "is required when kop.tls.enabled is true: give the name and key of the Secret holding the keystore password (cert-manager's keystores.jks.passwordSecretRef)",
            );
        }
    }
    let listeners = BrokerListeners::of(b);
    protocol_handler_image(&mut e, b, &listeners);
    broker_tls(&mut e, &listeners);
    advertised_listeners(&mut e, b, &listeners);
    pod_service_ports(&mut e, &listeners);
    if let Some(g) = b.spec.istio.as_ref().and_then(|i| i.gateway.as_ref()) {
        // PASSTHROUGH: the broker terminates Kafka TLS itself, with kop.tls's
        // keystore or else the gateway's certificate; it needs one of them.
        if listeners.kop
            && g.tls_mode() == GatewayTlsMode::Passthrough
            && !kop_tls.is_some_and(|t| t.enabled.unwrap_or(false))
            && g.cert_secret_name().is_none()
        {
            e.add(
                "spec.config.protocolHandlers.kop.tls",
                "is required with istio.gateway.tls.mode passthrough unless istio.gateway.tls.certSecretName names a certificate: the broker itself terminates Kafka TLS (set kop.tls.enabled, certSecretName and passwordSecretRef, or the gateway's certSecretName)",
            );
        }
        if listeners.aop
            && g.gateways.is_empty()
            && g.tls_mode() == GatewayTlsMode::Passthrough
            && g.cert_secret_name().is_none()
        {
            e.add(
                "spec.istio.gateway.tls.certSecretName",
                "is required with aop enabled, also when tls.mode is passthrough: AoP has no TLS listener, so the gateway terminates AMQP TLS (port 5671) with this secret from its namespace",
            );
        }
        if domain.is_none_or(str::is_empty) {
            e.add(
                "spec.config.advertisedDomain",
                "is required with istio.gateway: set it to the root domain external clients use, for example pulsar.example.com",
            );
        }
        handler_proxies(&mut e, b, &listeners);
        let hosts = 1 + crate::components::broker::max_brokers(b).max(0) as usize;
        gateway(&mut e, g, &listeners.routes(), hosts);
    }
    let patches = customization(&mut e, &b.spec.customization);
    e.finish(Valid { resource: b, listeners, patches })
}

/// With more than one broker behind the gateway, MQTT and AMQP must go
/// through MoP's / AoP's proxy: the gateway spreads connections over the
/// brokers, but a topic is served only by its owner. Unset means on
/// (`listeners::handler_proxy`); an explicit false cannot work.
fn handler_proxies(e: &mut Errors, b: &PulsarBroker, listeners: &BrokerListeners) {
    let brokers = crate::components::broker::max_brokers(b);
    if brokers <= 1 || listeners.external.is_none() {
        return;
    }
    let handlers = b.spec.config.as_ref().and_then(|c| c.protocol_handlers.as_ref());
    let off = |h: Option<&magnetar_api::broker::ProxiedHandler>| {
        h.is_some_and(|h| h.enabled.unwrap_or(false) && h.proxy_enabled == Some(false))
    };
    for (name, protocol, h) in
        [("mop", "MQTT", handlers.and_then(|h| h.mop.as_ref())), ("aop", "AMQP", handlers.and_then(|h| h.aop.as_ref()))]
    {
        if off(h) {
            e.add(
                format!("spec.config.protocolHandlers.{name}.proxyEnabled"),
                format!("must not be false with {} brokers behind istio.gateway: the gateway spreads {protocol} connections over the brokers, but only a topic's owner serves it; remove proxyEnabled (the proxy in each broker forwards to the owner) or set replicas: 1", brokers),
            );
        }
    }
}

/// Protocol handlers are NAR files in the image's `protocols/` directory
/// (`protocolHandlerDirectory=./protocols`). StreamNative's images
/// (private-cloud, sn-platform, sn-pulsar) ship KoP, MoP and AoP there;
/// Apache's (`apachepulsar/pulsar`, `apachepulsar/pulsar-all`) have no such
/// directory, and a broker asked to load a handler from it fails to start.
/// Only Docker Hub's `apachepulsar/` images are refused: an image of another
/// registry or repository may be one built with the handlers added.
fn protocol_handler_image(e: &mut Errors, b: &PulsarBroker, l: &BrokerListeners) {
    let on = [("kop", l.kop), ("mop", l.mop), ("aop", l.aop)];
    let enabled: Vec<&str> = on.into_iter().filter_map(|(name, on)| on.then_some(name)).collect();
    let Some(image) = b.spec.image.as_deref().map(str::trim).filter(|i| !i.is_empty()) else { return };
    if !enabled.is_empty() && is_apache_pulsar_image(image) {
        e.add(
            "spec.image",
            format!(
                "{image:?} is an Apache Pulsar image, which has no protocols/ directory, so the broker cannot load the protocol handlers that spec.config.protocolHandlers turns on ({}) and fails to start: use an image that ships them, such as streamnative/private-cloud:4.0.5.2 or streamnative/sn-platform, or turn the handlers off",
                enabled.join(", ")
            ),
        );
    }
}

/// An image of Docker Hub's `apachepulsar` organisation, with or without
/// the registry's name, a tag or a digest.
fn is_apache_pulsar_image(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or_default();
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first component with a '.' or ':' (or localhost) is a registry.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        if !matches!(parts[0], "docker.io" | "index.docker.io" | "registry-1.docker.io") {
            return false;
        }
        parts.remove(0);
    }
    parts.len() == 2 && parts[0].eq_ignore_ascii_case("apachepulsar")
}

/// Every per-broker host must be a valid DNS name (labels of at most 63).
fn broker_hosts(e: &mut Errors, b: &PulsarBroker, domain: &str) {
    let policy = b.spec.config.as_ref().and_then(|c| c.service_url_generation_policy).unwrap_or_default();
    let pattern = crate::listeners::host_pattern(b, policy, domain);
    let last = pattern.host(crate::components::broker::max_brokers(b).max(1) - 1);
    if hosts::longest_label(&last) > 63 {
        let policy_name = match policy {
            ServiceUrlGenerationPolicy::OrdinalPrefix => "OrdinalPrefix",
            ServiceUrlGenerationPolicy::Fqdn => "FQDN",
            ServiceUrlGenerationPolicy::NameUIDPrefix => "NameUIDPrefix",
        };
        e.add(
            "spec.config.advertisedDomain",
            format!("per-broker host {last:?} ({policy_name}) has a DNS label longer than 63 characters: use a shorter name or domain, or another serviceURLGenerationPolicy"),
        );
    }
}

pub fn proxy(p: &PulsarProxy) -> Result<ValidProxy<'_>, Invalid> {
    let mut e = Errors::default();
    let listeners = ProxyListeners::of(p);
    name(&mut e, p);
    object_labels(&mut e, &p.spec.labels);
    image(&mut e, p.spec.image.as_deref());
    replicas(&mut e, p.spec.replicas, 0);
    auto_scaling(&mut e, p.spec.auto_scaling_policy.as_ref());
    log_config(&mut e, p.spec.log_config.as_ref());
    if p.spec.broker_address.trim().is_empty() {
        e.add("spec.brokerAddress", "is required: name the brokers' Service, for example my-cluster-broker");
    }
    for (i, d) in p.spec.dns_names.iter().enumerate() {
        if !dns_name(d) {
            e.add(format!("spec.dnsNames[{i}]"), format!("{d:?} is not a lower-case DNS name"));
        }
    }
    pod(&mut e, "spec.pod", p.spec.pod.as_ref());
    mesh(&mut e, p.spec.istio.as_ref());
    let config = p.spec.config.as_ref();
    let store = p.spec.configuration_store_servers.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let is_url = |s: &str| s.contains("://") || s.starts_with("zk:") || s.starts_with("metadata-store:");
    if let Some(s) = store.filter(|s| !is_url(s)) {
        zk_servers(&mut e, "spec.configurationStoreServers", s);
    }
    let custom_store = config.is_some_and(|c| c.custom.contains_key("metadataStoreUrl"));
    if config.is_some_and(|c| c.authorization.is_some()) && store.is_none() && !custom_store {
        e.add(
            "spec.configurationStoreServers",
            "is required with config.authorization: the proxies read Pulsar's permissions from the configuration store (Pulsar's proxy refuses to start without metadataStoreUrl); name it, for example my-cluster-zk:2181",
        );
    }
    let advertised = config.and_then(|c| c.kop_proxy.as_ref()).and_then(|k| k.kafka_advertised_listener.as_deref());
    if advertised.is_some_and(|l| !host_port(l)) {
        e.add(
            "spec.config.kopProxy.kafkaAdvertisedListener",
            "kopProxy.kafkaAdvertisedListener must be host:port, for example kafka.example.com:9092",
        );
    }
    pulsar_security(
        &mut e,
        config.and_then(|c| c.authentication.as_ref()),
        config.and_then(|c| c.client_auth.as_ref()),
    );
    if let Some(g) = p.spec.istio.as_ref().and_then(|i| i.gateway.as_ref()) {
        if p.spec.dns_names.is_empty() {
            e.add("spec.dnsNames", "is required with istio.gateway: list the external host names the gateway serves");
        }
        gateway(&mut e, g, &listeners.routes(), p.spec.dns_names.len());
    }
    proxy_tls(&mut e, p, &listeners);
    let patches = customization(&mut e, &p.spec.customization);
    e.finish(Valid { resource: p, listeners, patches })
}

pub fn coordinator(c: &PulsarCoordinator) -> Result<ValidCoordinator<'_>, Invalid> {
    let mut e = Errors::default();
    name(&mut e, c);
    if let Some(i) = &c.spec.istio
        && i.mtls.as_ref().and_then(|m| m.mode) == Some(MtlsMode::None)
        && i.dataplane_mode == Some(DataplaneMode::Ambient)
    {
        e.add(
            "spec.istio.mtls.mode",
            "none is not allowed with dataplaneMode ambient (ambient cannot disable mTLS): use strict or permissive",
        );
    }
    if let Some(ts) = &c.spec.tool_set {
        if let Some(r) = ts.replicas.filter(|r| *r < 0) {
            e.add("spec.toolSet.replicas", format!("must be at least 0, got {r}"));
        }
        pod(&mut e, "spec.toolSet.pod", ts.pod.as_ref());
        if let Some(c) = &ts.client_auth {
            client_auth(&mut e, "spec.toolSet.clientAuth", c);
        }
    }
    // The coordinator has no customization of its own.
    e.finish(Valid { resource: c, listeners: (), patches: Patches::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written checks accept exactly what the patterns they stand
    /// for accept (the schema publishes DOMAIN_PATTERN; the API server
    /// enforces it).
    #[test]
    fn name_host_and_domain_checks_agree_with_their_patterns() {
        let name = regex::Regex::new(r"^[a-z]([-a-z0-9]*[a-z0-9])?$").unwrap();
        let zk = regex::Regex::new(r"^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?:[0-9]{1,5}$").unwrap();
        let dom = regex::Regex::new(magnetar_api::broker::DOMAIN_PATTERN).unwrap();
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        let samples = [
            "",
            "a",
            "A",
            "-",
            "a-",
            "-a",
            "a-b",
            "a--b",
            "1a",
            "a1",
            "ab.cd",
            "a.b.c",
            ".a",
            "a.",
            "a..b",
            "zk:2181",
            "zk-0.zk.ns.svc:2181",
            "ZK:1",
            "zk:",
            ":2181",
            "zk:123456",
            "zk:21a",
            "-zk:1",
            "zk-:1",
            "zk.:1",
            "10.0.0.1:2181",
            "a_b",
            "ä.b",
            "pulsar.example.com",
            "Pulsar.example.com",
            "x.example-.com",
            &format!("{long}.com"),
            &format!("{too_long}.com"),
            &long,
            &too_long,
            "a:b:1",
        ];
        for s in samples {
            assert_eq!(service_safe_name(s), name.is_match(s) && s.len() <= 63, "name {s:?}");
            assert_eq!(host_port(s), zk.is_match(s), "zk server {s:?}");
            assert_eq!(dns_name(s), dom.is_match(s), "domain {s:?}");
        }
    }

    #[test]
    fn apache_pulsar_images_are_known_by_their_docker_hub_name() {
        for image in [
            "apachepulsar/pulsar-all:4.0.6",
            "apachepulsar/pulsar:4.0.5",
            "apachepulsar/pulsar",
            "docker.io/apachepulsar/pulsar-all:4.0.6",
            "registry-1.docker.io/apachepulsar/pulsar@sha256:0123",
        ] {
            assert!(is_apache_pulsar_image(image), "{image}");
        }
        for image in [
            "streamnative/private-cloud:4.0.5.2",
            "streamnative/sn-platform:4.0.5.2",
            "harbor.example.com/apachepulsar/pulsar-all:4.0.6",
            "harbor.example.com/public/apachepulsar/pulsar-all:4.0.6",
            "localhost:5000/apachepulsar/pulsar:4.0.6",
            "pulsar:4.0.6",
            "img",
        ] {
            assert!(!is_apache_pulsar_image(image), "{image}");
        }
    }

    #[test]
    fn protocol_handlers_need_an_image_that_ships_them() {
        let broker = |image: &str, handlers: &str| -> PulsarBroker {
            serde_norway::from_str(&format!(
                "apiVersion: pulsar.streamnative.io/v1alpha1\nkind: PulsarBroker\nmetadata: {{name: b, namespace: ns}}\nspec:\n  image: {image}\n  zkServers: zk:2181\n  config: {{protocolHandlers: {handlers}}}\n"
            ))
            .unwrap()
        };
        let err = super::broker(&broker("apachepulsar/pulsar-all:4.0.6", "{aop: {enabled: true}}")).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].path, "spec.image");
        assert!(err.0[0].message.contains("(aop)") && err.0[0].message.contains("streamnative/private-cloud"));
        // Handlers off, or a StreamNative image: fine.
        assert!(super::broker(&broker("apachepulsar/pulsar-all:4.0.6", "{kop: {enabled: false}}")).is_ok());
        assert!(super::broker(&broker("streamnative/private-cloud:4.0.5.2", "{aop: {enabled: true}}")).is_ok());
    }
}
