//! Is Istio installed? Discovery of the security.istio.io and
//! networking.istio.io groups, re-checked periodically by the operator so
//! that Istio installed later is picked up without a restart; and, at the
//! same re-checks, whether the control plane gives ServiceEntries addresses
//! (istiod's version and the mesh config's DNS capture flags).

use kube::Client;
use kube::discovery::{ApiGroup, ApiResource};

use crate::kinds::{ChildKind, ISTIO, NETWORKING_ISTIO, SECURITY_ISTIO};

/// `group` as the API server serves it; `None` when it does not.
async fn served(client: &Client, group: &str) -> Result<Option<ApiGroup>, kube::Error> {
    match kube::discovery::group(client, group).await {
        Ok(g) => Ok(Some(g)),
        Err(kube::Error::Discovery(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The Istio kinds magnetar produces, at the versions the API server
/// recommends; `None` when any of them is not served.
pub async fn istio(client: &Client) -> Result<Option<Vec<(ChildKind, ApiResource)>>, kube::Error> {
    let mut out = Vec::new();
    for group in [SECURITY_ISTIO, NETWORKING_ISTIO] {
        let Some(g) = served(client, group).await? else { return Ok(None) };
        for kind in ISTIO.iter().filter(|k| k.group == group) {
            let Some((ar, _)) = g.recommended_kind(kind.kind) else { return Ok(None) };
            out.push((*kind, ar));
        }
    }
    Ok(Some(out))
}

/// The kinds of an optional `group` (the Gateway API's, prometheus-operator's)
/// when the API server serves every one of them at the version magnetar
/// writes; `None` otherwise. For the Gateway API that is v1 (1.5 or later,
/// whose standard channel has TLSRoute v1): an older bundle, whose TLSRoute
/// is v1alpha2, cannot take magnetar's routes.
pub async fn optional(
    client: &Client,
    group: &str,
    kinds: &[ChildKind],
) -> Result<Option<Vec<(ChildKind, ApiResource)>>, kube::Error> {
    let Some(g) = served(client, group).await? else { return Ok(None) };
    let at_version = |kind: &ChildKind| {
        let served = g.versioned_resources(kind.version).into_iter().find(|(ar, _)| ar.kind == kind.kind);
        served.map(|(ar, _)| (*kind, ar))
    };
    Ok(kinds.iter().map(at_version).collect())
}

/// Where the Istio control plane is read from.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// istiod's Deployment (the default revision).
pub const ISTIOD: &str = "istiod";
/// The mesh config: ConfigMap `istio`, key `mesh` (YAML).
pub const MESH_CONFIG: &str = "istio";
pub const DNS_CAPTURE: &str = "ISTIO_META_DNS_CAPTURE";
pub const DNS_AUTO_ALLOCATE: &str = "ISTIO_META_DNS_AUTO_ALLOCATE";
/// MeshConfigured reason when per-broker ServiceEntries lack DNS capture.
pub const REASON_DNS_CAPTURE_OFF: &str = "DNSCaptureOff";

/// What the operator knows of the Istio control plane's DNS proxying.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeshDns {
    /// `(major, minor)` from istiod's image tag, when istiod is found.
    pub istio_version: Option<(u32, u32)>,
    /// `defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE == "true"`.
    pub dns_capture: bool,
    /// `defaultConfig.proxyMetadata.ISTIO_META_DNS_AUTO_ALLOCATE == "true"`.
    pub auto_allocate: bool,
}

impl MeshDns {
    /// Istio before 1.25 (DNS capture and auto-allocation are the default
    /// from 1.25) without both proxyMetadata flags. Unknown istiod: no.
    pub fn capture_off(&self) -> bool {
        let old = self.istio_version.is_some_and(|(major, minor)| major == 1 && minor < 25);
        old && !(self.dns_capture && self.auto_allocate)
    }
}

/// `(major, minor)` of an image tag (`docker.io/istio/pilot:1.24.2-distroless` → (1, 24)).
pub fn image_version(image: &str) -> Option<(u32, u32)> {
    let last = image.rsplit('/').next()?;
    let last = last.split('@').next()?;
    let tag = last.split_once(':')?.1;
    let mut parts = tag.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The two DNS flags of `defaultConfig.proxyMetadata` in a mesh config (YAML).
pub fn dns_flags(mesh: &str) -> (bool, bool) {
    let v: serde_json::Value = serde_norway::from_str(mesh).unwrap_or_default();
    let md = &v["defaultConfig"]["proxyMetadata"];
    let on = |k: &str| md[k].as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"));
    (on(DNS_CAPTURE), on(DNS_AUTO_ALLOCATE))
}

/// The MeshConfigured warning of a component (pure): it has per-broker
/// ServiceEntries, runs in sidecar mode, and the control plane does not
/// give ServiceEntries addresses.
pub fn dns_warning(service_entries: bool, sidecar: bool, dns: &MeshDns) -> Option<(&'static str, String)> {
    if !(service_entries && sidecar && dns.capture_off()) {
        return None;
    }
    let version = dns.istio_version.map(|(a, b)| format!("{a}.{b}")).unwrap_or_default();
    Some((
        REASON_DNS_CAPTURE_OFF,
        format!(
            "but Istio {version} runs without DNS capture and address auto-allocation, so the per-broker ServiceEntries \
             get no addresses and those sharing a port collide: set meshConfig.defaultConfig.proxyMetadata \
             {DNS_CAPTURE}: \"true\" and {DNS_AUTO_ALLOCATE}: \"true\" (ConfigMap {ISTIO_NAMESPACE}/{MESH_CONFIG}) and \
             restart the sidecars, or set istio.gateway.meshInternalHosts: false"
        ),
    ))
}

/// Reads istiod's image and the mesh config's DNS flags (absent objects
/// count as unknown istiod and flags off).
pub async fn mesh_dns(client: &Client) -> Result<MeshDns, kube::Error> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), ISTIO_NAMESPACE);
    let istio_version = deployments.get_opt(ISTIOD).await?.and_then(|d| {
        let containers = d.spec?.template.spec?.containers;
        let c = containers.iter().find(|c| c.name == "discovery").or(containers.first())?;
        image_version(c.image.as_deref()?)
    });
    let mut out = MeshDns { istio_version, ..MeshDns::default() };
    if istio_version.is_some() {
        let cms: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), ISTIO_NAMESPACE);
        if let Some(mesh) = cms.get_opt(MESH_CONFIG).await?.and_then(|c| c.data?.remove("mesh")) {
            (out.dns_capture, out.auto_allocate) = dns_flags(&mesh);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_versions_from_images() {
        assert_eq!(image_version("docker.io/istio/pilot:1.24.2"), Some((1, 24)));
        assert_eq!(image_version("gcr.io:443/istio/pilot:1.25.0-distroless"), Some((1, 25)));
        assert_eq!(image_version("istio/pilot:1.24.2@sha256:abc"), Some((1, 24)));
        assert_eq!(image_version("istio/pilot@sha256:abc"), None);
        assert_eq!(image_version("istio/pilot:latest"), None);
    }

    #[test]
    fn dns_flags_from_the_mesh_config() {
        let mesh = "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n";
        assert_eq!(dns_flags(mesh), (true, true));
        assert_eq!(
            dns_flags("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n"),
            (true, false)
        );
        assert_eq!(dns_flags("accessLogFile: /dev/stdout\n"), (false, false));
        assert_eq!(dns_flags(": not yaml ["), (false, false));
    }

    #[test]
    fn warns_only_for_sidecar_service_entries_on_istio_before_1_25_without_both_flags() {
        let v124 = MeshDns { istio_version: Some((1, 24)), ..MeshDns::default() };
        let (reason, msg) = dns_warning(true, true, &v124).unwrap();
        assert_eq!(reason, "DNSCaptureOff");
        for fix in ["ISTIO_META_DNS_CAPTURE", "ISTIO_META_DNS_AUTO_ALLOCATE", "meshInternalHosts: false", "1.24"] {
            assert!(msg.contains(fix), "{msg}");
        }
        let one = MeshDns { dns_capture: true, ..v124.clone() };
        assert!(dns_warning(true, true, &one).is_some(), "both flags are needed");
        let both = MeshDns { dns_capture: true, auto_allocate: true, ..v124.clone() };
        assert!(dns_warning(true, true, &both).is_none());
        assert!(dns_warning(false, true, &v124).is_none(), "no per-broker ServiceEntries");
        assert!(dns_warning(true, false, &v124).is_none(), "ambient mode");
        let v125 = MeshDns { istio_version: Some((1, 25)), ..MeshDns::default() };
        assert!(dns_warning(true, true, &v125).is_none(), "the default from 1.25");
        assert!(dns_warning(true, true, &MeshDns::default()).is_none(), "istiod not found: no guess");
    }
}
