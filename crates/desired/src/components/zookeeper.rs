//! Workload objects of a ZooKeeperCluster (SPEC 3.1): StatefulSet `<n>-zk`,
//! Services `<n>-zk` and `<n>-zk-headless`, ConfigMap (zoo.cfg), PDB and
//! ServiceAccount.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSetUpdateStrategy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use magnetar_api::ZooKeeperCluster;

use super::objects::{self, ServiceKind};
use super::workload::{self, ClaimDefaults, PodParts, Probes};
use super::{config_files, monitoring};
use crate::mesh::Enrolment;
use crate::names::Component;
use crate::paths::{self, DATA_LOG_MOUNT, DATA_MOUNT, ZOOKEEPER_DATA_DIR as DATA_DIR, ZOOKEEPER_DATA_LOG_DIR};
use crate::ports::*;
use crate::{BuildContext, Object, Owner};

const C: Component = Component::ZooKeeper;
/// Key of zoo.cfg in the ConfigMap.
pub const ZOO_CFG: &str = "zoo.cfg";
const DATA_VOLUME: &str = "data";
const DATA_LOG_VOLUME: &str = "datalog";
const DEFAULT_SIZE: &str = "10Gi";

fn client_ports() -> Vec<NamedPort> {
    vec![port("tcp-client", ZK_CLIENT, "tcp"), port("http-metrics", ZK_ADMIN, "http")]
}

/// Every pod-to-pod port: undeclared ones would travel as plaintext, which
/// STRICT mTLS rejects.
fn all_ports() -> Vec<NamedPort> {
    vec![
        port("tcp-client", ZK_CLIENT, "tcp"),
        port("tcp-quorum", ZK_QUORUM, "tcp"),
        port("tcp-election", ZK_ELECTION, "tcp"),
        port("http-metrics", ZK_ADMIN, "http"),
    ]
}

pub fn build(res: &ZooKeeperCluster, owner: &Owner, ctx: &BuildContext) -> Vec<Object> {
    let spec = &res.spec;
    let pod_spec = spec.pod.clone().unwrap_or_default();
    let pod_spec = monitoring::annotate(&pod_spec, spec.monitoring.as_ref(), monitoring::ZOOKEEPER).into_owned();
    let custom = spec.settings().map(|c| c.custom.clone()).unwrap_or_default();
    let (mut custom_conf, mut env) = config_files::split_custom(&custom);
    // The typed settings, under what config.custom says.
    let typed = spec.settings().map(|c| c.entries()).unwrap_or_default();
    for (k, v) in typed {
        custom_conf.entry(k).or_insert(v);
    }
    let persistence = spec.persistence.as_ref();
    let data_log = persistence.and_then(|p| p.data_log.as_ref());
    let mut data =
        BTreeMap::from([(ZOO_CFG.to_string(), zoo_cfg(owner, spec.replicas, &custom_conf, data_log.is_some(), ctx))]);
    config_files::add_log_config(spec.log_config.as_ref(), &mut data, &mut env);
    let size = persistence.and_then(|p| p.size.clone()).unwrap_or_else(|| Quantity(DEFAULT_SIZE.into()));
    let storage_class = persistence.and_then(|p| p.storage_class_name.as_deref());
    let claim = |name: &str, template| {
        let d = ClaimDefaults { size: size.clone(), storage_class, template, metadata: None };
        workload::claim_from(owner, C, name, &d)
    };
    let mut claims = vec![claim(DATA_VOLUME, persistence.and_then(|p| p.data.as_ref()))];
    let mut mounts = vec![workload::mount(DATA_VOLUME, DATA_MOUNT, false)];
    if data_log.is_some() {
        claims.push(claim(DATA_LOG_VOLUME, data_log));
        mounts.push(workload::mount(DATA_LOG_VOLUME, DATA_LOG_MOUNT, false));
    }

    let parts = PodParts {
        owner,
        component: C,
        image: workload::image(spec.image.as_deref()),
        pull_policy: spec.image_pull_policy,
        pod: &pod_spec,
        enrolment: Enrolment::of(spec.istio.as_ref()),
        script: start_script(),
        env,
        ports: all_ports(),
        config: &data,
        config_map: C.object_name(&owner.name),
        volumes: Vec::new(),
        mounts,
        probes: Probes::same(workload::tcp_probe(ZK_CLIENT), 5),
    };
    let reclaim = persistence.and_then(|p| p.reclaim_policy);

    let mut sts =
        workload::stateful_set(owner, C, Some(spec.replicas), C.headless_name(&owner.name), parts, claims, reclaim);
    // The operator restarts the pods itself, followers first and the leader
    // last (SPEC 4.4): the StatefulSet controller only recreates them.
    if let Some(spec) = sts.spec.as_mut() {
        spec.update_strategy = Some(StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), ..Default::default() });
    }
    let mut out = vec![
        Object::typed(&sts),
        objects::service(owner, C.object_name(&owner.name), C, &client_ports(), ServiceKind::ClusterIp),
        objects::service(owner, C.headless_name(&owner.name), C, &all_ports(), ServiceKind::Headless),
        objects::config_map(owner, C, data),
        objects::pdb(owner, C),
    ];
    out.extend(objects::service_account(owner, C, &pod_spec));
    let enrolment = Enrolment::of(spec.istio.as_ref());
    out.extend(monitoring::pod_monitor(owner, C, spec.monitoring.as_ref(), &enrolment, monitoring::ZOOKEEPER));
    out
}

