//! Mesh enrolment of pods: labels and annotations (SPEC 3.2).

use std::collections::BTreeMap;

use magnetar_api::istio::{DataplaneMode, MeshSettings};
use magnetar_api::labels::{
    AMBIENT_REDIRECTION, DATAPLANE_MODE, ISTIO_REV, PROXY_CONFIG, SIDECAR_INJECT, SIDECAR_STATUS,
};

/// How a running pod is enrolled, from the annotations Istio writes on it:
/// `sidecar.istio.io/status` by the injector, `ambient.istio.io/redirection:
/// enabled` by istio-cni (SPEC 3.2: by annotation, not by counting
/// containers, which a native sidecar or another injector would fool). The
/// one definition the status, the migration and the doctor use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodEnrolment {
    None,
    Sidecar,
    Ambient,
    /// Injected and redirected: mid-migration, enrolled neither way.
    Both,
}

impl PodEnrolment {
    pub fn of(annotations: &BTreeMap<String, String>) -> Self {
        let sidecar = annotations.contains_key(SIDECAR_STATUS);
        let ambient = annotations.get(AMBIENT_REDIRECTION).map(String::as_str) == Some("enabled");
        match (sidecar, ambient) {
            (false, false) => Self::None,
            (true, false) => Self::Sidecar,
            (false, true) => Self::Ambient,
            (true, true) => Self::Both,
        }
    }

    pub fn has_sidecar(self) -> bool {
        matches!(self, Self::Sidecar | Self::Both)
    }

    pub fn is_redirected(self) -> bool {
        matches!(self, Self::Ambient | Self::Both)
    }
}

/// How a component's pods join the mesh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enrolment {
    /// Out of the mesh (and out of an ambient namespace).
    Disabled,
    /// A sidecar from the default revision (`None`) or revision R.
    Sidecar { revision: Option<String> },
    /// ztunnel; no sidecar.
    Ambient,
}

impl Enrolment {
    /// Reads the enrolment from a component's `spec.istio`.
    pub fn of<M: MeshSettings>(istio: Option<&M>) -> Self {
        match istio {
            Some(m) if m.enabled() => match m.dataplane_mode() {
                DataplaneMode::Ambient => Self::Ambient,
                DataplaneMode::Sidecar => Self::Sidecar { revision: m.revision().map(str::to_string) },
            },
            _ => Self::Disabled,
        }
    }

    /// `none`, `sidecar` or `ambient`, as the status shows it.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Self::Disabled => "none",
            Self::Sidecar { .. } => "sidecar",
            Self::Ambient => "ambient",
        }
    }

    pub fn enabled(&self) -> bool {
        !matches!(self, Self::Disabled)
    }

    /// Pod template labels: `base` (selector and common labels), the user's
    /// `pod.labels`, and the enrolment labels. With Istio disabled the user's
    /// labels win (the older guide enrols ZooKeeper that way); with Istio
    /// enabled magnetar owns the three enrolment labels.
    pub fn pod_labels(
        &self,
        base: &BTreeMap<String, String>,
        user: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let owned = [SIDECAR_INJECT, ISTIO_REV, DATAPLANE_MODE];
        if self.enabled() {
            // Magnetar owns the enrolment labels: drop the user's.
            out.extend(user.iter().filter(|(k, _)| !owned.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())));
        }
        match self {
            Self::Disabled => {
                out.insert(SIDECAR_INJECT.into(), "false".into());
                out.insert(DATAPLANE_MODE.into(), "none".into());
                // The user's labels win while Istio is disabled.
                out.extend(user.clone());
            }
            Self::Sidecar { revision: None } => {
                out.insert(SIDECAR_INJECT.into(), "true".into());
            }
            Self::Sidecar { revision: Some(r) } => {
                out.insert(ISTIO_REV.into(), r.clone());
            }
            Self::Ambient => {
                out.insert(DATAPLANE_MODE.into(), "ambient".into());
                out.insert(SIDECAR_INJECT.into(), "false".into());
            }
        }
        // Selector labels always win: the workload must select its pods.
        out.extend(base.clone());
        out
    }

    /// Pod template annotations: the user's, plus, in sidecar mode,
    /// `holdApplicationUntilProxyStarts: true` merged into
    /// `proxy.istio.io/config`.
    pub fn pod_annotations(&self, user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = user.clone();
        if let Self::Sidecar { .. } = self {
            let merged = merge_proxy_config(user.get(PROXY_CONFIG).map(String::as_str));
            out.insert(PROXY_CONFIG.into(), merged);
        }
        out
    }
}

/// Merges `holdApplicationUntilProxyStarts: true` into a ProxyConfig
/// annotation value (YAML). A value that does not parse as a mapping is kept
/// and the setting appended on a line of its own.
pub fn merge_proxy_config(user: Option<&str>) -> String {
    const KEY: &str = "holdApplicationUntilProxyStarts";
    let Some(user) = user.filter(|u| !u.trim().is_empty()) else {
        return format!("{KEY}: true\n");
    };
    match serde_norway::from_str::<serde_norway::Value>(user) {
        Ok(serde_norway::Value::Mapping(mut m)) => {
            m.insert(KEY.into(), true.into());
            serde_norway::to_string(&m).unwrap_or_else(|_| format!("{user}\n{KEY}: true\n"))
        }
        _ => format!("{}\n{KEY}: true\n", user.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn ambient_overrides_a_leftover_inject_label() {
        let l = Enrolment::Ambient.pod_labels(&map(&[]), &map(&[(SIDECAR_INJECT, "true"), (ISTIO_REV, "r1")]));
        assert_eq!(l, map(&[(SIDECAR_INJECT, "false"), (DATAPLANE_MODE, "ambient")]));
    }

    #[test]
    fn disabled_lets_user_labels_win() {
        let l = Enrolment::Disabled.pod_labels(&map(&[]), &map(&[(SIDECAR_INJECT, "true")]));
        assert_eq!(l, map(&[(SIDECAR_INJECT, "true"), (DATAPLANE_MODE, "none")]));
    }

    #[test]
    fn sidecar_with_revision_uses_the_rev_label_only() {
        let l = Enrolment::Sidecar { revision: Some("canary".into()) }.pod_labels(&map(&[]), &map(&[]));
        assert_eq!(l, map(&[(ISTIO_REV, "canary")]));
    }

    #[test]
    fn proxy_config_is_merged_not_replaced() {
        let v = merge_proxy_config(Some("concurrency: 2\n"));
        let parsed: serde_norway::Value = serde_norway::from_str(&v).unwrap();
        assert_eq!(parsed["concurrency"], serde_norway::Value::from(2));
        assert_eq!(parsed["holdApplicationUntilProxyStarts"], serde_norway::Value::from(true));
    }
}
