//! Workload objects of a BookKeeperCluster (SPEC 3.1): StatefulSet `<n>-bk`
//! with journal and ledgers volumes, Services `<n>-bk` and
//! `<n>-bk-headless`, ConfigMap, PDB, ServiceAccount; and the auto-recovery
//! Deployment `<n>-bk-auto-recovery` with its own ConfigMap, PDB and
//! ServiceAccount.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HPAScalingRules;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use magnetar_api::BookKeeperCluster;
use magnetar_api::bookkeeper::{AutoRecovery, BookieVolumes};
use magnetar_api::common::{AutoScalingPolicy, PodSpec};

use super::objects::{self, ServiceKind};
use super::workload::{self, ClaimDefaults, PodParts, Probes};
use super::{config_files, monitoring};
use crate::mesh::Enrolment;
use crate::names::Component;
use crate::paths::{JOURNAL_DIR, LEDGERS_DIR};
use crate::ports::*;
use crate::{BuildContext, Object, Owner};

const C: Component = Component::BookKeeper;
const AR: Component = Component::AutoRecovery;
/// Key of the generated bookkeeper.conf entries in the ConfigMaps.
pub const BOOKKEEPER_CONF: &str = "bookkeeper.conf";
const JOURNAL: &str = "journal";
const LEDGERS: &str = "ledgers";

fn ports() -> Vec<NamedPort> {
    vec![port("tcp-bookie", BOOKIE, "tcp"), port("http-web", BOOKIE_HTTP, "http")]
}

pub fn build(res: &BookKeeperCluster, owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    let mut out = bookies(res, owner);
    out.extend(auto_recovery(res, owner));
    out
}

fn bookies(res: &BookKeeperCluster, owner: &Owner) -> Vec<Object> {
    let spec = &res.spec;
    let default_pod = PodSpec::default();
    let pod_spec =
        monitoring::annotate(spec.pod.as_ref().unwrap_or(&default_pod), spec.monitoring.as_ref(), monitoring::BOOKIE);
    let pod_spec = pod_spec.as_ref();
    let no_custom = BTreeMap::new();
    let custom = spec.config.as_ref().map_or(&no_custom, |c| &c.custom);
    let (custom_conf, mut env) = config_files::split_custom(custom);
    let storage = spec.storage.as_ref();
    let class = storage.and_then(|s| s.storage_class_name.as_deref());
    let journal = Layout::of(owner, JOURNAL, JOURNAL_DIR, storage.and_then(|s| s.journal.as_ref()), "10Gi", class);
    let ledger_spec = storage.and_then(|s| s.ledger.as_ref().or(s.ledgers.as_ref()));
    let ledgers = Layout::of(owner, LEDGERS, LEDGERS_DIR, ledger_spec, "50Gi", class);
    let mut entries =
        bookie_entries(spec.zk_servers.as_deref(), spec.metadata_service_uri.as_deref(), &journal, &ledgers);
    if auto_recovery_replicas(res) > 0 {
        // Pulsar's conf/bookkeeper.conf turns autoRecoveryDaemonEnabled on
        // (BookKeeper's own default is off) and the image's lines stay where
        // magnetar sets nothing: every bookie would run an auditor and
        // replication worker beside the Deployment's. One place only.
        entries.insert("autoRecoveryDaemonEnabled".into(), "false".into());
    }
    entries.extend(spec.config.as_ref().map(|c| c.entries()).unwrap_or_default());
    entries.extend(custom_conf);
    let mut data = BTreeMap::from([(
        BOOKKEEPER_CONF.to_string(),
        config_files::properties("bookkeeper.conf of BookKeeperCluster", &entries),
    )]);
    config_files::add_log_config(spec.log_config.as_ref(), &mut data, &mut env);

    let claims: Vec<PersistentVolumeClaim> = journal.claims.into_iter().chain(ledgers.claims).collect();
    let parts = PodParts {
        owner,
        component: C,
        image: workload::image(spec.image.as_deref()),
        pull_policy: spec.image_pull_policy,
        pod: pod_spec,
        enrolment: Enrolment::of(spec.istio.as_ref()),
        script: bookie_script(),
        env,
        ports: ports(),
        config: &data,
        config_map: C.object_name(&owner.name),
        volumes: Vec::new(),
        mounts: journal.mounts.into_iter().chain(ledgers.mounts).collect(),
        probes: Probes {
            readiness: Some(workload::http_probe("/api/v1/bookie/is_ready", BOOKIE_HTTP)),
            ..Probes::same(workload::http_probe("/api/v1/bookie/state", BOOKIE_HTTP), 10)
        },
    };
    let reclaim = storage.and_then(|s| s.reclaim_policy);
    let replicas = workload::replicas(spec.replicas, spec.auto_scaling_policy.as_ref());
    let sts = workload::stateful_set(owner, C, replicas, C.headless_name(&owner.name), parts, claims, reclaim);
    let mut out = vec![
        Object::typed(&sts),
        objects::service(owner, C.object_name(&owner.name), C, &ports(), ServiceKind::ClusterIp),
        objects::service(owner, C.headless_name(&owner.name), C, &ports(), ServiceKind::Headless),
        objects::config_map(owner, C, data),
        objects::pdb(owner, C),
    ];
    out.extend(objects::service_account(owner, C, pod_spec));
    out.extend(spec.auto_scaling_policy.as_ref().map(|p| objects::hpa(owner, C, &scale_up_only(p))));
    let enrolment = Enrolment::of(spec.istio.as_ref());
    out.extend(monitoring::pod_monitor(owner, C, spec.monitoring.as_ref(), &enrolment, monitoring::BOOKIE));
    out
}

