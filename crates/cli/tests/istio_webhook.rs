//! Istio's validating webhook admits every Istio object `magnetar render`
//! makes of every compatibility manifest and example (issue 9.3).
//!
//! The control plane runs a real istiod (magnetar-testenv
//! `Options::with_istiod`) whose webhook fails closed and judges every
//! Istio object. Each rendered Istio object is created with `dryRun=All`
//! and strict field validation: the API server runs the CRD schema, then
//! sends the object to istiod, which runs Istio's own validation (stricter
//! than the schema: regular expressions, host names, port and protocol
//! combinations, conflicting fields). Nothing is stored, so objects of
//! different manifests with the same name do not meet.

mod common;

use common::{manifests, render};
use magnetar_testenv::apply::{Applier, ensure_namespace, server_message};
use magnetar_testenv::crds::yaml_documents;
use magnetar_testenv::istiod::refused_by_istiod;

fn is_istio(obj: &serde_json::Value) -> bool {
    obj["apiVersion"].as_str().is_some_and(|v| v.contains(".istio.io/"))
}

#[tokio::test]
async fn istiods_webhook_admits_every_rendered_istio_object() {
    let options = magnetar_testenv::Options::default().with_istiod().label("webhook");
    let env = magnetar_testenv::shared(options).await.expect("control plane with istiod");
    let istiod = env.istiod().expect("istiod runs");
    let client = env.client().await.unwrap();
    // In the path, and strict: an object the schema accepts and Istio
    // does not is refused.
    refused_by_istiod(&client).await.expect("istiod refuses an invalid VirtualService");
    let before = istiod.validations().await.unwrap();

    let applier = Applier::new(client.clone(), "magnetar-render");
    let mut judged = 0;
    let mut refused = Vec::new();
    for path in manifests() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(yaml) = render(&path) else {
            eprintln!("{name}: not rendered (the compatibility tests judge that)");
            continue;
        };
        let objects: Vec<_> = yaml_documents(&yaml).unwrap().into_iter().filter(is_istio).collect();
        for obj in &objects {
            if let Some(ns) = obj["metadata"]["namespace"].as_str() {
                ensure_namespace(&client, ns).await.unwrap();
            }
            if let Err(e) = applier.create(obj, true).await {
                refused.push(format!(
                    "{name}: {} {}/{}: {}",
                    obj["kind"],
                    obj["metadata"]["namespace"].as_str().unwrap_or_default(),
                    obj["metadata"]["name"].as_str().unwrap_or_default(),
                    server_message(&e)
                ));
            }
        }
        eprintln!("{name}: {} Istio object(s) judged by istiod", objects.len());
        judged += objects.len();
    }
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    assert!(judged > 100, "only {judged} rendered Istio objects: did the manifests go missing?");

    // istiod saw every one of them (a schema refusal would never reach it).
    let after = istiod.validations().await.unwrap();
    let passed = after.passed - before.passed;
    assert!(passed >= judged as f64, "istiod validated {passed} objects, {judged} were sent");
    assert_eq!(after.failed, before.failed, "istiod refused something");
}
