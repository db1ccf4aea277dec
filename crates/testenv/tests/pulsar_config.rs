//! Pulsar's own configuration code judges every broker and proxy
//! configuration magnetar renders, as the start-up script leaves it.
//!
//! For every manifest of `../shared/compat` and `examples/`, the rendered
//! broker and proxy pods of ordinals 0 and 1 are run offline by the real
//! node's machinery (the container's script unchanged: the ConfigMap merged
//! into `conf/`, `PULSAR_PREFIX_` variables applied, the advertised
//! listeners formed from the pod's hostname). In configuration-check mode
//! the test image's `bin/pulsar broker|proxy` then loads the file with
//! Pulsar 4.0.6's `PulsarConfigurationLoader` into `ServiceConfiguration`
//! (or `ProxyConfiguration`) and runs `MultipleListenerValidator` and
//! `BindAddressValidator` (the proxy: `ProxyServiceStarter`'s checks). A
//! key that is neither a field of the configuration class nor one the
//! enabled protocol handler reads fails the test, and so does a script that
//! did not create the `statusFilePath` file before starting the server (the
//! probes' `/status.html` would answer 404), or a certificate, key or
//! trusted-CA file named by the TLS keys that Pulsar's PEM reader cannot
//! read.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use magnetar_desired::Object;
use magnetar_testenv::real_node::{self, Paths, Refs};
use serde::Deserialize;

fn manifests() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in [root.join("../shared/compat"), root.join("examples")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn render(path: &Path) -> Option<Vec<Object>> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    // Manifests magnetar refuses are the business of the compatibility
    // tests; only what renders can run.
    magnetar_desired::render::render(&[(name, text)]).ok().map(|r| r.objects)
}

/// Stand-ins for the Secrets a user creates (certificates, KoP's keystores
/// and their password, token keys and tokens): the file names pods mount.
/// Certificates are real (one self-signed certificate and its key, PEM):
/// Pulsar reads them. The rest are dummy bytes, 64 of them: Pulsar's token provider takes any
/// secret key, but an HMAC key under 256 bits is refused.
fn secrets(template: &PodTemplateSpec) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    static CERTIFICATE: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    let (cert, key) = CERTIFICATE.get_or_init(|| {
        let c = rcgen::generate_simple_self_signed(vec!["pulsar.example.com".to_string()]).unwrap();
        (c.cert.pem().into_bytes(), c.signing_key.serialize_pem().into_bytes())
    });
    let mut out: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let spec = template.spec.as_ref().unwrap();
    let stand_in = [b"stand-in".as_slice(); 8].concat();
    let files = [
        ("tls.crt", cert),
        ("ca.crt", cert),
        ("tls.key", key),
        ("keystore.jks", &stand_in),
        ("truststore.jks", &stand_in),
        ("secret.key", &stand_in),
        ("token", &stand_in),
    ];
    for v in spec.volumes.iter().flatten() {
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            let e = out.entry(name).or_default();
            for (f, bytes) in files {
                e.insert(f.to_string(), bytes.clone());
            }
        }
    }
    for c in &spec.containers {
        for e in c.env.iter().flatten() {
            if let Some(r) = e.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()) {
                out.entry(r.name.clone()).or_default().insert(r.key.clone(), b"changeit".to_vec());
            }
            // A `file://` value (StreamNative's oauth2-jwt example sets
            // tokenSecretKey so) names a key of a mounted Secret.
            let file = e.value.as_deref().and_then(|v| v.strip_prefix("file://"));
            if let Some((dir, key)) = file.and_then(|f| f.rsplit_once('/')) {
                let volume = c.volume_mounts.iter().flatten().find(|m| m.mount_path.trim_end_matches('/') == dir);
                let secret = volume.and_then(|m| spec.volumes.iter().flatten().find(|v| v.name == m.name));
                if let Some(name) = secret.and_then(|v| v.secret.as_ref()).and_then(|s| s.secret_name.clone()) {
                    out.entry(name).or_default().insert(key.to_string(), stand_in.clone());
                }
            }
        }
    }
    out
}

/// The pod the StatefulSet controller would create for `ordinal`.
fn pod(sts: &Object, ordinal: i32) -> (Pod, Refs) {
    let template: PodTemplateSpec = serde_json::from_value(sts.value["spec"]["template"].clone()).unwrap();
    let name = format!("{}-{ordinal}", sts.name);
    let mut spec = template.spec.clone().unwrap();
    spec.hostname = Some(name.clone());
    spec.subdomain = sts.value["spec"]["serviceName"].as_str().map(str::to_string);
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(name),
            namespace: sts.value["metadata"]["namespace"].as_str().map(str::to_string),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    };
    let refs = Refs { config_maps: BTreeMap::new(), secrets: secrets(&template) };
    (pod, refs)
}

