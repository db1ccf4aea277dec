//! The toolset Deployment of a PulsarCoordinator (SPEC 3.1): a long-running
//! pod with pulsar-admin and pulsar-client configured (client.conf) for the
//! first managed broker, for `kubectl exec`. Nothing at all unless
//! `spec.toolSet` is present and not disabled.

use std::collections::BTreeMap;

use kube::ResourceExt;
use magnetar_api::common::PodSpec;
use magnetar_api::{PulsarBroker, PulsarCoordinator};

use super::objects;
use super::workload::{self, PodParts, Probes};
use super::{config_files, pulsar_auth};
use crate::mesh::Enrolment;
use crate::names::Component;
use crate::paths::{CLIENT_TLS_DIR, TOOLSET_CLIENT_CONF};
use crate::ports::*;
use crate::{BuildContext, Object, Owner};

const C: Component = Component::Toolset;
/// Key of the generated client.conf entries in the ConfigMap.
pub const CLIENT_CONF: &str = "client.conf";

pub fn build(res: &PulsarCoordinator, brokers: &[&PulsarBroker], owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let Some(tool_set) = res.spec.tool_set.as_ref().filter(|t| t.enabled.unwrap_or(true)) else {
        return Vec::new();
    };
    let first = brokers.first().copied();
    let default_pod = PodSpec::default();
    let pod_spec = workload::with_pull_secrets(
        tool_set.pod.as_ref().unwrap_or(&default_pod),
        first.and_then(|b| b.spec.pod.as_ref()),
    );
    let pod_spec = pod_spec.as_ref();
    let credentials = tool_set.client_auth.as_ref().and_then(pulsar_auth::client);
    let data = BTreeMap::from([(
        CLIENT_CONF.to_string(),
        config_files::properties(
            "client.conf of the toolset",
            &client_entries(first, credentials.as_ref(), owner, ctx),
        ),
    )]);
    let (volumes, mounts) = credentials.map(|c| (c.volumes, c.mounts)).unwrap_or_default();
    // The toolset's own image, else the coordinator's, else the brokers'.
    let named = |i: &Option<String>| i.clone().filter(|i| !i.is_empty());
    let image =
        named(&tool_set.image).or_else(|| named(&res.spec.image)).or_else(|| first.and_then(|b| b.spec.image.clone()));
    let parts = PodParts {
        owner,
        component: C,
        image: workload::image(image.as_deref()),
        pull_policy: first.and_then(|b| b.spec.image_pull_policy),
        pod: pod_spec,
        // Enrolled like the brokers, so that it can reach STRICT brokers.
        enrolment: Enrolment::of(first.and_then(|b| b.spec.istio.as_ref())),
        script: start_script(),
        env: Vec::new(),
        ports: Vec::new(),
        config: &data,
        config_map: C.object_name(&owner.name),
        volumes,
        mounts,
        probes: Probes::same(workload::exec_probe(&format!("test -s {TOOLSET_CLIENT_CONF}")), 5),
    };
    let mut out = vec![
        workload::deployment(owner, C, tool_set.replicas.unwrap_or(1), parts),
        objects::config_map(owner, C, data),
        objects::pdb(owner, C),
    ];
    out.extend(objects::service_account(owner, C, pod_spec));
    out
}

