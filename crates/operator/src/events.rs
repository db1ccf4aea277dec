//! Kubernetes Events for what the operator did and why.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use crate::apply::Outcome;
use crate::context::Context;

/// Longest note an Event may carry (1 kB).
const MAX_NOTE: usize = 1000;

fn truncate(mut s: String) -> String {
    if s.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A list of objects for an Event note: the first few, then a count.
pub fn list(what: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s = what.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if what.len() > SHOWN {
        s.push_str(&format!(" and {} more", what.len() - SHOWN));
    }
    s
}

/// Publishes an Event about `obj`; failures are logged, never fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    publish_related(ctx, obj, None, type_, reason, action, note).await;
}

/// Publishes an Event about `obj` that concerns `related` too (an object of
/// its own, e.g. a restarted pod, so that Events about different objects are
/// not folded into one series).
pub async fn publish_related<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    related: Option<ObjectReference>,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev =
        Event { type_, reason: reason.into(), note: Some(truncate(note)), action: action.into(), secondary: related };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish an Event");
    }
}

/// Normal Events for what one apply pass did: the objects it applied and
/// the ones it deleted because the spec no longer asks for them.
pub async fn publish_outcome<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, o: &Outcome) {
    if !o.applied.is_empty() {
        let note = format!("applied {} object(s) to match the spec: {}", o.applied.len(), list(&o.applied));
        publish(ctx, obj, EventType::Normal, "Applied", "Apply", note).await;
    }
    if !o.deleted.is_empty() {
        let note = format!("deleted {} object(s) the spec no longer asks for: {}", o.deleted.len(), list(&o.deleted));
        publish(ctx, obj, EventType::Normal, "Deleted", "Delete", note).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_stay_within_limits() {
        assert_eq!(truncate("é".repeat(600)).len(), 999);
        let many: Vec<String> = (0..20).map(|i| format!("Service/s{i}")).collect();
        assert!(list(&many).ends_with("and 8 more"));
        assert_eq!(list(&many[..2]), "Service/s0, Service/s1");
    }
}
