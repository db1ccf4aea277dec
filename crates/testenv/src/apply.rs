//! Server-side apply of arbitrary JSON objects with strict field validation,
//! the way `kubectl apply --server-side --validate=strict` does it.

use std::collections::HashMap;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::Value;
use tokio::sync::Mutex;

/// Applies objects of any kind; API resources are discovered once per kind.
pub struct Applier {
    client: kube::Client,
    params: PatchParams,
    manager: String,
    cache: Mutex<HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>>,
}

impl Applier {
    /// Force-applies as `manager` with `fieldValidation=Strict`.
    pub fn new(client: kube::Client, manager: &str) -> Self {
        Applier {
            client,
            params: PatchParams::apply(manager).force().validation_strict(),
            manager: manager.to_string(),
            cache: Mutex::default(),
        }
    }

    /// The API for the object's apiVersion/kind (in its namespace if the kind
    /// is namespaced).
    pub async fn api_for(&self, obj: &Value) -> Result<Api<DynamicObject>, kube::Error> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let mut cache = self.cache.lock().await;
        if !cache.contains_key(&gvk) {
            let found = kube::discovery::pinned_kind(&self.client, &gvk).await?;
            cache.insert(gvk.clone(), found);
        }
        let (ar, caps) = &cache[&gvk];
        Ok(match (&caps.scope, obj["metadata"]["namespace"].as_str()) {
            (Scope::Namespaced, Some(ns)) if !ns.is_empty() => Api::namespaced_with(self.client.clone(), ns, ar),
            (Scope::Namespaced, _) => Api::default_namespaced_with(self.client.clone(), ar),
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), ar),
        })
    }

    /// Server-side applies `obj` (strict validation, forced).
    pub async fn apply(&self, obj: &Value) -> Result<DynamicObject, kube::Error> {
        let api = self.api_for(obj).await?;
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(name, &self.params, &Patch::Apply(obj)).await
    }
}

impl Applier {
    /// Creates `obj` the way `kubectl apply` (client-side) or `kubectl
    /// create` does for a new object: a POST with `fieldValidation=Strict`;
    /// with `dry_run` nothing is stored.
    pub async fn create(&self, obj: &Value, dry_run: bool) -> Result<DynamicObject, kube::Error> {
        let api = self.api_for(obj).await?;
        let mut url = format!("{}?fieldValidation=Strict&fieldManager={}", api.resource_url(), self.manager);
        if dry_run {
            url.push_str("&dryRun=All");
        }
        let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
        let req = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(kube::Error::HttpError)?;
        self.client.request(req).await
    }
}

/// The API server's own message for a refused request (the `Status`
/// message), or the error's text for anything else.
pub fn server_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Creates (or keeps) a namespace.
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<(), kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    api.patch(name, &PatchParams::apply("magnetar-testenv").force(), &Patch::Apply(&ns)).await?;
    Ok(())
}