/// webServiceUrl and brokerServiceUrl of the first broker's Service (in the
/// broker's namespace), and the credentials of `toolSet.clientAuth`; empty
/// without brokers (the tools' defaults). A client certificate needs TLS:
/// with one, and brokers serving TLS (`spec.tls`), the URLs are their TLS
/// ports and the certificate's Secret's `ca.crt` is trusted.
fn client_entries(
    broker: Option<&PulsarBroker>,
    credentials: Option<&pulsar_auth::Client>,
    owner: &Owner,
    ctx: &BuildContext,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(c) = credentials {
        out.extend(c.custom.clone());
        out.insert("authPlugin".to_string(), c.plugin.clone());
        out.insert("authParams".to_string(), c.params.clone());
    }
    let Some(b) = broker else { return out };
    let namespace = b.namespace().unwrap_or_else(|| owner.namespace.clone());
    let host = ctx.service_host(&Component::Broker.object_name(&b.name_any()), &namespace);
    if crate::listeners::own_tls(b).is_some() && credentials.is_some_and(|c| c.certificate) {
        out.insert("webServiceUrl".to_string(), format!("https://{host}:{HTTPS}/"));
        out.insert("brokerServiceUrl".to_string(), format!("pulsar+ssl://{host}:{PULSAR_TLS}/"));
        out.insert("tlsTrustCertsFilePath".to_string(), format!("{CLIENT_TLS_DIR}/ca.crt"));
    } else {
        out.insert("webServiceUrl".to_string(), format!("http://{host}:{HTTP}/"));
        out.insert("brokerServiceUrl".to_string(), format!("pulsar://{host}:{PULSAR}/"));
    }
    out
}