/// A bookie holds ledgers: removing one loses its copies until
/// auto-recovery re-replicates them. The autoscaler therefore only adds
/// bookies unless the user's `behavior.scaleDown` says how to remove them.
fn scale_up_only(policy: &AutoScalingPolicy) -> AutoScalingPolicy {
    let mut p = policy.clone();
    let behavior = p.behavior.get_or_insert_with(Default::default);
    if behavior.scale_down.is_none() {
        behavior.scale_down = Some(HPAScalingRules { select_policy: Some("Disabled".into()), ..Default::default() });
    }
    p
}

/// The journal or ledger volumes of a bookie laid out: one claim template
/// per volume, each mounted under its own path, and the directories
/// bookkeeper.conf lists (`numDirsPerVolume` on each volume). One volume
/// with one directory keeps the names and paths of before, so the
/// StatefulSet's claims of an existing cluster do not change.
struct Layout {
    claims: Vec<PersistentVolumeClaim>,
    mounts: Vec<VolumeMount>,
    dirs: Vec<String>,
}

impl Layout {
    fn of(owner: &Owner, name: &str, base: &str, v: Option<&BookieVolumes>, size: &str, class: Option<&str>) -> Layout {
        let volumes = v.and_then(|v| v.num_volumes).unwrap_or(1).max(1);
        let per_volume = v.and_then(|v| v.num_dirs_per_volume).unwrap_or(1).max(1);
        let defaults = ClaimDefaults {
            size: v.and_then(|v| v.size.clone()).unwrap_or_else(|| Quantity(size.into())),
            storage_class: class,
            template: v.and_then(|v| v.volume_claim_template.as_ref()),
            metadata: v.and_then(|v| v.metadata.as_ref()),
        };
        let mut out = Layout { claims: Vec::new(), mounts: Vec::new(), dirs: Vec::new() };
        for i in 0..volumes {
            let (claim, path) = if volumes == 1 {
                (name.to_string(), base.to_string())
            } else {
                (format!("{name}-{i}"), format!("{base}-{i}"))
            };
            if per_volume == 1 {
                out.dirs.push(path.clone());
            } else {
                // BookKeeper creates a missing directory (and its parents)
                // when it first checks the directory's layout.
                out.dirs.extend((0..per_volume).map(|d| format!("{path}/{d}")));
            }
            out.claims.push(workload::claim_from(owner, C, &claim, &defaults));
            out.mounts.push(workload::mount(&claim, &path, false));
        }
        out
    }
}

