//! A component's workload: the pod template (mesh enrolment, user pod
//! settings, non-root defaults, probes, volumes) and the StatefulSet or
//! Deployment that runs it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, ExecAction, HTTPGetAction,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec as K8sPodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource,
    SecurityContext, TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use magnetar_api::bookkeeper::ClaimMetadata;
use magnetar_api::common::{AutoScalingPolicy, ImagePullPolicy, PodSpec, ReclaimPolicy};

use super::config_files::config_hash;
use super::jvm::jvm_env;
use crate::mesh::Enrolment;
use crate::names::{self, Component};
use crate::paths::CONFIG_DIR;
use crate::ports::{NamedPort, container_ports};
use crate::{Object, Owner};

/// Pod-template annotation holding a hash of the component's ConfigMap, so
/// that a configuration change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "magnetar.dev/config-hash";
/// The Pulsar image's user; pods run as it unless the user says otherwise.
const PULSAR_UID: i64 = 10000;
const CONFIG_VOLUME: &str = "config";

/// The image of a component; validation refuses an empty one before a
/// build, so an empty string only shows up in a broken input.
pub fn image(image: Option<&str>) -> String {
    image.unwrap_or_default().to_string()
}

// ---------------------------------------------------------------------------
// Volumes

/// What a claim template is made from: the user's spec and metadata, and
/// the defaults for what they leave out.
pub struct ClaimDefaults<'a> {
    pub size: Quantity,
    pub storage_class: Option<&'a str>,
    pub template: Option<&'a PersistentVolumeClaimSpec>,
    pub metadata: Option<&'a ClaimMetadata>,
}

/// A PersistentVolumeClaim template, labelled like the component (and with
/// the user's claim labels and annotations): the user's claim spec where
/// given, with ReadWriteOnce, the default size and the storage class
/// filling what it leaves out.
pub fn claim_from(owner: &Owner, component: Component, name: &str, d: &ClaimDefaults) -> PersistentVolumeClaim {
    let mut spec = d.template.cloned().unwrap_or_default();
    if spec.access_modes.as_ref().is_none_or(Vec::is_empty) {
        spec.access_modes = Some(vec!["ReadWriteOnce".into()]);
    }
    let resources = spec.resources.get_or_insert_with(VolumeResourceRequirements::default);
    resources.requests.get_or_insert_with(BTreeMap::new).entry("storage".to_string()).or_insert_with(|| d.size.clone());
    if spec.storage_class_name.is_none() {
        spec.storage_class_name = d.storage_class.filter(|s| !s.is_empty()).map(str::to_string);
    }
    let mut labels = d.metadata.map(|m| m.labels.clone()).unwrap_or_default();
    labels.extend(names::labels(component, &owner.name));
    let annotations = d.metadata.map(|m| m.annotations.clone()).filter(|a| !a.is_empty());
    let metadata = ObjectMeta { name: Some(name.into()), labels: Some(labels), annotations, ..Default::default() };
    PersistentVolumeClaim { metadata, spec: Some(spec), ..Default::default() }
}

/// The variable that holds the pod's IP (from the downward API), for
/// `usePodIPAsAdvertisedAddress`.
pub const POD_IP_ENV: &str = "POD_IP";

/// `POD_IP` from the pod's `status.podIP`.
pub fn pod_ip_env() -> EnvVar {
    EnvVar {
        name: POD_IP_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "status.podIP".into(), api_version: None }),
            ..Default::default()
        }),
    }
}

/// A volume mount.
pub fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// A Secret volume (mounted read-only by the caller).
pub fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource { secret_name: Some(secret.into()), ..Default::default() }),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Probes

pub fn http_probe(path: &str, port: i32) -> Probe {
    let action = HTTPGetAction { path: Some(path.into()), port: IntOrString::Int(port), ..Default::default() };
    Probe { http_get: Some(action), ..probe() }
}

pub fn tcp_probe(port: i32) -> Probe {
    Probe { tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port), ..Default::default() }), ..probe() }
}

pub fn exec_probe(script: &str) -> Probe {
    let command = ["sh", "-c", script].map(String::from).to_vec();
    Probe { exec: Some(ExecAction { command: Some(command) }), ..probe() }
}

