//! Pulsar's own security settings of brokers and proxies, StreamNative's
//! `config.authentication`, `config.authorization` and `config.clientAuth`.
//!
//! Their field names are Pulsar's configuration keys (tokenSecretKey,
//! superUserRoles, ...), and magnetar writes them as such; the mesh's mTLS
//! and AuthorizationPolicies are a separate layer (docs/security.md).

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// How the component authenticates its clients. Either method turns
/// `authenticationEnabled` on.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// JSON Web Tokens (Pulsar's AuthenticationProviderToken).
    pub jwt: Option<JwtAuthentication>,
    /// TLS client certificates (Pulsar's AuthenticationProviderTls).
    pub mtls: Option<MtlsAuthentication>,
}

/// Token authentication; the keys are Pulsar's, written as given.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuthentication {
    /// The claim that names the role (Pulsar's tokenAuthClaim). Default sub.
    pub token_auth_claim: Option<String>,
    /// The public key that verifies asymmetric tokens, as Pulsar reads it:
    /// `file:///path` (mount the Secret through pod.secretRefs) or
    /// `data:;base64,...`.
    pub token_public_key: Option<String>,
    /// The secret key that verifies symmetric tokens, as Pulsar reads it:
    /// `file:///path` (mount the Secret through pod.secretRefs).
    pub token_secret_key: Option<String>,
}

/// TLS client-certificate authentication.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtlsAuthentication {
    /// Accept clients by their TLS certificate.
    pub enabled: Option<bool>,
}

/// Who may do what on the brokers; turns `authorizationEnabled` on.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerAuthorization {
    /// Roles the proxies authenticate as, comma-separated (Pulsar's
    /// proxyRoles): the brokers then authorize the client's own role.
    pub proxy_roles: Option<String>,
    /// Roles with every permission, comma-separated (Pulsar's superUserRoles).
    pub super_user_roles: Option<String>,
}

/// Who may do what through the proxies; turns `authorizationEnabled` on.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyAuthorization {
    /// Roles with every permission, comma-separated (Pulsar's superUserRoles).
    pub super_user_roles: Option<String>,
}

/// The credentials the component presents to the brokers (Pulsar's
/// brokerClientAuthenticationPlugin and brokerClientAuthenticationParameters):
/// the brokers' internal client and the proxy's connections. One of the
/// three.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuth {
    /// Any authentication plugin, written as given.
    pub generic: Option<GenericClientAuth>,
    /// A token read from a Secret.
    pub jwt: Option<JwtClientAuth>,
    /// A TLS client certificate from a Secret.
    pub mtls: Option<MtlsClientAuth>,
}

/// An authentication plugin and its parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenericClientAuth {
    /// The plugin's parameters (brokerClientAuthenticationParameters; the
    /// toolset's authParams). Do
    /// not write a credential here: it would sit in a ConfigMap; point to a
    /// file mounted through pod.secretRefs instead.
    pub auth_params: String,
    /// The plugin's class (brokerClientAuthenticationPlugin; the toolset's
    /// authPlugin).
    #[schemars(length(min = 1))]
    pub auth_plugin: String,
    /// Further configuration entries the plugin reads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

/// A token the component presents, read from a Secret mounted read-only.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtClientAuth {
    /// The Secret, in the component's namespace, that holds the token.
    pub secret: Option<String>,
    /// The key of the token in that Secret. Default `token`.
    pub token: Option<String>,
}

/// A TLS client certificate the component presents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtlsClientAuth {
    /// The Secret with tls.crt and tls.key (cert-manager's layout).
    #[schemars(length(min = 1))]
    pub cert_secret_name: String,
}
