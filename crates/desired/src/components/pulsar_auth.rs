//! Pulsar's own security settings of a broker or proxy
//! (`config.authentication`, `config.authorization`, `config.clientAuth`)
//! as configuration entries and the Secrets they read, mounted read-only.
//! Credentials never enter a ConfigMap: the entries name files.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Volume, VolumeMount};
use magnetar_api::auth::{Authentication, ClientAuth};

use super::workload;
use crate::paths::{CLIENT_TLS_DIR, CLIENT_TOKEN_DIR};

pub const PROVIDER_TOKEN: &str = "org.apache.pulsar.broker.authentication.AuthenticationProviderToken";
pub const PROVIDER_TLS: &str = "org.apache.pulsar.broker.authentication.AuthenticationProviderTls";
pub const CLIENT_TOKEN: &str = "org.apache.pulsar.client.impl.auth.AuthenticationToken";
pub const CLIENT_TLS: &str = "org.apache.pulsar.client.impl.auth.AuthenticationTls";
/// The key of the token in `clientAuth.jwt.secret` when `token` is absent.
pub const DEFAULT_TOKEN_KEY: &str = "token";

/// The roles of `config.authorization` (the proxy has no proxyRoles).
#[derive(Clone, Copy, Debug, Default)]
pub struct Roles<'a> {
    pub super_users: Option<&'a str>,
    pub proxies: Option<&'a str>,
}

/// What one component's security settings add to its pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PulsarAuth {
    pub entries: BTreeMap<String, String>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

/// The entries, volumes and mounts of the three settings; `authorization`
/// is `None` when the resource has none.
pub fn of(authn: Option<&Authentication>, authz: Option<Roles>, client: Option<&ClientAuth>) -> PulsarAuth {
    let mut out = PulsarAuth::default();
    if let Some(a) = authn {
        authentication(a, &mut out.entries);
    }
    if let Some(r) = authz {
        out.entries.insert("authorizationEnabled".into(), "true".into());
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
                out.entries.insert(k.into(), v.into());
            }
        };
        put("superUserRoles", r.super_users);
        put("proxyRoles", r.proxies);
    }
    if let Some(c) = client {
        client_auth(c, &mut out);
    }
    out
}

/// Whether the typed settings turn authentication on.
pub fn authenticates(authn: Option<&Authentication>) -> bool {
    !providers(authn).is_empty()
}

fn providers(authn: Option<&Authentication>) -> Vec<&'static str> {
    let Some(a) = authn else { return vec![] };
    let mut v = Vec::new();
    if a.jwt.is_some() {
        v.push(PROVIDER_TOKEN);
    }
    if a.mtls.as_ref().and_then(|m| m.enabled).unwrap_or(false) {
        v.push(PROVIDER_TLS);
    }
    v
}

fn authentication(a: &Authentication, e: &mut BTreeMap<String, String>) {
    let providers = providers(Some(a));
    if providers.is_empty() {
        return;
    }
    e.insert("authenticationEnabled".into(), "true".into());
    e.insert("authenticationProviders".into(), providers.join(","));
    if let Some(jwt) = &a.jwt {
        let keys = [
            ("tokenAuthClaim", &jwt.token_auth_claim),
            ("tokenPublicKey", &jwt.token_public_key),
            ("tokenSecretKey", &jwt.token_secret_key),
        ];
        for (k, v) in keys {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                e.insert(k.into(), v.into());
            }
        }
    }
}

fn client_auth(c: &ClientAuth, out: &mut PulsarAuth) {
    let Some(client) = client(c) else { return };
    out.entries.extend(client.custom);
    out.entries.insert("brokerClientAuthenticationPlugin".into(), client.plugin);
    out.entries.insert("brokerClientAuthenticationParameters".into(), client.params);
    out.volumes.extend(client.volumes);
    out.mounts.extend(client.mounts);
}

/// The credentials of a `clientAuth`: a plugin, its parameters, further
/// entries, and the Secret they read, mounted read-only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Client {
    pub plugin: String,
    pub params: String,
    pub custom: BTreeMap<String, String>,
    /// A client certificate (`mtls`): its Secret's `ca.crt` can be trusted.
    pub certificate: bool,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