/// The common timing: every 10 s, 5 s to answer, 3 failures.
fn probe() -> Probe {
    Probe { period_seconds: Some(10), timeout_seconds: Some(5), failure_threshold: Some(3), ..Default::default() }
}

/// Readiness, liveness and (for slow starters) a startup probe; liveness
/// only starts counting once the startup probe passed.
#[derive(Clone, Debug, Default)]
pub struct Probes {
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    pub startup: Option<Probe>,
}

impl Probes {
    /// The same check for all three; start-up may take `startup_minutes`.
    pub fn same(probe: Probe, startup_minutes: i32) -> Self {
        let with_threshold = |n: i32| Probe { failure_threshold: Some(n), ..probe.clone() };
        let startup = with_threshold((startup_minutes * 6).max(1));
        let liveness = with_threshold(6);
        Probes { readiness: Some(probe), liveness: Some(liveness), startup: Some(startup) }
    }
}

// ---------------------------------------------------------------------------
// Pod template

/// `own` pod settings, with `fallback`'s image pull secrets when `own` names
/// none: auto-recovery runs the bookies' image and the toolset the brokers',
/// so a private registry that needs a secret for one needs it for the other
/// (StreamNative's imagePullSecrets example sets it on the bookies only).
/// Borrowed unchanged when nothing is inherited.
pub fn with_pull_secrets<'a>(own: &'a PodSpec, fallback: Option<&PodSpec>) -> Cow<'a, PodSpec> {
    match fallback.filter(|f| own.image_pull_secrets.is_empty() && !f.image_pull_secrets.is_empty()) {
        Some(f) => Cow::Owned(PodSpec { image_pull_secrets: f.image_pull_secrets.clone(), ..own.clone() }),
        None => Cow::Borrowed(own),
    }
}

/// Everything that makes up a component's pod template.
#[derive(Clone, Debug)]
pub struct PodParts<'a> {
    pub owner: &'a Owner,
    pub component: Component,
    pub image: String,
    pub pull_policy: Option<ImagePullPolicy>,
    pub pod: &'a PodSpec,
    pub enrolment: Enrolment,
    /// `sh -c` start-up script of the main container.
    pub script: String,
    pub env: Vec<EnvVar>,
    pub ports: Vec<NamedPort>,
    /// Data of the ConfigMap mounted at [`CONFIG_DIR`] (hashed into the
    /// template so a change rolls the pods).
    pub config: &'a BTreeMap<String, String>,
    /// Name of that ConfigMap.
    pub config_map: String,
    /// Extra volumes and their mounts (data, certificates), as built by
    /// [`secret_volume`] and [`mount`].
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    pub probes: Probes,
}

