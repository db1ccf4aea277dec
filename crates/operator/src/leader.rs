//! Leader election on a coordination.k8s.io/v1 Lease: one active operator;
//! the others wait. The holder renews every `lease_duration / 3`; a Lease
//! not renewed within `lease_duration` may be taken over. A leader that
//! cannot renew within `lease_duration · 2/3` steps down (its reconciles stop)
//! before anyone else may take over. A standby looks every second (one GET),
//! so a killed leader is replaced about `lease_duration` + 1 s after its last
//! renewal: with the default 12 s, within 15 s of the kill.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};

/// The default Lease duration: a killed leader is replaced within 15 s.
pub const DEFAULT_LEASE_SECONDS: u64 = 12;
/// A standby's look at the Lease (client-go retries every 2 s).
const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// Namespace of the Lease (usually the operator's own).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This instance's identity (its pod name).
    pub identity: String,
    pub lease_duration: Duration,
}

impl LeaderElection {
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderElection {
            namespace: namespace.into(),
            name: "magnetar-leader".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(DEFAULT_LEASE_SECONDS),
        }
    }

    fn renew_every(&self) -> Duration {
        self.lease_duration / 3
    }

    /// How often a standby looks whether the Lease can be taken.
    fn retry_every(&self) -> Duration {
        STANDBY_RETRY.min(self.renew_every())
    }
}

/// Whether `lease` may be taken by `me` at `now`.
pub fn can_take(lease: &Lease, me: &str, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() || holder == me {
        return true;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    match spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) {
        Some(MicroTime(t)) => t.checked_add(duration).map_or(true, |expiry| expiry < now),
        None => true,
    }
}

fn spec_for(le: &LeaderElection, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
    let same_holder = previous.and_then(|p| p.holder_identity.as_deref()) == Some(le.identity.as_str());
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(le.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(le.lease_duration.as_secs()).unwrap_or(15)),
        acquire_time: if same_holder { previous.and_then(|p| p.acquire_time.clone()) } else { Some(MicroTime(now)) },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if same_holder || previous.is_none() { transitions } else { transitions + 1 }),
        ..LeaseSpec::default()
    }
}

/// One attempt to acquire or renew. Ok(true) when this instance holds the
/// Lease afterwards.
pub async fn try_acquire(api: &Api<Lease>, le: &LeaderElection) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let written = match api.get_opt(&le.name).await? {
        None => {
            let metadata = ObjectMeta {
                name: Some(le.name.clone()),
                namespace: Some(le.namespace.clone()),
                ..ObjectMeta::default()
            };
            api.create(&PostParams::default(), &Lease { metadata, spec: Some(spec_for(le, None, now)) }).await
        }
        Some(lease) if !can_take(&lease, &le.identity, now) => return Ok(false),
        Some(mut lease) => {
            lease.spec = Some(spec_for(le, lease.spec.as_ref(), now));
            api.replace(&le.name, &PostParams::default(), &lease).await
        }
    };
    // 409: another instance wrote the Lease first.
    match written {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this instance holds the Lease.
pub async fn acquire(client: &Client, le: &LeaderElection) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &le.namespace);
    loop {
        match try_acquire(&api, le).await {
            Ok(true) => {
                tracing::info!(lease = %le.name, identity = %le.identity, "acquired the leader lease");
                return;
            }
            Ok(false) => tracing::debug!(lease = %le.name, "another instance leads; waiting"),
            Err(e) => tracing::warn!(error = %e, "leader election failed; retrying"),
        }
        tokio::time::sleep(le.retry_every()).await;
    }
}

/// Renews the Lease until renewal fails for too long or another instance
/// took it; returns then (leadership is lost).
pub async fn hold(client: &Client, le: &LeaderElection) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &le.namespace);
    let deadline = le.lease_duration * 2 / 3;
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(le.renew_every()).await;
        match try_acquire(&api, le).await {
            Ok(true) => last_ok = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::error!(lease = %le.name, "another instance took the leader lease");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the leader lease"),
        }
        if last_ok.elapsed() > deadline {
            tracing::error!(lease = %le.name, "could not renew the leader lease in time; stepping down");
            return;
        }
    }
}

/// Gives the Lease up (on shutdown), so that another instance takes over at once.
pub async fn release(client: &Client, le: &LeaderElection) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &le.namespace);
    if let Ok(Some(mut lease)) = api.get_opt(&le.name).await {
        let mine = lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(le.identity.as_str());
        if mine {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
            let _ = api.replace(&le.name, &PostParams::default(), &lease).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: i64) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn takeover_rules() {
        let now = Timestamp::from_second(1_000).unwrap();
        assert!(can_take(&lease(None, 999), "me", now));
        assert!(can_take(&lease(Some("me"), 999), "me", now));
        assert!(!can_take(&lease(Some("other"), 990), "me", now), "fresh lease of another");
        assert!(can_take(&lease(Some("other"), 980), "me", now), "expired");
        assert!(can_take(&Lease::default(), "me", now));
    }

    #[test]
    fn transitions_count_changes_of_holder() {
        let le = LeaderElection::new("ns", "me");
        let now = Timestamp::from_second(1_000).unwrap();
        let other = lease(Some("other"), 1).spec.unwrap();
        let s = spec_for(&le, Some(&other), now);
        assert_eq!(s.lease_transitions, Some(1));
        assert_eq!(s.holder_identity.as_deref(), Some("me"));
        let again = spec_for(&le, Some(&s), now);
        assert_eq!(again.lease_transitions, Some(1));
    }
}