/// The plugin and parameters of `clientAuth`, None when it sets none.
pub fn client(c: &ClientAuth) -> Option<Client> {
    let mut out = Client::default();
    if let Some(g) = &c.generic {
        out.custom = g.custom.clone();
        (out.plugin, out.params) = (g.auth_plugin.clone(), g.auth_params.clone());
    } else if let Some(secret) = c.jwt.as_ref().and_then(|j| j.secret.as_deref()) {
        let key = c.jwt.as_ref().and_then(|j| j.token.as_deref()).unwrap_or(DEFAULT_TOKEN_KEY);
        out.volumes.push(workload::secret_volume("client-token", secret));
        out.mounts.push(workload::mount("client-token", CLIENT_TOKEN_DIR, true));
        (out.plugin, out.params) = (CLIENT_TOKEN.into(), format!("file://{CLIENT_TOKEN_DIR}/{key}"));
    } else if let Some(m) = &c.mtls {
        out.volumes.push(workload::secret_volume("client-tls", &m.cert_secret_name));
        out.mounts.push(workload::mount("client-tls", CLIENT_TLS_DIR, true));
        out.certificate = true;
        out.plugin = CLIENT_TLS.into();
        out.params = format!("tlsCertFile:{CLIENT_TLS_DIR}/tls.crt,tlsKeyFile:{CLIENT_TLS_DIR}/tls.key");
    } else {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_api::auth::*;

    fn jwt(secret_key: &str) -> Authentication {
        Authentication {
            jwt: Some(JwtAuthentication { token_secret_key: Some(secret_key.into()), ..Default::default() }),
            mtls: None,
        }
    }

    #[test]
    fn jwt_and_tls_authentication_name_both_providers() {
        let mut a = jwt("file:///etc/jwt/secret.key");
        a.mtls = Some(MtlsAuthentication { enabled: Some(true) });
        let e = of(Some(&a), None, None).entries;
        assert_eq!(e["authenticationEnabled"], "true");
        assert_eq!(e["authenticationProviders"], format!("{PROVIDER_TOKEN},{PROVIDER_TLS}"));
        assert_eq!(e["tokenSecretKey"], "file:///etc/jwt/secret.key");
        assert!(!e.contains_key("tokenPublicKey") && !e.contains_key("authorizationEnabled"));
    }

    #[test]
    fn mtls_off_is_no_authentication() {
        let a = Authentication { jwt: None, mtls: Some(MtlsAuthentication { enabled: Some(false) }) };
        assert!(!authenticates(Some(&a)));
        assert!(of(Some(&a), None, None).entries.is_empty());
        assert!(authenticates(Some(&jwt("x"))));
    }

    #[test]
    fn authorization_writes_the_roles_given() {
        let e = of(None, Some(Roles { super_users: Some("admin,ops"), proxies: Some(" ") }), None).entries;
        assert_eq!(e["authorizationEnabled"], "true");
        assert_eq!(e["superUserRoles"], "admin,ops");
        assert!(!e.contains_key("proxyRoles"), "a blank role list is no list");
    }

    #[test]
    fn client_token_is_a_mounted_file_never_a_value() {
        let c = ClientAuth {
            jwt: Some(JwtClientAuth { secret: Some("broker-token".into()), token: None }),
            ..Default::default()
        };
        let a = of(None, None, Some(&c));
        assert_eq!(a.entries["brokerClientAuthenticationPlugin"], CLIENT_TOKEN);
        assert_eq!(a.entries["brokerClientAuthenticationParameters"], format!("file://{CLIENT_TOKEN_DIR}/token"));
        assert_eq!(a.volumes[0].secret.as_ref().unwrap().secret_name.as_deref(), Some("broker-token"));
        assert_eq!(a.mounts[0].read_only, Some(true));
    }

    #[test]
    fn client_certificate_and_generic_plugins() {
        let c =
            ClientAuth { mtls: Some(MtlsClientAuth { cert_secret_name: "client-cert".into() }), ..Default::default() };
        let a = of(None, None, Some(&c));
        assert_eq!(a.entries["brokerClientAuthenticationPlugin"], CLIENT_TLS);
        assert!(a.entries["brokerClientAuthenticationParameters"].contains(&format!("{CLIENT_TLS_DIR}/tls.key")));
        let g = ClientAuth {
            generic: Some(GenericClientAuth {
                auth_plugin: "org.example.Auth".into(),
                auth_params: "file:///etc/creds".into(),
                custom: BTreeMap::from([("brokerClientTrustCertsFilePath".into(), "/etc/ca.crt".into())]),
            }),
            ..Default::default()
        };
        let a = of(None, None, Some(&g));
        assert_eq!(a.entries["brokerClientAuthenticationPlugin"], "org.example.Auth");
        assert_eq!(a.entries["brokerClientTrustCertsFilePath"], "/etc/ca.crt");
        assert!(a.volumes.is_empty());
    }
}