/// Settings a bookie needs. The HTTP server on 8000 serves the bookie API
/// (probes) and, with it on, the Prometheus metrics too. Bookies register
/// under their stable pod DNS name, so a rescheduled pod keeps its identity.
fn bookie_entries(
    zk_servers: Option<&str>,
    metadata_service_uri: Option<&str>,
    journal: &Layout,
    ledgers: &Layout,
) -> BTreeMap<String, String> {
    let mut e = metadata_entries(zk_servers, metadata_service_uri);
    for (k, v) in [
        ("bookiePort", BOOKIE.to_string()),
        ("journalDirectory", journal.dirs[0].clone()),
        ("journalDirectories", journal.dirs.join(",")),
        ("ledgerDirectories", ledgers.dirs.join(",")),
        ("httpServerEnabled", "true".to_string()),
        ("httpServerPort", BOOKIE_HTTP.to_string()),
        ("prometheusStatsHttpPort", BOOKIE_HTTP.to_string()),
        ("useHostNameAsBookieID", "true".to_string()),
    ] {
        e.insert(k.to_string(), v);
    }
    e
}

/// zkServers, and the equivalent metadataServiceUri (`;` between hosts)
/// unless the servers carry a chroot path, which the URI form cannot mix in.
/// An explicit `metadataServiceUri` (StreamNative's field; Oxia clusters use
/// `metadata-store:oxia://...`) replaces the derived one: BookKeeper reads
/// metadataServiceUri before zkServers, so zkServers, when also given, is
/// kept only for tools that still read it.
fn metadata_entries(zk_servers: Option<&str>, metadata_service_uri: Option<&str>) -> BTreeMap<String, String> {
    let mut e = BTreeMap::new();
    let zk = zk_servers.map(str::trim).filter(|z| !z.is_empty());
    if let Some(zk) = zk {
        e.insert("zkServers".to_string(), zk.to_string());
        if !zk.contains('/') {
            e.insert("metadataServiceUri".into(), format!("zk+hierarchical://{}/ledgers", zk.replace(',', ";")));
        }
    }
    if let Some(uri) = metadata_service_uri.map(str::trim).filter(|u| !u.is_empty()) {
        e.insert("metadataServiceUri".into(), uri.to_string());
    }
    e
}

/// Installs bookkeeper.conf, creates the cluster's BookKeeper metadata if
/// nobody has yet (the first bookie to get there wins; the others see the
/// instance id), then starts the bookie. This runs in the main container,
/// not an init container, so that it runs behind the sidecar.
fn bookie_script() -> String {
    config_files::shell(&format!(
        r#"{install}# Create the BookKeeper cluster metadata in the metadata store once.
until bin/bookkeeper shell whatisinstanceid; do
  bin/bookkeeper shell initnewcluster || sleep 5
done
exec bin/pulsar bookie
"#,
        install = config_files::install_conf_script(BOOKKEEPER_CONF)
    ))
}

/// Replicas of the auto-recovery Deployment (1 unless the spec says).
fn auto_recovery_replicas(res: &BookKeeperCluster) -> i32 {
    res.spec.auto_recovery.as_ref().and_then(|a| a.replicas).unwrap_or(1)
}

