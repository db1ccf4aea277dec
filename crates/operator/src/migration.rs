//! Data-plane migration between sidecar and ambient (SPEC 4.5).
//!
//! While a component moves between modes its PeerAuthentication is
//! PERMISSIVE and it has no DestinationRules (`BuildContext::migrating`).
//!
//! The rule. A component with Istio enabled is *migrating* when any of:
//! 1. its live StatefulSet's pod template enrols pods another way than the
//!    spec asks (the switch was just made; the new template is not applied);
//! 2. a pod of the component still carries the enrolment labels of another
//!    mode (the StatefulSet is rolling);
//! 3. some pod carries an Istio enrolment annotation (`sidecar.istio.io/status`
//!    or `ambient.istio.io/redirection`), i.e. the pods are real mesh pods,
//!    and not every pod is enrolled the new way (injected, or redirected by
//!    ztunnel, after it was re-created);
//! 4. it was migrating at the last reconcile and the StatefulSet is not yet
//!    fully updated and Ready.
//!
//! So migration finishes when the StatefulSet is fully updated and Ready AND
//! either every pod is enrolled the new way, or no pod carries any Istio
//! annotation at all (pods that are not real mesh pods, e.g. on a control
//! plane without Istio's webhook and CNI, can only be judged by labels).
//! A component being created (no StatefulSet yet) is not migrating, nor is one
//! with Istio disabled (it has no Istio objects at all).

use std::collections::BTreeMap;

use magnetar_api::labels::{AMBIENT_REDIRECTION, DATAPLANE_MODE, ISTIO_REV, SIDECAR_INJECT, SIDECAR_STATUS};
use magnetar_desired::mesh::{Enrolment, PodEnrolment};

/// How a set of pod labels enrols a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    None,
    Sidecar,
    Ambient,
}

pub fn mode_of(enrolment: &Enrolment) -> Mode {
    match enrolment {
        Enrolment::Disabled => Mode::None,
        Enrolment::Sidecar { .. } => Mode::Sidecar,
        Enrolment::Ambient => Mode::Ambient,
    }
}

/// The mode pod labels ask for (3.2).
pub fn mode_of_labels(labels: &BTreeMap<String, String>) -> Mode {
    let get = |k: &str| labels.get(k).map(String::as_str);
    if get(DATAPLANE_MODE) == Some("ambient") {
        Mode::Ambient
    } else if get(SIDECAR_INJECT) == Some("true") || labels.contains_key(ISTIO_REV) {
        Mode::Sidecar
    } else {
        Mode::None
    }
}

/// A pod's labels and annotations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl PodView {
    /// Carries any Istio enrolment annotation: a real mesh pod.
    pub fn has_istio_annotation(&self) -> bool {
        // Any redirection value, not only `enabled`: istio-cni wrote it.
        PodEnrolment::of(&self.annotations).has_sidecar() || self.annotations.contains_key(AMBIENT_REDIRECTION)
    }

    /// Enrolled in the mesh in `mode` ([`PodEnrolment`]: by annotation).
    pub fn enrolled(&self, mode: Mode) -> bool {
        let actual = PodEnrolment::of(&self.annotations);
        match mode {
            Mode::Sidecar => actual == PodEnrolment::Sidecar,
            Mode::Ambient => actual == PodEnrolment::Ambient,
            Mode::None => false,
        }
    }

    /// The Istio revision injected into the pod (from `sidecar.istio.io/status`).
    pub fn injected_revision(&self) -> Option<String> {
        let status = self.annotations.get(SIDECAR_STATUS)?;
        let v: serde_json::Value = serde_json::from_str(status).ok()?;
        v["revision"].as_str().map(str::to_string)
    }
}

/// What the migration decision looks at.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The mode the spec asks for.
    pub desired: Mode,
    /// Labels of the live StatefulSet's pod template (None: no StatefulSet).
    pub template_labels: Option<&'a BTreeMap<String, String>>,
    /// The StatefulSet is fully updated and Ready.
    pub settled: bool,
    pub pods: &'a [PodView],
    /// The last reconcile said the component was migrating.
    pub was_migrating: bool,
}

