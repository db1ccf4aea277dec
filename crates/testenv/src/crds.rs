//! Installing CustomResourceDefinitions and waiting until they are served.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;

const FIELD_MANAGER: &str = "magnetar-testenv";

/// magnetar's own CRDs, as JSON.
pub fn magnetar_crds() -> Vec<Value> {
    magnetar_api::crds().into_iter().map(|crd| serde_json::to_value(crd).expect("CRDs serialize")).collect()
}

/// The CRDs in a multi-document YAML file (Istio's
/// `customresourcedefinitions.gen.yaml`); empty documents are skipped.
pub fn crds_from_yaml_file(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs = yaml_documents(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut out = Vec::new();
    for doc in docs {
        if doc["kind"] != "CustomResourceDefinition" {
            bail!("{}: unexpected document of kind {}", path.display(), doc["kind"]);
        }
        out.push(doc);
    }
    if out.is_empty() {
        bail!("{} holds no CRD", path.display());
    }
    Ok(out)
}

/// Every non-empty document of a multi-document YAML string.
pub fn yaml_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(de).with_context(|| format!("document {}", i + 1))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Server-side applies every CRD, then waits until each is Established.
pub async fn install(client: &kube::Client, crds: &[Value], timeout: Duration) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let applies = crds.iter().map(|crd| {
        let api = api.clone();
        let pp = pp.clone();
        async move {
            let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
            api.patch(&name, &pp, &Patch::Apply(crd)).await.with_context(|| format!("applying CRD {name}"))?;
            Ok::<_, anyhow::Error>(name)
        }
    });
    let names = futures::future::try_join_all(applies).await?;
    let waits = names.iter().map(|name| {
        let api = api.clone();
        async move {
            tokio::time::timeout(timeout, await_condition(api, name, conditions::is_crd_established()))
                .await
                .with_context(|| format!("CRD {name} not Established within {timeout:?}"))?
                .with_context(|| format!("watching CRD {name}"))?;
            Ok::<_, anyhow::Error>(())
        }
    });
    futures::future::try_join_all(waits).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_crd_files_hold_the_kinds_magnetar_generates() {
        let b = crate::Binaries::locate().unwrap();
        for version in [crate::ISTIO_GUIDE, crate::ISTIO_NEWEST] {
            let crds = crds_from_yaml_file(&b.istio_crds(version).unwrap()).unwrap();
            let names: Vec<&str> = crds.iter().filter_map(|c| c["metadata"]["name"].as_str()).collect();
            for want in [
                "peerauthentications.security.istio.io",
                "authorizationpolicies.security.istio.io",
                "destinationrules.networking.istio.io",
                "gateways.networking.istio.io",
                "virtualservices.networking.istio.io",
                "serviceentries.networking.istio.io",
            ] {
                assert!(names.contains(&want), "Istio {version}: no {want} in {names:?}");
            }
        }
    }

    /// Both channels serve v1 Gateway, HTTPRoute and TLSRoute, the kinds
    /// and version magnetar emits (TLSRoute is v1 from Gateway API 1.5).
    #[test]
    fn gateway_api_crd_files_serve_the_v1_kinds_magnetar_generates() {
        let b = crate::Binaries::locate().unwrap();
        for channel in ["standard", "experimental"] {
            let crds = crds_from_yaml_file(&b.gateway_api_crds(channel).unwrap()).unwrap();
            for want in ["gateways", "httproutes", "tlsroutes"] {
                let name = format!("{want}.gateway.networking.k8s.io");
                let crd = crds.iter().find(|c| c["metadata"]["name"] == name.as_str());
                let crd = crd.unwrap_or_else(|| panic!("{channel}: no {name}"));
                let v1 = crd["spec"]["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["name"] == "v1" && v["served"] == true);
                assert!(v1, "{channel}: {name} does not serve v1");
                let bundle = &crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"];
                assert_eq!(bundle, crate::GATEWAY_API_VERSION, "{channel}: {name}");
            }
        }
    }

    #[test]
    fn yaml_documents_skips_empty_documents() {
        let docs = yaml_documents("---\n# only a comment\n---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]);
    }

    #[test]
    fn magnetar_crds_are_five() {
        assert_eq!(magnetar_crds().len(), 5);
    }
}