/// The auto-recovery Deployment and its plumbing; nothing with 0 replicas.
fn auto_recovery(res: &BookKeeperCluster, owner: &Owner) -> Vec<Object> {
    let spec = &res.spec;
    let default_ar = AutoRecovery::default();
    let ar = spec.auto_recovery.as_ref().unwrap_or(&default_ar);
    let replicas = auto_recovery_replicas(res);
    if replicas <= 0 {
        return Vec::new();
    }
    let default_pod = PodSpec::default();
    let pod_spec = workload::with_pull_secrets(ar.pod.as_ref().unwrap_or(&default_pod), spec.pod.as_ref());
    let pod_spec = pod_spec.as_ref();
    let zk = ar
        .conf
        .as_ref()
        .and_then(|c| c.zk_servers.as_deref())
        .filter(|z| !z.trim().is_empty())
        .or(spec.zk_servers.as_deref());
    let no_custom = BTreeMap::new();
    let custom = spec.config.as_ref().map_or(&no_custom, |c| &c.custom);
    let (custom_conf, env) = config_files::split_custom(custom);
    let mut entries = metadata_entries(zk, spec.metadata_service_uri.as_deref());
    // The metrics provider serves 8000 itself only while the HTTP server is off.
    entries.insert("httpServerEnabled".into(), "false".into());
    entries.insert("prometheusStatsHttpPort".into(), BOOKIE_HTTP.to_string());
    entries.extend(custom_conf);
    let data = BTreeMap::from([(
        BOOKKEEPER_CONF.to_string(),
        config_files::properties("bookkeeper.conf of the auto-recovery workers", &entries),
    )]);
    let parts = PodParts {
        owner,
        component: AR,
        image: workload::image(ar.image.as_deref().filter(|i| !i.is_empty()).or(spec.image.as_deref())),
        pull_policy: ar.image_pull_policy.or(spec.image_pull_policy),
        pod: pod_spec,
        enrolment: Enrolment::of(spec.istio.as_ref()),
        script: config_files::shell(&format!(
            "{}exec bin/bookkeeper autorecovery\n",
            config_files::install_conf_script(BOOKKEEPER_CONF)
        )),
        env,
        ports: vec![port("http-metrics", BOOKIE_HTTP, "http")],
        config: &data,
        config_map: AR.object_name(&owner.name),
        volumes: Vec::new(),
        mounts: Vec::new(),
        probes: Probes::same(workload::tcp_probe(BOOKIE_HTTP), 5),
    };
    let mut out = vec![
        workload::deployment(owner, AR, replicas, parts),
        objects::config_map(owner, AR, data),
        objects::pdb(owner, AR),
    ];
    out.extend(objects::service_account(owner, AR, pod_spec));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::test_util::*;

    fn bk(yaml_spec: &str) -> BookKeeperCluster {
        resource("pc", &format!("  image: img\n  zkServers: pc-zk:2181\n{yaml_spec}"))
    }

    fn objects(b: &BookKeeperCluster) -> Vec<Object> {
        build(b, &Owner::of(b), &BuildContext::default())
    }

    fn conf(o: &[Object], name: &str) -> String {
        config_file(o, name, BOOKKEEPER_CONF)
    }

    /// StreamNative's storage layout: numVolumes claims per kind, each
    /// mounted on its own path, numDirsPerVolume directories on each in
    /// bookkeeper.conf; the claim template's own size, class and access
    /// modes kept, the rest filled in.
    #[test]
    fn storage_layout_follows_num_volumes_and_dirs() {
        let o = objects(&bk(concat!(
            "  storage:\n",
            "    storageClassName: fallback\n",
            "    journal: {numVolumes: 2, numDirsPerVolume: 2, metadata: {annotations: {a: b}}}\n",
            "    ledger:\n",
            "      numDirsPerVolume: 3\n",
            "      volumeClaimTemplate: {accessModes: [ReadWriteOncePod], storageClassName: ssd, resources: {requests: {storage: 16Gi}}}\n",
        )));
        let sts = sts_spec(&o, "pc-bk");
        let claims = sts.volume_claim_templates.unwrap();
        let names: Vec<_> = claims.iter().map(|c| c.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["journal-0", "journal-1", "ledgers"]);
        let spec = |i: usize| claims[i].spec.clone().unwrap();
        assert_eq!(spec(0).storage_class_name.as_deref(), Some("fallback"));
        assert_eq!(spec(0).resources.unwrap().requests.unwrap()["storage"].0, "10Gi");
        assert_eq!(claims[0].metadata.annotations.as_ref().unwrap()["a"], "b");
        assert_eq!(spec(2).storage_class_name.as_deref(), Some("ssd"));
        assert_eq!(spec(2).access_modes.unwrap(), ["ReadWriteOncePod"]);
        assert_eq!(spec(2).resources.unwrap().requests.unwrap()["storage"].0, "16Gi");
        let mounts: Vec<(String, String)> = main_container(find(&o, "StatefulSet", "pc-bk"))
            .volume_mounts
            .unwrap()
            .into_iter()
            .map(|m| (m.name, m.mount_path))
            .collect();
        for (name, path) in [
            ("journal-0", "/pulsar/data/bookkeeper/journal-0"),
            ("journal-1", "/pulsar/data/bookkeeper/journal-1"),
            ("ledgers", "/pulsar/data/bookkeeper/ledgers"),
        ] {
            assert!(mounts.contains(&(name.to_string(), path.to_string())), "{name} at {path}: {mounts:?}");
        }
        let c = conf(&o, "pc-bk");
        assert!(c.contains(concat!(
            "journalDirectories=/pulsar/data/bookkeeper/journal-0/0,/pulsar/data/bookkeeper/journal-0/1,",
            "/pulsar/data/bookkeeper/journal-1/0,/pulsar/data/bookkeeper/journal-1/1\n"
        )));
        assert!(c.contains("journalDirectory=/pulsar/data/bookkeeper/journal-0/0\n"));
        assert!(c.contains(
            "ledgerDirectories=/pulsar/data/bookkeeper/ledgers/0,/pulsar/data/bookkeeper/ledgers/1,/pulsar/data/bookkeeper/ledgers/2\n"
        ));
    }

    #[test]
    fn builds_bookies_and_auto_recovery() {
        let o = objects(&bk("  replicas: 3\n"));
        for (kind, name) in [
            ("StatefulSet", "pc-bk"),
            ("Service", "pc-bk"),
            ("Service", "pc-bk-headless"),
            ("ConfigMap", "pc-bk"),
            ("PodDisruptionBudget", "pc-bk"),
            ("ServiceAccount", "pc-bk"),
            ("Deployment", "pc-bk-auto-recovery"),
            ("ServiceAccount", "pc-bk-auto-recovery"),
            ("ConfigMap", "pc-bk-auto-recovery"),
        ] {
            assert!(has(&o, kind, name), "{kind} {name}");
        }
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-bk-headless")), [3181, 8000]);
        assert_eq!(sts_spec(&o, "pc-bk").service_name.as_deref(), Some("pc-bk-headless"));
        let ar = deployment_spec(&o, "pc-bk-auto-recovery");
        assert_eq!(ar.replicas, Some(1));
        let account = ar.template.spec.and_then(|s| s.service_account_name);
        assert_eq!(account.as_deref(), Some("pc-bk-auto-recovery"));
        assert_eq!(ar.selector.match_labels.unwrap()["app.kubernetes.io/component"], "autorecovery");
        assert_port_names(&o);
    }

    #[test]
    fn claim_templates_default_to_10_and_50_gi() {
        let o = objects(&bk("  storage: {ledgers: {size: 100Gi}, storageClassName: ssd}\n"));
        let claims = sts_spec(&o, "pc-bk").volume_claim_templates.unwrap();
        let storage = |i: usize| {
            let requests = claims[i].spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.clone());
            requests.and_then(|r| r.get("storage").map(|q| q.0.clone())).unwrap_or_default()
        };
        assert_eq!(claims[0].metadata.name.as_deref(), Some("journal"));
        assert_eq!(storage(0), "10Gi");
        assert_eq!(claims[1].metadata.name.as_deref(), Some("ledgers"));
        assert_eq!(storage(1), "100Gi");
        assert_eq!(claims[1].spec.as_ref().and_then(|s| s.storage_class_name.as_deref()), Some("ssd"));
        assert_eq!(claims[1].metadata.labels.as_ref().unwrap()["app.kubernetes.io/instance"], "pc");
    }

    /// StreamNative's typed bookkeeper.conf keys, under BookKeeper's own
    /// names, for the bookies only; `custom` wins over them.
    #[test]
    fn typed_bookie_settings_and_the_workers_image() {
        let o = objects(&bk(concat!(
            "  config: {gcWaitTime: 60000, journalMaxBackups: 2, compactionRateByBytes: 1048576, isThrottleByBytes: true,\n",
            "    useTransactionalCompaction: false, fileInfoFormatVersionToWrite: 1, journalFormatVersionToWrite: 6,\n",
            "    persistBookieStatusEnabled: true, custom: {journalMaxBackups: '5'}}\n",
            "  autoRecovery: {image: recovery:1, imagePullPolicy: Always}\n",
        )));
        let c = conf(&o, "pc-bk");
        for line in [
            "gcWaitTime=60000",
            "journalMaxBackups=5",
            "compactionRateByBytes=1048576",
            "isThrottleByBytes=true",
            "useTransactionalCompaction=false",
            "fileInfoFormatVersionToWrite=1",
            "journalFormatVersionToWrite=6",
            "persistBookieStatusEnabled=true",
        ] {
            assert!(c.contains(&format!("{line}\n")), "{line} missing from {c}");
        }
        assert!(!conf(&o, "pc-bk-auto-recovery").contains("gcWaitTime"));
        let workers = main_container(find(&o, "Deployment", "pc-bk-auto-recovery"));
        assert_eq!(
            (workers.image.as_deref(), workers.image_pull_policy.as_deref()),
            (Some("recovery:1"), Some("Always"))
        );
        let bookies = main_container(find(&o, "StatefulSet", "pc-bk"));
        assert_eq!(bookies.image.as_deref(), Some("img"));
        let same = main_container(find(&objects(&bk("")), "Deployment", "pc-bk-auto-recovery")).image;
        assert_eq!(same.as_deref(), Some("img"));
    }

    #[test]
    fn bookie_conf_has_metadata_and_directories() {
        let o = objects(&bk("  config: {custom: {dbStorage_writeCacheMaxSizeMb: '64', PULSAR_PREFIX_x: 'y'}}\n"));
        let c = conf(&o, "pc-bk");
        for line in [
            "zkServers=pc-zk:2181\n",
            "metadataServiceUri=zk+hierarchical://pc-zk:2181/ledgers\n",
            "journalDirectories=/pulsar/data/bookkeeper/journal\n",
            "ledgerDirectories=/pulsar/data/bookkeeper/ledgers\n",
            "httpServerEnabled=true\n",
            "useHostNameAsBookieID=true\n",
            "dbStorage_writeCacheMaxSizeMb=64\n",
        ] {
            assert!(c.contains(line), "{line} missing from {c}");
        }
        assert!(!c.contains("PULSAR_PREFIX_x"));
        let env = main_container(find(&o, "StatefulSet", "pc-bk")).env.unwrap_or_default();
        assert_eq!(env[0].name, "PULSAR_PREFIX_x");
    }

    #[test]
    fn auto_recovery_uses_its_own_zk_servers_and_pod() {
        let o = objects(&bk(
            "  autoRecovery:\n    replicas: 2\n    conf: {zkServers: 'other:2181'}\n    pod: {annotations: {prometheus.io/port: '8000'}}\n",
        ));
        assert!(conf(&o, "pc-bk-auto-recovery").contains("zkServers=other:2181\n"));
        assert_eq!(deployment_spec(&o, "pc-bk-auto-recovery").replicas, Some(2));
        let (_, annotations) = template_meta(&o, "Deployment", "pc-bk-auto-recovery");
        assert_eq!(annotations["prometheus.io/port"], "8000");
        assert!(script(find(&o, "Deployment", "pc-bk-auto-recovery")).contains("exec bin/bookkeeper autorecovery"));
    }

    /// Bookies and auto-recovery size their JVMs from their own pods'
    /// memory, through the variable their start commands read.
    #[test]
    fn jvms_are_sized_from_the_pods() {
        let o = objects(&bk(
            "  pod: {resources: {requests: {memory: 1Gi}}}\n  autoRecovery: {pod: {resources: {limits: {memory: 256Mi}}}}\n",
        ));
        let env = |kind: &str, name: &str| main_container(find(&o, kind, name)).env.unwrap_or_default();
        let bookie = env("StatefulSet", "pc-bk");
        let mem = bookie.iter().find(|e| e.name == "BOOKIE_MEM").expect("bookies get BOOKIE_MEM");
        assert_eq!(mem.value.as_deref(), Some("-Xms512m -Xmx512m -XX:MaxDirectMemorySize=256m"));
        let ar = env("Deployment", "pc-bk-auto-recovery");
        let mem = ar.iter().find(|e| e.name == "BOOKIE_MEM").expect("auto-recovery gets BOOKIE_MEM");
        assert_eq!(mem.value.as_deref(), Some("-Xms128m -Xmx128m -XX:MaxDirectMemorySize=64m"));
        assert!(!bookie.iter().chain(&ar).any(|e| e.name == "PULSAR_MEM"));
    }

    /// metadataServiceUri (Oxia) replaces the URI derived from zkServers, for
    /// bookies and auto-recovery; without zkServers none is written.
    #[test]
    fn metadata_service_uri_overrides_zk_servers() {
        let uri = "metadata-store:oxia://pc-oxia:6648/bookkeeper";
        let b: BookKeeperCluster = resource("pc", &format!("  image: img\n  metadataServiceUri: {uri}\n"));
        let o = objects(&b);
        for name in ["pc-bk", "pc-bk-auto-recovery"] {
            let c = conf(&o, name);
            assert!(c.contains(&format!("metadataServiceUri={uri}\n")), "{c}");
            assert!(!c.contains("zkServers") && !c.contains("zk+hierarchical"), "{c}");
        }
        let c = conf(&objects(&bk(&format!("  metadataServiceUri: {uri}\n"))), "pc-bk");
        assert!(c.contains("zkServers=pc-zk:2181\n") && c.contains(&format!("metadataServiceUri={uri}\n")), "{c}");
        assert!(!c.contains("zk+hierarchical"), "{c}");
    }

    /// The bookies' pull secrets reach their pods and, unless it names its
    /// own, the auto-recovery pods (same image, same registry).
    #[test]
    fn image_pull_secrets_reach_bookies_and_auto_recovery() {
        let pull = |o: &[Object], kind: &str, name: &str| {
            let secrets = pod_spec(o, kind, name).image_pull_secrets;
            secrets.map(|s| s.into_iter().map(|r| r.name).collect::<Vec<_>>())
        };
        let o = objects(&bk("  pod: {imagePullSecrets: [{name: regcred}]}
"));
        assert_eq!(pull(&o, "StatefulSet", "pc-bk"), Some(vec!["regcred".to_string()]));
        assert_eq!(pull(&o, "Deployment", "pc-bk-auto-recovery"), Some(vec!["regcred".to_string()]));
        let o = objects(&bk(
            "  pod: {imagePullSecrets: [{name: regcred}]}\n  autoRecovery: {pod: {imagePullSecrets: [{name: other}]}}\n",
        ));
        assert_eq!(pull(&o, "Deployment", "pc-bk-auto-recovery"), Some(vec!["other".to_string()]));
        let o = objects(&bk(""));
        assert!(pull(&o, "StatefulSet", "pc-bk").is_none() && pull(&o, "Deployment", "pc-bk-auto-recovery").is_none());
    }

    /// StreamNative's autoScalingPolicy on bookies: an HPA that only adds
    /// bookies unless the user says how to remove them.
    #[test]
    fn bookie_autoscaler_scales_up_only_unless_told() {
        let o = objects(&bk("  autoScalingPolicy: {minReplicas: 3, maxReplicas: 6}\n"));
        assert_eq!(sts_spec(&o, "pc-bk").replicas, None, "the autoscaler decides");
        let hpa = hpa_spec(&o, "pc-bk");
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(3), 6));
        let down = hpa.behavior.and_then(|b| b.scale_down).and_then(|d| d.select_policy);
        assert_eq!(down.as_deref(), Some("Disabled"));
        let told = objects(&bk(
            "  autoScalingPolicy: {maxReplicas: 6, behavior: {scaleDown: {stabilizationWindowSeconds: 3600}}}\n",
        ));
        let down = hpa_spec(&told, "pc-bk").behavior.and_then(|b| b.scale_down).unwrap();
        assert_eq!((down.select_policy, down.stabilization_window_seconds), (None, Some(3600)));
    }

    #[test]
    fn no_auto_recovery_with_zero_replicas() {
        let o = objects(&bk("  autoRecovery: {replicas: 0}\n"));
        assert!(!o.iter().any(|x| x.name.starts_with("pc-bk-auto-recovery")));
        assert!(has(&o, "StatefulSet", "pc-bk"));
        // No Deployment: the bookies keep their own auto-recovery (the
        // image's autoRecoveryDaemonEnabled=true), or nothing would recover.
        assert!(!conf(&o, "pc-bk").contains("autoRecoveryDaemonEnabled"));
    }

    /// With the Deployment, auto-recovery runs there only: the bookies turn
    /// off the daemon Pulsar's bookkeeper.conf turns on; a user's entry wins.
    #[test]
    fn bookies_leave_auto_recovery_to_the_deployment() {
        let o = objects(&bk(""));
        assert!(has(&o, "Deployment", "pc-bk-auto-recovery"));
        assert!(conf(&o, "pc-bk").contains("autoRecoveryDaemonEnabled=false\n"));
        let o = objects(&bk("  config: {custom: {autoRecoveryDaemonEnabled: 'true'}}\n"));
        assert!(conf(&o, "pc-bk").contains("autoRecoveryDaemonEnabled=true\n"));
    }

    #[test]
    fn bookie_script_initialises_metadata_then_starts() {
        let o = objects(&bk(""));
        let s = script(find(&o, "StatefulSet", "pc-bk"));
        assert!(s.contains("bin/apply-config-from-env.py conf/bookkeeper.conf"));
        assert!(s.contains("initnewcluster"));
        assert!(s.trim_end().ends_with("exec bin/pulsar bookie"));
    }
}