/// The complete zoo.cfg. Server ids are ordinal + 1 (ZooKeeper wants
/// 1..255), on the pods' stable DNS names under the headless Service.
/// Port 8000 serves Prometheus metrics (Pulsar's convention); the role
/// check uses the `srvr` four-letter word on 2181, so the admin server,
/// which has mutating commands, stays off.
fn zoo_cfg(
    owner: &Owner,
    replicas: i32,
    custom: &BTreeMap<String, String>,
    separate_log: bool,
    ctx: &BuildContext,
) -> String {
    let mut e: BTreeMap<String, String> = [
        ("tickTime", "2000".to_string()),
        ("initLimit", "10".to_string()),
        ("syncLimit", "5".to_string()),
        ("dataDir", DATA_DIR.to_string()),
        ("clientPort", ZK_CLIENT.to_string()),
        ("admin.enableServer", "false".to_string()),
        ("metricsProvider.className", "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider".to_string()),
        ("metricsProvider.httpPort", ZK_ADMIN.to_string()),
        ("metricsProvider.exportJvmInfo", "true".to_string()),
        ("4lw.commands.whitelist", "srvr,ruok,mntr,stat,conf,isro".to_string()),
        // Harmless with current Istio, needed by older sidecars and multi-homed pods.
        ("quorumListenOnAllIPs", "true".to_string()),
        ("autopurge.snapRetainCount", "3".to_string()),
        ("autopurge.purgeInterval", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if separate_log {
        e.insert("dataLogDir".into(), ZOOKEEPER_DATA_LOG_DIR.into());
    }
    for (i, host) in server_hosts(owner, replicas, ctx).into_iter().enumerate() {
        e.insert(format!("server.{}", i + 1), format!("{host}:{ZK_QUORUM}:{ZK_ELECTION}"));
    }
    e.extend(custom.iter().map(|(k, v)| (k.clone(), v.clone())));
    config_files::properties("zoo.cfg of ZooKeeperCluster", &e)
}

/// `<n>-zk-<i>.<n>-zk-headless.<ns>.svc.<cluster domain>` for every server.
pub fn server_hosts(owner: &Owner, replicas: i32, ctx: &BuildContext) -> Vec<String> {
    let headless = ctx.service_host(&C.headless_name(&owner.name), &owner.namespace);
    (0..replicas.max(0)).map(|i| format!("{}-{i}.{headless}", C.object_name(&owner.name))).collect()
}

/// Writes myid from the pod's ordinal, installs zoo.cfg as the image's
/// conf/zookeeper.conf (what `bin/pulsar zookeeper` reads), applies
/// PULSAR_PREFIX_ variables, and starts the server.
fn start_script() -> String {
    config_files::shell(&format!(
        r#"# myid is the pod's ordinal + 1, matching the server.N entries of zoo.cfg.
ORDINAL="${{HOSTNAME##*-}}"
mkdir -p {DATA_DIR}
echo $((ORDINAL + 1)) > {DATA_DIR}/myid
cp {dir}/{ZOO_CFG} conf/zookeeper.conf
bin/apply-config-from-env.py conf/zookeeper.conf
exec bin/pulsar zookeeper
"#,
        dir = paths::CONFIG_DIR
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::components::test_util::*;

    fn zk(yaml_spec: &str) -> ZooKeeperCluster {
        let doc = format!(
            "apiVersion: zookeeper.streamnative.io/v1alpha1\nkind: ZooKeeperCluster\nmetadata: {{name: pc, namespace: pulsar, uid: u-1}}\nspec:\n{yaml_spec}"
        );
        serde_norway::from_str(&doc).unwrap()
    }

    fn objects(z: &ZooKeeperCluster) -> Vec<Object> {
        build(z, &Owner::of(z), &BuildContext::default())
    }

    /// StreamNative's typed zoo.cfg keys land in zoo.cfg, config.custom
    /// wins over them; logConfig reaches ZooKeeper as it does the brokers.
    #[test]
    fn typed_config_and_log_config() {
        let o = objects(&zk(concat!(
            "  image: img\n",
            "  config: {tickTime: 3000, maxClientCnxns: 0, snapCount: 50000, serverCnxnFactory: org.apache.zookeeper.server.NettyServerCnxnFactory, custom: {tickTime: '2500'}}\n",
            "  logConfig: {level: WARN, format: json}\n",
        )));
        let cfg = config_file(&o, "pc-zk", ZOO_CFG);
        for line in [
            "tickTime=2500\n",
            "maxClientCnxns=0\n",
            "snapCount=50000\n",
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n",
        ] {
            assert!(cfg.contains(line), "{line}: {cfg}");
        }
        let env = main_container(find(&o, "StatefulSet", "pc-zk")).env.unwrap();
        assert!(env.iter().any(|e| e.name == "PULSAR_LOG_LEVEL" && e.value.as_deref() == Some("WARN")));
        assert!(env.iter().any(|e| e.name == "PULSAR_LOG_CONF"));
        assert!(!config_file(&o, "pc-zk", crate::components::config_files::LOG4J2_FILE).is_empty());
    }

    /// `conf`, StreamNative's other name for `config`, gives the same zoo.cfg.
    #[test]
    fn conf_is_config_under_its_other_name() {
        let settings = "{tickTime: 3000, snapCount: 50000, custom: {autopurge.purgeInterval: '1'}}";
        let via_config = objects(&zk(&format!("  image: img\n  config: {settings}\n")));
        let via_conf = objects(&zk(&format!("  image: img\n  conf: {settings}\n")));
        let cfg = config_file(&via_conf, "pc-zk", ZOO_CFG);
        assert!(cfg.contains("tickTime=3000\n") && cfg.contains("autopurge.purgeInterval=1\n"), "{cfg}");
        assert_eq!(cfg, config_file(&via_config, "pc-zk", ZOO_CFG));
    }

    /// persistence.dataLog: a second claim, mounted apart, and zoo.cfg's
    /// dataLogDir on it; persistence.data is the data claim's spec.
    #[test]
    fn data_log_gets_a_volume_of_its_own() {
        let o = objects(&zk(
            "  image: img\n  persistence:\n    size: 3Gi\n    data: {storageClassName: fast}\n    dataLog: {resources: {requests: {storage: 1Gi}}}\n",
        ));
        let claims = sts_spec(&o, "pc-zk").volume_claim_templates.unwrap();
        let names: Vec<_> = claims.iter().map(|c| c.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["data", "datalog"]);
        let spec = |i: usize| claims[i].spec.clone().unwrap();
        assert_eq!(spec(0).storage_class_name.as_deref(), Some("fast"));
        assert_eq!(spec(0).resources.unwrap().requests.unwrap()["storage"].0, "3Gi");
        assert_eq!(spec(1).resources.unwrap().requests.unwrap()["storage"].0, "1Gi");
        let mounts = main_container(find(&o, "StatefulSet", "pc-zk")).volume_mounts.unwrap();
        assert!(mounts.iter().any(|m| m.name == "datalog" && m.mount_path == "/pulsar/datalog"));
        let cfg = config_file(&o, "pc-zk", ZOO_CFG);
        assert!(cfg.contains("dataLogDir=/pulsar/datalog/zookeeper\n"), "{cfg}");
        let without = config_file(&objects(&zk("  image: img\n")), "pc-zk", ZOO_CFG);
        assert!(!without.contains("dataLogDir"));
    }

    #[test]
    fn builds_the_objects_spec_3_1_names() {
        let o = objects(&zk("  image: img\n  replicas: 3\n"));
        for (kind, name) in [
            ("StatefulSet", "pc-zk"),
            ("Service", "pc-zk"),
            ("Service", "pc-zk-headless"),
            ("ConfigMap", "pc-zk"),
            ("PodDisruptionBudget", "pc-zk"),
            ("ServiceAccount", "pc-zk"),
        ] {
            assert!(has(&o, kind, name), "{kind} {name}");
        }
        let sts = typed::<StatefulSet>(&o, "pc-zk");
        let spec = sts.spec.unwrap();
        assert_eq!(spec.service_name.as_deref(), Some("pc-zk-headless"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        let strategy = spec.update_strategy.and_then(|u| u.type_);
        assert_eq!(strategy.as_deref(), Some("OnDelete"), "the operator rolls ZooKeeper");
        assert_eq!(sts.metadata.owner_references.unwrap()[0].uid, "u-1");
        let pdb = typed::<PodDisruptionBudget>(&o, "pc-zk").spec.unwrap();
        assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    }

    #[test]
    fn services_declare_every_zookeeper_port() {
        let o = objects(&zk("  image: img\n"));
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-zk")), [2181, 8000]);
        assert_eq!(service_port_numbers(find(&o, "Service", "pc-zk-headless")), [2181, 2888, 3888, 8000]);
        let headless = service_spec(&o, "pc-zk-headless");
        assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
        assert_eq!(headless.publish_not_ready_addresses, Some(true));
        assert_port_names(&o);
    }

    #[test]
    fn zoo_cfg_lists_servers_on_headless_names() {
        let o = objects(&zk("  image: img\n  replicas: 3\n  config:\n    custom: {maxClientCnxns: '100'}\n"));
        let cfg = config_file(&o, "pc-zk", ZOO_CFG);
        assert!(cfg.contains("server.1=pc-zk-0.pc-zk-headless.pulsar.svc.cluster.local:2888:3888\n"));
        assert!(cfg.contains("server.3=pc-zk-2.pc-zk-headless.pulsar.svc.cluster.local:2888:3888\n"));
        assert!(!cfg.contains("server.4="));
        assert!(cfg.contains("quorumListenOnAllIPs=true\n"));
        assert!(cfg.contains("4lw.commands.whitelist=srvr,ruok"));
        assert!(cfg.contains("maxClientCnxns=100\n"));
    }

    #[test]
    fn myid_comes_from_the_ordinal() {
        let o = objects(&zk("  image: img\n"));
        let s = script(find(&o, "StatefulSet", "pc-zk"));
        assert!(s.contains("${HOSTNAME##*-}"));
        assert!(s.contains("echo $((ORDINAL + 1)) > /pulsar/data/zookeeper/myid"));
        assert!(s.contains("exec bin/pulsar zookeeper"));
    }

    #[test]
    fn data_claim_template_defaults_to_10gi() {
        let storage = |c: &PersistentVolumeClaim| {
            let requests = c.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref());
            requests.and_then(|r| r.get("storage")).map(|q| q.0.clone())
        };
        let o = objects(&zk("  image: img\n  persistence: {storageClassName: fast}\n"));
        let claim = &sts_spec(&o, "pc-zk").volume_claim_templates.unwrap()[0];
        assert_eq!(claim.metadata.name.as_deref(), Some("data"));
        let labels = claim.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["app.kubernetes.io/component"], "zookeeper");
        assert_eq!(storage(claim).as_deref(), Some("10Gi"));
        assert_eq!(claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()), Some("fast"));
        let o = objects(&zk("  image: img\n  persistence: {size: 20Gi, reclaimPolicy: Delete}\n"));
        let spec = sts_spec(&o, "pc-zk");
        assert_eq!(storage(&spec.volume_claim_templates.unwrap()[0]).as_deref(), Some("20Gi"));
        let retention = spec.persistent_volume_claim_retention_policy.and_then(|p| p.when_deleted);
        assert_eq!(retention.as_deref(), Some("Delete"));
    }

    #[test]
    fn pod_labels_follow_the_mesh_mode() {
        let meta = |o: &[Object]| template_meta(o, "StatefulSet", "pc-zk");
        // Disabled: the user's inject label wins (the older guide enrols ZK that way).
        let (labels, _) = meta(&objects(&zk("  image: img\n  pod: {labels: {sidecar.istio.io/inject: 'true'}}\n")));
        assert_eq!(labels["sidecar.istio.io/inject"], "true");
        assert_eq!(labels["istio.io/dataplane-mode"], "none");
        let (labels, _) = meta(&objects(&zk("  image: img\n  istio: {enabled: true, dataplaneMode: ambient}\n")));
        assert_eq!(labels["istio.io/dataplane-mode"], "ambient");
        assert_eq!(labels["sidecar.istio.io/inject"], "false");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "magnetar");
        let (labels, annotations) = meta(&objects(&zk("  image: img\n  istio: {enabled: true}\n")));
        assert_eq!(labels["sidecar.istio.io/inject"], "true");
        assert!(annotations["proxy.istio.io/config"].contains("holdApplicationUntilProxyStarts"));
        assert!(annotations.contains_key(workload::CONFIG_HASH_ANNOTATION));
    }

    #[test]
    fn user_service_account_suppresses_ours() {
        let o = objects(&zk("  image: img\n  pod: {serviceAccountName: mine}\n"));
        assert!(!has(&o, "ServiceAccount", "pc-zk"));
        assert_eq!(pod_spec(&o, "StatefulSet", "pc-zk").service_account_name.as_deref(), Some("mine"));
    }

    #[test]
    fn a_config_change_changes_the_template_hash() {
        let hash = |o: &[Object]| template_meta(o, "StatefulSet", "pc-zk").1[workload::CONFIG_HASH_ANNOTATION].clone();
        let a = objects(&zk("  image: img\n"));
        let b = objects(&zk("  image: img\n  config: {custom: {maxClientCnxns: '7'}}\n"));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(a, objects(&zk("  image: img\n")));
    }

    #[test]
    fn pods_run_as_non_root_by_default() {
        let o = objects(&zk("  image: img\n"));
        let spec = pod_spec(&o, "StatefulSet", "pc-zk");
        let sc = spec.security_context.unwrap();
        assert_eq!((sc.run_as_non_root, sc.run_as_user, sc.fs_group), (Some(true), Some(10000), Some(0)));
        let c = &spec.containers[0];
        let csc = c.security_context.clone().unwrap();
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(csc.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_string()]));
        assert!(c.readiness_probe.is_some() && c.liveness_probe.is_some());
    }
}
