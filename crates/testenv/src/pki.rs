//! Certificates and keys of one control plane, generated in Rust (rcgen):
//! a CA, the API server's serving certificate, one client certificate per
//! component and the service-account signing key.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// An identity: PEM certificate and key.
pub(crate) struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Everything the control plane needs, written as files into a directory.
pub(crate) struct Pki {
    pub ca_pem: String,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    ca_params: CertificateParams,
    ca_key_pair: KeyPair,
}

impl Pki {
    pub fn generate(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = dn("magnetar-testenv-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key_pair = KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key_pair)?;
        let ca_pem = ca.pem();

        let issuer = Issuer::from_params(&ca_params, &ca_key_pair);
        let mut serving = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
            "10.96.0.1".to_string(),
        ])?;
        serving.distinguished_name = dn("kube-apiserver", None);
        serving.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key_pair = KeyPair::generate()?;
        let serving_cert = serving.signed_by(&serving_key_pair, &issuer)?;

        let sa_key_pair = KeyPair::generate()?;

        let write = |name: &str, content: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        Ok(Pki {
            ca_cert: write("ca.crt", &ca_pem)?,
            ca_key: write("ca.key", &ca_key_pair.serialize_pem())?,
            serving_cert: write("apiserver.crt", &serving_cert.pem())?,
            serving_key: write("apiserver.key", &serving_key_pair.serialize_pem())?,
            sa_key: write("sa.key", &sa_key_pair.serialize_pem())?,
            sa_pub: write("sa.pub", &sa_key_pair.public_key_pem())?,
            ca_pem,
            ca_params,
            ca_key_pair,
        })
    }

    /// A serving certificate for `names` (DNS names or IP addresses), signed
    /// by the CA: for servers the API server calls, such as webhooks.
    pub fn serving(&self, cn: &str, names: &[&str]) -> anyhow::Result<ClientCert> {
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key_pair);
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = dn(cn, None);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(ClientCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A client certificate for user `cn` in group `org` (if any).
    pub fn client(&self, cn: &str, org: Option<&str>) -> anyhow::Result<ClientCert> {
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key_pair);
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(cn, org);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(ClientCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(org) = org {
        dn.push(DnType::OrganizationName, org);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

/// A kubeconfig with everything embedded, so it can be copied elsewhere.
pub(crate) fn kubeconfig(server: &str, ca_pem: &str, client: &ClientCert, user: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "magnetar-dev", "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_pem),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(&client.cert_pem),
            "client-key-data": b64(&client.key_pem),
        }}],
        "contexts": [{"name": "magnetar-dev", "context": {"cluster": "magnetar-dev", "user": user}}],
        "current-context": "magnetar-dev",
    });
    serde_norway::to_string(&doc).expect("kubeconfig serializes")
}