#[derive(Debug, Default)]
struct Verdict {
    ok: bool,
    unknown: BTreeSet<String>,
    errors: Vec<String>,
    listeners: Vec<String>,
    /// Authentication providers Pulsar's AuthenticationService initialised.
    providers: Vec<String>,
    /// The internal client's authentication method, started.
    client_auth: Option<String>,
    /// TLS keys whose PEM files Pulsar read.
    tls_files: BTreeSet<String>,
}

fn verdict(stdout: &str) -> Verdict {
    let mut v = Verdict::default();
    for line in stdout.lines() {
        if let Some(k) = line.strip_prefix("unknown-key ") {
            v.unknown.insert(k.trim().to_string());
        } else if let Some(e) = line.strip_prefix("error ") {
            v.errors.push(e.to_string());
        } else if let Some(p) = line.strip_prefix("authentication-provider ") {
            v.providers.push(p.trim().to_string());
        } else if let Some(t) = line.strip_prefix("tls-file ") {
            v.tls_files.extend(t.split_whitespace().next().map(str::to_string));
        } else if let Some(m) = line.strip_prefix("client-authentication ") {
            v.client_auth = Some(m.trim().to_string());
        } else if let Some(l) = line.strip_prefix("listener ") {
            v.listeners.push(l.to_string());
        } else if line.trim() == "ok" {
            v.ok = true;
        }
    }
    v
}

/// The keys the protocol handlers named in `messagingProtocols` (brokers)
/// or the proxy extensions named in `proxyExtensions` (proxies) read.
fn handler_keys(conf: &str) -> BTreeSet<&'static str> {
    let protocols: Vec<String> = conf
        .lines()
        .filter_map(|l| l.strip_prefix("messagingProtocols=").or_else(|| l.strip_prefix("proxyExtensions=")))
        .flat_map(|p| p.split(',').map(str::trim).map(str::to_string))
        .collect();
    let mut keys = BTreeSet::new();
    for p in protocols {
        let table = match p.as_str() {
            "kafka" => support::protocol_keys::KOP,
            "mqtt" => support::protocol_keys::MOP,
            "amqp" => support::protocol_keys::AOP,
            _ => &[],
        };
        keys.extend(table.iter().copied());
    }
    keys
}