impl PodParts<'_> {
    /// The pod template: labels per mesh mode, annotations (user's, Istio's,
    /// config hash), one main container, user pod settings. Consumes the
    /// parts so that the script and probes move into the template.
    pub fn template(self) -> PodTemplateSpec {
        let base = names::labels(self.component, &self.owner.name);
        let labels = self.enrolment.pod_labels(&base, &self.pod.labels);
        let mut annotations = self.enrolment.pod_annotations(&self.pod.annotations);
        annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash(self.config));
        let metadata = ObjectMeta { labels: Some(labels), annotations: Some(annotations), ..Default::default() };
        PodTemplateSpec { metadata: Some(metadata), spec: Some(self.pod_spec()) }
    }

    fn pod_spec(self) -> K8sPodSpec {
        let pod = self.pod;
        K8sPodSpec {
            volumes: Some(self.all_volumes()),
            service_account_name: Some(names::service_account(
                self.component,
                &self.owner.name,
                pod.service_account_name.as_deref(),
            )),
            security_context: Some(pod_security_context(pod.security_context.as_ref())),
            node_selector: (!pod.node_selector.is_empty()).then(|| pod.node_selector.clone()),
            tolerations: (!pod.tolerations.is_empty()).then(|| pod.tolerations.clone()),
            affinity: Some(pod.affinity.clone().unwrap_or_else(|| spread(self.component, &self.owner.name))),
            termination_grace_period_seconds: pod.termination_grace_period_seconds,
            // Validation refuses entries without a name (see validate::pod).
            image_pull_secrets: (!pod.image_pull_secrets.is_empty()).then(|| pod.image_pull_secrets.clone()),
            // Service links would put every Service of the namespace into the
            // environment, where apply-config-from-env.py might pick them up.
            enable_service_links: Some(false),
            topology_spread_constraints: (!pod.topology_spread_constraints.is_empty())
                .then(|| pod.topology_spread_constraints.clone()),
            init_containers: (!pod.init_containers.is_empty()).then(|| pod.init_containers.clone()),
            containers: std::iter::once(self.container()).chain(pod.sidecars.iter().cloned()).collect(),
            ..Default::default()
        }
    }

    fn container(self) -> Container {
        let mut mounts = vec![mount(CONFIG_VOLUME, CONFIG_DIR, true)];
        mounts.extend(self.mounts);
        mounts
            .extend(self.pod.secret_refs.iter().enumerate().map(|(i, s)| mount(&user_secret(i), &s.mount_path, true)));
        // Two mounts on one path are refused by the API server: ours win.
        let mut paths = BTreeSet::new();
        mounts.retain(|m| paths.insert(m.mount_path.clone()));
        // The user's variables first: a repeated name would break
        // server-side apply (env is keyed by name), and the first one, the
        // user's, wins over the one magnetar derives.
        let mut env = self.pod.vars.clone();
        env.extend(self.env);
        env.extend(jvm_env(self.component, self.pod));
        let mut names = BTreeSet::new();
        env.retain(|e| names.insert(e.name.clone()));
        Container {
            name: self.component.component_label().into(),
            image: Some(self.image),
            image_pull_policy: self.pull_policy.map(|p| p.as_str().into()),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec![self.script]),
            env: (!env.is_empty()).then_some(env),
            ports: (!self.ports.is_empty()).then(|| container_ports(&self.ports)),
            resources: self.pod.resources.clone(),
            volume_mounts: Some(mounts),
            readiness_probe: self.probes.readiness,
            liveness_probe: self.probes.liveness,
            startup_probe: self.probes.startup,
            security_context: Some(container_security_context()),
            ..Default::default()
        }
    }

    fn all_volumes(&self) -> Vec<Volume> {
        let config = Volume {
            name: CONFIG_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource { name: self.config_map.clone(), ..Default::default() }),
            ..Default::default()
        };
        let mut v = vec![config];
        v.extend(self.volumes.iter().cloned());
        v.extend(self.pod.secret_refs.iter().enumerate().map(|(i, s)| secret_volume(&user_secret(i), &s.secret_name)));
        v.extend(self.pod.volumes.iter().map(|u| Volume {
            name: u.name.clone(),
            config_map: u.config_map.clone(),
            secret: u.secret.clone(),
            ..Default::default()
        }));
        v
    }
}

fn user_secret(i: usize) -> String {
    format!("user-secret-{i}")
}

/// The user's pod security context with non-root defaults filled in where
/// the user left a field unset: the Pulsar image's user 10000, group 0 on
/// volumes (the image's directories are group-writable), RuntimeDefault
/// seccomp.
pub fn pod_security_context(user: Option<&PodSecurityContext>) -> PodSecurityContext {
    let mut sc = user.cloned().unwrap_or_default();
    sc.run_as_non_root.get_or_insert(true);
    sc.run_as_user.get_or_insert(PULSAR_UID);
    if sc.fs_group.is_none() {
        sc.fs_group = Some(0);
        sc.fs_group_change_policy.get_or_insert_with(|| "OnRootMismatch".into());
    }
    sc.seccomp_profile
        .get_or_insert_with(|| SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() });
    sc
}

/// Container hardening: no privilege escalation, no capabilities.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
        ..Default::default()
    }
}

/// A LabelSelector (`matchLabels`) of the component's pods.
pub fn label_selector(component: Component, instance: &str) -> LabelSelector {
    LabelSelector { match_labels: Some(names::selector(component, instance)), ..Default::default() }
}