/// Installs client.conf and waits; stops promptly on SIGTERM.
fn start_script() -> String {
    config_files::shell(&format!(
        "{}trap 'exit 0' TERM INT\nwhile true; do sleep 3600 & wait $!; done\n",
        config_files::install_conf_script(CLIENT_CONF)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::test_util::*;

    fn coordinator(yaml_spec: &str) -> PulsarCoordinator {
        resource("pc", &format!("  image: img\n{yaml_spec}"))
    }

    fn broker(istio: &str) -> PulsarBroker {
        resource("b1", &format!("  zkServers: zk:2181\n{istio}"))
    }

    fn objects(c: &PulsarCoordinator, brokers: &[&PulsarBroker]) -> Vec<Object> {
        build(c, brokers, &Owner::of(c), &BuildContext::default())
    }

    #[test]
    fn nothing_without_tool_set_or_when_disabled() {
        let b = broker("");
        assert!(objects(&coordinator(""), &[&b]).is_empty());
        assert!(objects(&coordinator("  toolSet: {enabled: false}\n"), &[&b]).is_empty());
    }

    #[test]
    fn tool_set_points_at_the_first_broker() {
        let b = broker("");
        let o = objects(&coordinator("  toolSet: {}\n"), &[&b]);
        for (kind, name) in
            [("Deployment", "pc-toolset"), ("ConfigMap", "pc-toolset"), ("ServiceAccount", "pc-toolset")]
        {
            assert!(has(&o, kind, name), "{kind} {name}");
        }
        let c = config_file(&o, "pc-toolset", CLIENT_CONF);
        assert!(c.contains("webServiceUrl=http://b1-broker.pulsar.svc.cluster.local:8080/\n"));
        assert!(c.contains("brokerServiceUrl=pulsar://b1-broker.pulsar.svc.cluster.local:6650/\n"));
        assert_eq!(deployment_spec(&o, "pc-toolset").replicas, Some(1));
        let d = find(&o, "Deployment", "pc-toolset");
        assert!(script(d).contains("sleep 3600"));
        assert!(main_container(d).ports.is_none());
    }

    /// The toolset runs the brokers' image: it inherits their pull secrets
    /// unless its own pod names some.
    #[test]
    fn tool_set_inherits_the_brokers_image_pull_secrets() {
        let b = broker("  pod: {imagePullSecrets: [{name: regcred}]}\n");
        let pull = |o: &[Object]| {
            let secrets = pod_spec(o, "Deployment", "pc-toolset").image_pull_secrets.unwrap_or_default();
            secrets.into_iter().map(|r| r.name).collect::<Vec<_>>()
        };
        assert_eq!(pull(&objects(&coordinator("  toolSet: {}\n"), &[&b])), ["regcred"]);
        let own = coordinator("  toolSet: {pod: {imagePullSecrets: [{name: mine}]}}\n");
        assert_eq!(pull(&objects(&own, &[&b])), ["mine"]);
    }

    /// `toolSet.clientAuth`: pulsar-admin presents the token from the
    /// mounted Secret (never in the ConfigMap); a client certificate goes
    /// to the brokers' TLS ports when they serve TLS.
    #[test]
    fn tool_set_presents_its_client_credentials() {
        let b = broker("");
        let o = objects(&coordinator("  toolSet: {clientAuth: {jwt: {secret: admin-token}}}\n"), &[&b]);
        let c = config_file(&o, "pc-toolset", CLIENT_CONF);
        assert!(c.contains("authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken\n"), "{c}");
        assert!(c.contains("authParams=file:///etc/pulsar/client-token/token\n"), "{c}");
        let volumes = pod_spec(&o, "Deployment", "pc-toolset").volumes.unwrap_or_default();
        let token = volumes.iter().find(|v| v.name == "client-token").expect("the token's volume");
        assert_eq!(token.secret.as_ref().and_then(|s| s.secret_name.as_deref()), Some("admin-token"));
        let mounts = main_container(find(&o, "Deployment", "pc-toolset")).volume_mounts.unwrap_or_default();
        assert!(mounts.iter().any(|m| m.mount_path == "/etc/pulsar/client-token" && m.read_only == Some(true)));

        let mtls = coordinator("  toolSet: {clientAuth: {mtls: {certSecretName: admin-tls}}}\n");
        let c = config_file(&objects(&mtls, &[&b]), "pc-toolset", CLIENT_CONF);
        assert!(c.contains("brokerServiceUrl=pulsar://b1-broker.pulsar.svc.cluster.local:6650/\n"), "{c}");
        let tls = broker("  tls: {enabled: true, certSecretName: broker-tls}\n");
        let c = config_file(&objects(&mtls, &[&tls]), "pc-toolset", CLIENT_CONF);
        for line in [
            "authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationTls",
            "authParams=tlsCertFile:/etc/tls/pulsar-client/tls.crt,tlsKeyFile:/etc/tls/pulsar-client/tls.key",
            "brokerServiceUrl=pulsar+ssl://b1-broker.pulsar.svc.cluster.local:6651/",
            "webServiceUrl=https://b1-broker.pulsar.svc.cluster.local:8443/",
            "tlsTrustCertsFilePath=/etc/tls/pulsar-client/ca.crt",
        ] {
            assert!(c.contains(&format!("{line}\n")), "{line} missing from\n{c}");
        }
        let err = crate::validate::coordinator(&coordinator(
            "  toolSet: {clientAuth: {jwt: {secret: t, token: eyJhbGciOi.x.y}}}\n",
        ))
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(err.contains("spec.toolSet.clientAuth.jwt.token: looks like a token itself"), "{err}");
    }

    #[test]
    fn tool_set_image_comes_first() {
        let b = broker("  image: broker:1\n");
        let image = |c: &PulsarCoordinator| main_container(find(&objects(c, &[&b]), "Deployment", "pc-toolset")).image;
        assert_eq!(image(&coordinator("  toolSet: {image: tools:2}\n")).as_deref(), Some("tools:2"));
        assert_eq!(image(&coordinator("  toolSet: {}\n")).as_deref(), Some("img"));
        let bare: PulsarCoordinator = resource("pc", "  toolSet: {}\n");
        assert_eq!(image(&bare).as_deref(), Some("broker:1"));
    }

    #[test]
    fn tool_set_follows_the_brokers_mesh_mode() {
        let b = broker("  istio: {enabled: true, dataplaneMode: ambient}\n");
        let o = objects(&coordinator("  toolSet: {replicas: 2}\n"), &[&b]);
        assert_eq!(deployment_spec(&o, "pc-toolset").replicas, Some(2));
        assert_eq!(template_meta(&o, "Deployment", "pc-toolset").0["istio.io/dataplane-mode"], "ambient");
        let b = broker("  istio: {enabled: true, revision: canary}\n");
        let o = objects(&coordinator("  toolSet: {}\n"), &[&b]);
        assert_eq!(template_meta(&o, "Deployment", "pc-toolset").0["istio.io/rev"], "canary");
    }
}
