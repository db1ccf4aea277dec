//! Is Istio installed? Discovery of the security.istio.io and
//! networking.istio.io groups, re-checked periodically by the operator so
//! that Istio installed later is picked up without a restart.

use kube::Client;
use kube::discovery::ApiResource;

use crate::kinds::{ChildKind, ISTIO, NETWORKING_ISTIO, SECURITY_ISTIO};

/// The Istio kinds magnetar produces, at the versions the API server
/// recommends; `None` when any of them is not served.
pub async fn istio(client: &Client) -> Result<Option<Vec<(ChildKind, ApiResource)>>, kube::Error> {
    let groups = client.list_api_groups().await?;
    let served = |g: &str| groups.groups.iter().any(|x| x.name == g);
    if !served(SECURITY_ISTIO) || !served(NETWORKING_ISTIO) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for group in [SECURITY_ISTIO, NETWORKING_ISTIO] {
        let g = match kube::discovery::group(client, group).await {
            Ok(g) => g,
            Err(kube::Error::Discovery(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        for kind in ISTIO.iter().filter(|k| k.group == group) {
            match g.recommended_kind(kind.kind) {
                Some((ar, _)) => out.push((*kind, ar)),
                None => return Ok(None),
            }
        }
    }
    Ok(Some(out))
}