async fn check(
    file: &Path,
    objects: &[Object],
    workload: &Object,
    kind: &str,
    paths: &Paths,
    scratch: &Path,
) -> Vec<String> {
    let mut failures = Vec::new();
    let own = custom_keys(file, workload);
    let replicas = workload.value["spec"]["replicas"].as_i64().unwrap_or(1).clamp(1, 2) as i32;
    let config_maps: BTreeMap<String, BTreeMap<String, String>> = objects
        .iter()
        .filter(|o| o.kind == "ConfigMap")
        .map(|o| (o.name.clone(), serde_json::from_value(o.value["data"].clone()).unwrap_or_default()))
        .collect();
    for ordinal in 0..replicas {
        let (pod, mut refs) = pod(workload, ordinal);
        refs.config_maps = config_maps.clone();
        let name = pod.metadata.name.clone().unwrap();
        let dir = scratch.join(format!("{}-{name}", file.file_stem().unwrap().to_string_lossy()));
        let out = real_node::run_offline(
            &pod,
            &refs,
            paths,
            &dir,
            &[("MAGNETAR_CONFIG_CHECK", "1")],
            Duration::from_secs(180),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {name}: {e:#}", file.display()));
        let v = verdict(&out.stdout);
        let conf = config_maps.get(&workload.name).and_then(|d| d.values().next()).cloned().unwrap_or_default();
        let mut allowed = handler_keys(&conf);
        allowed.extend(support::protocol_keys::TOKEN_PROVIDER);
        // A key of the manifest's own config.custom is passed through as
        // the user wrote it: Pulsar ignores it when its class lacks it
        // (StreamNative's oauth2-jwt example sets the broker-only
        // authenticateOriginalAuthData on its proxy). Noted, not failed;
        // every key magnetar writes itself must be known.
        let (users, unknown): (Vec<&String>, Vec<&String>) =
            v.unknown.iter().filter(|k| !allowed.contains(k.as_str())).partition(|k| own.contains(k.as_str()));
        if !users.is_empty() {
            eprintln!(
                "{}: the manifest's own keys unknown to Pulsar's {kind} configuration: {users:?}",
                file.display()
            );
        }
        let what = format!("{} {kind} {name}", file.file_name().unwrap().to_string_lossy());
        eprintln!(
            "{what}: ok={} listeners={:?} unknown={:?} providers={:?} client_auth={:?} tls_files={:?} errors={:?}",
            v.ok, v.listeners, v.unknown, v.providers, v.client_auth, v.tls_files, v.errors
        );
        if !out.status.success() || !v.ok || !v.errors.is_empty() {
            failures.push(format!(
                "{what}: Pulsar refused the configuration ({}): {:?}\n--- stdout\n{}\n--- stderr (tail)\n{}",
                out.status,
                v.errors,
                out.stdout,
                out.stderr.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        // Security settings magnetar writes are loaded by Pulsar's own
        // classes: every provider initialised (the token provider read its
        // key), the internal client's plugin built and its token read.
        if conf.contains("\nauthenticationEnabled=true\n") && v.providers.is_empty() {
            failures.push(format!("{what}: authentication is on but no provider was initialised: {:?}", v.errors));
        }
        if conf.contains("\nbrokerClientAuthenticationPlugin=") && v.client_auth.is_none() {
            failures.push(format!("{what}: the internal client's authentication did not start: {:?}", v.errors));
        }
        // The server's certificate, key and trusted CAs as Pulsar reads them.
        for key in ["tlsCertificateFilePath", "tlsKeyFilePath", "tlsTrustCertsFilePath"] {
            if conf.contains(&format!("\n{key}=")) && !v.tls_files.contains(key) {
                failures.push(format!("{what}: Pulsar did not read the PEM file of {key}: {:?}", v.errors));
            }
        }
        // The probes' /status.html answers 200 only when the file named by
        // statusFilePath exists (Pulsar's VipStatus): the script must have
        // created it before starting the server.
        let installed = std::fs::read_to_string(dir.join(format!("image/conf/{kind}.conf"))).unwrap_or_default();
        match installed.lines().rev().find_map(|l| l.strip_prefix("statusFilePath=")).map(str::trim) {
            Some(path) if path.starts_with("/pulsar/") => {
                if !dir.join("image").join(&path["/pulsar/".len()..]).is_file() {
                    failures.push(format!("{what}: the status file {path} was not created before the server started"));
                }
            }
            other => failures.push(format!("{what}: statusFilePath is {other:?}: /status.html would answer 404")),
        }
        if !unknown.is_empty() {
            failures.push(format!("{what}: keys Pulsar and the enabled protocol handlers do not know: {unknown:?}"));
        }
    }
    failures
}

/// The keys of `config.custom` of the manifest's resource that `workload`
/// was rendered from (by kind and the pods' instance label).
fn custom_keys(file: &Path, workload: &Object) -> BTreeSet<String> {
    let labels = &workload.value["spec"]["template"]["metadata"]["labels"];
    let instance = labels["app.kubernetes.io/instance"].as_str().unwrap_or_default();
    let kind = match labels["app.kubernetes.io/component"].as_str() {
        Some("broker") => "PulsarBroker",
        _ => "PulsarProxy",
    };
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = BTreeSet::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let Ok(v) = serde_json::Value::deserialize(doc) else { continue };
        if v["kind"] == kind && v["metadata"]["name"] == instance {
            out.extend(v["spec"]["config"]["custom"].as_object().into_iter().flatten().map(|(k, _)| k.clone()));
        }
    }
    out
}

#[tokio::test]
async fn pulsar_accepts_every_rendered_broker_and_proxy_configuration() {
    let toolkit = tokio::task::spawn_blocking(magnetar_testenv::jvm_toolkit).await.unwrap().expect("JVM toolkit");
    let scratch = std::env::temp_dir().join(format!("magnetar-config-check-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let shim = real_node::build_bind_shim(&scratch).unwrap();
    let hosts = scratch.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let paths = Paths { toolkit, shim, hosts, claims: scratch.join("claims") };

    let mut failures = Vec::new();
    let mut checked = 0;
    for file in manifests() {
        let Some(objects) = render(&file) else { continue };
        for w in objects.iter().filter(|o| o.kind == "StatefulSet") {
            let component = w.value["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"].clone();
            let kind = match component.as_str() {
                Some("broker") => "broker",
                Some("proxy") => "proxy",
                _ => continue,
            };
            failures.extend(check(&file, &objects, w, kind, &paths, &scratch).await);
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(checked >= 5, "only {checked} broker and proxy workloads rendered");
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn handler_keys_follow_messaging_protocols() {
    let keys = handler_keys("a=b\nmessagingProtocols=kafka,mqtt\n");
    assert!(keys.contains("kafkaListeners"));
    assert!(keys.contains("mqttListeners"));
    assert!(!keys.contains("amqpListeners"));
    assert!(handler_keys("x=y\n").is_empty());
    let v = verdict("listener internal pulsar://a:6650\nunknown-key typo\nerror X: y\n");
    assert_eq!((v.ok, v.unknown.len(), v.errors.len()), (false, 1, 1));
}
