//! Every path magnetar mounts or writes inside a container, in one place:
//! the start-up scripts, the configuration files, the volume mounts and
//! validation's list of reserved mount paths all read these.

/// The Pulsar image's home: `bin/`, `conf/`, `data/`, `logs/`.
pub const PULSAR_HOME: &str = "/pulsar";
/// Where the component's ConfigMap is mounted (read-only).
pub const CONFIG_DIR: &str = "/pulsar/conf/magnetar";
/// The status file of brokers and proxies (where the Apache Pulsar Helm
/// chart keeps it too). Pulsar's `/status.html` (its VipStatus resource)
/// answers 404 unless `statusFilePath` names a file that exists, so without
/// it no readiness, liveness or startup probe of theirs ever passes.
pub const STATUS_FILE: &str = "/pulsar/logs/status";
/// The data volume of ZooKeeper and the bookies.
pub const DATA_MOUNT: &str = "/pulsar/data";
/// ZooKeeper's dataDir (myid lives here), on the data volume.
pub const ZOOKEEPER_DATA_DIR: &str = "/pulsar/data/zookeeper";
/// ZooKeeper's separate transaction-log volume (`persistence.dataLog`).
pub const DATA_LOG_MOUNT: &str = "/pulsar/datalog";
/// ZooKeeper's dataLogDir on that volume.
pub const ZOOKEEPER_DATA_LOG_DIR: &str = "/pulsar/datalog/zookeeper";
/// The bookies' journal volume.
pub const JOURNAL_DIR: &str = "/pulsar/data/bookkeeper/journal";
/// The bookies' ledgers volume.
pub const LEDGERS_DIR: &str = "/pulsar/data/bookkeeper/ledgers";
/// Where the KoP certificate Secret (cert-manager layout, with JKS stores) is mounted.
pub const KOP_TLS_DIR: &str = "/etc/tls/pulsar-kop";
/// Where the gateway certificate is mounted in PASSTHROUGH mode (brokers
/// and proxies).
pub const GATEWAY_TLS_DIR: &str = "/etc/tls/gateway";
/// The brokers' own certificate (`spec.tls.certSecretName`).
pub const BROKER_TLS_DIR: &str = "/etc/tls/broker";
/// The proxies' own certificate (`config.tls`, or `spec.certSecretName`).
pub const PROXY_TLS_DIR: &str = "/etc/tls/proxy";
/// Where a broker's start-up script writes KoP's keystore made from the
/// gateway certificate (conf/ is writable by the image's user).
pub const KOP_GATEWAY_KEYSTORE: &str = "/pulsar/conf/kop-gateway.p12";
/// Where the token of `config.clientAuth.jwt` is mounted (brokers, proxies).
pub const CLIENT_TOKEN_DIR: &str = "/etc/pulsar/client-token";
/// Where the certificate of `config.clientAuth.mtls` is mounted.
pub const CLIENT_TLS_DIR: &str = "/etc/tls/pulsar-client";
/// The file the toolset's readiness check looks for.
pub const TOOLSET_CLIENT_CONF: &str = "/pulsar/conf/client.conf";

/// Paths magnetar mounts into containers itself; a user's `secretRefs`
/// may not mount over them.
pub const RESERVED_MOUNTS: [&str; 9] = [
    CONFIG_DIR,
    KOP_TLS_DIR,
    GATEWAY_TLS_DIR,
    BROKER_TLS_DIR,
    PROXY_TLS_DIR,
    DATA_MOUNT,
    DATA_LOG_MOUNT,
    CLIENT_TOKEN_DIR,
    CLIENT_TLS_DIR,
];

/// Whether a pod volume name is one magnetar (or Istio's injector) uses: a
/// user's `pod.volumes` entry of that name would clash with it.
pub fn reserved_volume(name: &str) -> bool {
    const EXACT: [&str; 6] = ["config", "data", "datalog", "journal", "ledgers", "client-token"];
    const PREFIXES: [&str; 6] = ["journal-", "ledgers-", "user-secret-", "istio", "workload-", "credential-"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p)) || name.ends_with("-tls")
}

/// Container names a user's `initContainers` and `sidecars` may not take:
/// the main containers' and those Istio's injector adds.
pub const RESERVED_CONTAINERS: [&str; 9] = [
    "zookeeper",
    "bookie",
    "autorecovery",
    "broker",
    "proxy",
    "toolset",
    "istio-proxy",
    "istio-init",
    "istio-validation",
];