/// See the module documentation for the rule.
pub fn migrating(o: &Observed) -> bool {
    if o.desired == Mode::None {
        return false;
    }
    let Some(template) = o.template_labels else { return false };
    if mode_of_labels(template) != o.desired {
        return true;
    }
    if o.pods.iter().any(|p| mode_of_labels(&p.labels) != o.desired) {
        return true;
    }
    if o.pods.iter().any(PodView::has_istio_annotation) && !o.pods.iter().all(|p| p.enrolled(o.desired)) {
        return true;
    }
    o.was_migrating && !o.settled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn pod(l: &[(&str, &str)], a: &[(&str, &str)]) -> PodView {
        PodView { name: "p".into(), labels: labels(l), annotations: labels(a) }
    }

    const SIDECAR: &[(&str, &str)] = &[(SIDECAR_INJECT, "true")];
    const AMBIENT: &[(&str, &str)] = &[(DATAPLANE_MODE, "ambient"), (SIDECAR_INJECT, "false")];

    #[test]
    fn label_modes() {
        assert_eq!(mode_of_labels(&labels(SIDECAR)), Mode::Sidecar);
        assert_eq!(mode_of_labels(&labels(&[(ISTIO_REV, "canary")])), Mode::Sidecar);
        assert_eq!(mode_of_labels(&labels(AMBIENT)), Mode::Ambient);
        assert_eq!(mode_of_labels(&labels(&[(SIDECAR_INJECT, "false"), (DATAPLANE_MODE, "none")])), Mode::None);
    }

    #[test]
    fn new_component_and_steady_state_are_not_migrating() {
        let t = labels(SIDECAR);
        let pods = vec![pod(SIDECAR, &[]), pod(SIDECAR, &[])];
        let o =
            Observed { desired: Mode::Sidecar, template_labels: None, settled: false, pods: &[], was_migrating: false };
        assert!(!migrating(&o));
        let o = Observed {
            desired: Mode::Sidecar,
            template_labels: Some(&t),
            settled: true,
            pods: &pods,
            was_migrating: false,
        };
        assert!(!migrating(&o));
        // An image roll-out (not settled) is not a migration.
        let o = Observed { settled: false, ..o };
        assert!(!migrating(&o));
    }

    #[test]
    fn switch_to_ambient_migrates_until_every_pod_moved() {
        let old = labels(SIDECAR);
        let new = labels(AMBIENT);
        let mixed = vec![pod(AMBIENT, &[]), pod(SIDECAR, &[])];
        let moved = vec![pod(AMBIENT, &[]), pod(AMBIENT, &[])];
        let base = Observed {
            desired: Mode::Ambient,
            template_labels: Some(&old),
            settled: true,
            pods: &mixed,
            was_migrating: false,
        };
        assert!(migrating(&base), "template still sidecar");
        assert!(migrating(&Observed { template_labels: Some(&new), ..base.clone() }), "pods still sidecar");
        let done = Observed { template_labels: Some(&new), pods: &moved, ..base.clone() };
        assert!(!migrating(&done), "kwok pods: labels moved, settled, no Istio annotations");
        assert!(migrating(&Observed { settled: false, was_migrating: true, ..done.clone() }), "not yet Ready");
    }

    #[test]
    fn real_mesh_pods_must_be_enrolled_the_new_way() {
        let new = labels(AMBIENT);
        let half = vec![pod(AMBIENT, &[(AMBIENT_REDIRECTION, "enabled")]), pod(AMBIENT, &[])];
        let o = Observed {
            desired: Mode::Ambient,
            template_labels: Some(&new),
            settled: true,
            pods: &half,
            was_migrating: true,
        };
        assert!(migrating(&o));
        let all =
            vec![pod(AMBIENT, &[(AMBIENT_REDIRECTION, "enabled")]), pod(AMBIENT, &[(AMBIENT_REDIRECTION, "enabled")])];
        assert!(!migrating(&Observed { pods: &all, ..o }));
    }

    #[test]
    fn enrolment_and_revision_from_annotations() {
        let p = pod(SIDECAR, &[(SIDECAR_STATUS, r#"{"initContainers":["istio-init"],"revision":"canary"}"#)]);
        assert!(p.enrolled(Mode::Sidecar));
        assert!(!p.enrolled(Mode::Ambient));
        assert_eq!(p.injected_revision().as_deref(), Some("canary"));
        assert_eq!(pod(SIDECAR, &[(SIDECAR_STATUS, "garbage")]).injected_revision(), None);
        assert!(!pod(&[], &[]).enrolled(Mode::None));
    }

    #[test]
    fn disabled_is_never_migrating() {
        let t = labels(SIDECAR);
        let o =
            Observed { desired: Mode::None, template_labels: Some(&t), settled: false, pods: &[], was_migrating: true };
        assert!(!migrating(&o));
    }
}