/// Default affinity: prefer one pod of the component per node.
fn spread(component: Component, instance: &str) -> Affinity {
    let term = PodAffinityTerm {
        label_selector: Some(label_selector(component, instance)),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    };
    let preferred = WeightedPodAffinityTerm { weight: 100, pod_affinity_term: term };
    let anti = PodAntiAffinity {
        preferred_during_scheduling_ignored_during_execution: Some(vec![preferred]),
        ..Default::default()
    };
    Affinity { pod_anti_affinity: Some(anti), ..Default::default() }
}

// ---------------------------------------------------------------------------
// Workloads

/// A StatefulSet `<n>-<suffix>` governed by `service_name` (pods get DNS
/// names under it). Pods start in parallel: ZooKeeper needs its peers up to
/// form a quorum, and bookies and brokers do not depend on their siblings.
///
/// `replicas` is None while a HorizontalPodAutoscaler manages the workload:
/// the field is then left out of what the operator applies, so that
/// server-side apply neither resets nor fights what the autoscaler sets.
pub fn stateful_set(
    owner: &Owner,
    component: Component,
    replicas: Option<i32>,
    service_name: String,
    parts: PodParts,
    claims: Vec<PersistentVolumeClaim>,
    reclaim: Option<ReclaimPolicy>,
) -> StatefulSet {
    let min_ready_seconds = parts.pod.min_ready_seconds;
    let template = parts.template();
    let retention = (!claims.is_empty()).then(|| StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some(
            match reclaim.unwrap_or_default() {
                ReclaimPolicy::Retain => "Retain",
                ReclaimPolicy::Delete => "Delete",
            }
            .into(),
        ),
        when_scaled: Some("Retain".into()),
    });
    let spec = StatefulSetSpec {
        replicas: replicas.map(|r| r.max(0)),
        selector: label_selector(component, &owner.name),
        service_name: Some(service_name),
        pod_management_policy: Some("Parallel".into()),
        template,
        persistent_volume_claim_retention_policy: retention,
        volume_claim_templates: (!claims.is_empty()).then_some(claims),
        min_ready_seconds,
        ..Default::default()
    };
    let metadata = owner.metadata(component.object_name(&owner.name), component);
    StatefulSet { metadata, spec: Some(spec), ..Default::default() }
}

/// The StatefulSet's replicas as magnetar applies them: none while an
/// autoscaler owns the count.
pub fn replicas(replicas: i32, autoscaling: Option<&AutoScalingPolicy>) -> Option<i32> {
    autoscaling.is_none().then_some(replicas)
}

/// A Deployment `<n>-<suffix>`.
pub fn deployment(owner: &Owner, component: Component, replicas: i32, parts: PodParts) -> Object {
    let min_ready_seconds = parts.pod.min_ready_seconds;
    let spec = DeploymentSpec {
        replicas: Some(replicas.max(0)),
        selector: label_selector(component, &owner.name),
        min_ready_seconds,
        template: parts.template(),
        ..Default::default()
    };
    let metadata = owner.metadata(component.object_name(&owner.name), component);
    Object::typed(&Deployment { metadata, spec: Some(spec), ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_security_context_keeps_its_fields_and_gains_defaults() {
        let user = PodSecurityContext { run_as_non_root: Some(true), run_as_user: Some(1234), ..Default::default() };
        let sc = pod_security_context(Some(&user));
        assert_eq!(sc.run_as_user, Some(1234));
        assert_eq!(sc.fs_group, Some(0));
        let sc = pod_security_context(None);
        assert_eq!((sc.run_as_non_root, sc.run_as_user), (Some(true), Some(10000)));
    }

    #[test]
    fn probes_share_the_check_and_differ_in_patience() {
        let p = Probes::same(tcp_probe(2181), 5);
        assert_eq!(p.readiness.as_ref().and_then(|r| r.failure_threshold), Some(3));
        assert_eq!(p.liveness.as_ref().and_then(|r| r.failure_threshold), Some(6));
        assert_eq!(p.startup.as_ref().and_then(|r| r.failure_threshold), Some(30));
        assert_eq!(p.startup.and_then(|s| s.tcp_socket).map(|t| t.port), Some(IntOrString::Int(2181)));
    }
}
