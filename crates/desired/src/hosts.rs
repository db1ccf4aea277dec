//! External hostnames of brokers (SPEC 3.3).
//!
//! One function forms every per-broker host; the Gateway, VirtualServices,
//! ServiceEntries, advertised listeners, status and certificate check all
//! call it, so they cannot disagree.

use magnetar_api::broker::ServiceUrlGenerationPolicy;
use sha2::{Digest, Sha256};

/// Characters of the UID used by NameUIDPrefix.
pub const UID_PREFIX_LEN: usize = 8;
/// Ordinals are assumed to have at most this many digits when sizing names.
const MAX_ORDINAL_DIGITS: usize = 5;

/// The per-broker host is `prefix + ordinal + suffix`; the broker's start-up
/// script uses the same two strings with the ordinal from its pod name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    pub prefix: String,
    pub suffix: String,
    /// The main host (the advertised domain itself).
    pub main: String,
    /// False when NameUIDPrefix had no UID to work from (offline render).
    pub uid_known: bool,
}

impl HostPattern {
    /// Host of broker `ordinal`.
    pub fn host(&self, ordinal: i32) -> String {
        format!("{}{}{}", self.prefix, ordinal, self.suffix)
    }

    /// Hosts of brokers `0..replicas`.
    pub fn hosts(&self, replicas: i32) -> Vec<String> {
        (0..replicas.max(0)).map(|i| self.host(i)).collect()
    }
}

/// Builds the host pattern for a broker named `name` with `uid` (if known).
///
/// - OrdinalPrefix: `pb<i>-<domain>`
/// - FQDN: `<name>-broker-<i>.<domain>`
/// - NameUIDPrefix: `<name>-<first 8 of uid>-<i>.<domain>`, the name cut so
///   that the first label stays within 63 characters. Without a UID, the
///   first 8 hex digits of sha256(`namespace/name`) stand in (provisional).
pub fn pattern(
    policy: ServiceUrlGenerationPolicy,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
    domain: &str,
) -> HostPattern {
    let main = domain.to_string();
    let (prefix, suffix, uid_known) = match policy {
        ServiceUrlGenerationPolicy::OrdinalPrefix => ("pb".to_string(), format!("-{domain}"), true),
        ServiceUrlGenerationPolicy::Fqdn => (format!("{name}-broker-"), format!(".{domain}"), true),
        ServiceUrlGenerationPolicy::NameUIDPrefix => {
            let (uid8, known) = match uid.filter(|u| !u.is_empty()) {
                Some(u) => (uid_prefix(u), true),
                None => (provisional_uid(namespace, name), false),
            };
            let room = 63 - 1 - UID_PREFIX_LEN - 1 - MAX_ORDINAL_DIGITS;
            let mut short: String = name.chars().take(room).collect();
            while short.ends_with('-') || short.ends_with('.') {
                short.pop();
            }
            let short = short.replace('.', "-");
            (format!("{short}-{uid8}-"), format!(".{domain}"), known)
        }
    };
    HostPattern { prefix, suffix, main, uid_known }
}

fn uid_prefix(uid: &str) -> String {
    uid.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).take(UID_PREFIX_LEN).collect()
}

fn provisional_uid(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    digest.iter().take(UID_PREFIX_LEN / 2).map(|b| format!("{b:02x}")).collect()
}

/// The longest DNS label of `host` (the first, in practice).
pub fn longest_label(host: &str) -> usize {
    host.split('.').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceUrlGenerationPolicy::*;

    #[test]
    fn ordinal_prefix_matches_the_guide() {
        let p = pattern(OrdinalPrefix, "pulsar", "private-cloud", None, "pulsar.example.com");
        assert_eq!(p.hosts(2), ["pb0-pulsar.example.com", "pb1-pulsar.example.com"]);
        assert_eq!(p.main, "pulsar.example.com");
    }

    #[test]
    fn fqdn_puts_the_pod_name_under_the_domain() {
        let p = pattern(Fqdn, "pulsar", "private-cloud", None, "httpbin.example.com");
        assert_eq!(p.host(0), "private-cloud-broker-0.httpbin.example.com");
    }

    #[test]
    fn name_uid_prefix_uses_the_uid_and_stays_a_dns_label() {
        let p = pattern(NameUIDPrefix, "ns", "pc", Some("3F2a9c1e-0000-4000-8000-000000000000"), "d.io");
        assert!(p.uid_known);
        assert_eq!(p.host(3), "pc-3f2a9c1e-3.d.io");
        let long = "a".repeat(60);
        let p = pattern(NameUIDPrefix, "ns", &long, Some("12345678"), "d.io");
        assert!(longest_label(&p.host(99_999)) <= 63);
    }

    #[test]
    fn name_uid_prefix_without_uid_is_stable_but_provisional() {
        let a = pattern(NameUIDPrefix, "ns", "pc", None, "d.io");
        let b = pattern(NameUIDPrefix, "ns", "pc", None, "d.io");
        assert_eq!(a, b);
        assert!(!a.uid_known);
        assert_ne!(a.host(0), pattern(NameUIDPrefix, "other", "pc", None, "d.io").host(0));
    }
}
