//! A node whose pods run for real: a small kubelet for tests.
//!
//! kwok's fake nodes make every pod Ready without running anything, so a
//! test there proves only that the API server accepted the objects. The
//! real node runs a pod's containers as processes on this machine, from the
//! pod exactly as the API server holds it:
//! - the container's command and args unchanged (magnetar's start-up
//!   scripts), its environment (values, Secret and ConfigMap keys, field and
//!   resource references), its ConfigMap, Secret, emptyDir and claim
//!   volumes at their mount paths, its working directory, and its user and
//!   groups (`runAsUser`, `runAsGroup`, `fsGroup`): non-root for real;
//! - in a mount and UTS namespace of its own, over a copy-on-write view of
//!   this machine's root (overlayfs on a tmpfs), so mount paths such as
//!   `/pulsar/conf/magnetar` exist only for that pod and nothing on the
//!   machine changes; the hostname is the pod's;
//! - with an address of its own on loopback (127.245.0.0/16), reported as
//!   the pod IP; a preloaded shim ([`bind_shim.c`](bind_shim.c)) turns
//!   wildcard binds into binds on that address, so every port stays as
//!   rendered and nothing leaves the machine;
//! - with the pods' and Services' DNS names in the pod's `/etc/hosts`
//!   (ClusterIP and headless Services resolve to their pods' addresses:
//!   no kube-proxy here);
//! - with its startup, readiness and liveness probes run as declared (HTTP,
//!   TCP, exec inside the pod's namespaces), their answers reported in the
//!   pod's status and conditions; a failed liveness or startup probe
//!   restarts the container, an exited container restarts with back-off;
//! - deleted like a kubelet does: SIGTERM, the grace period, SIGKILL, then
//!   the final delete.
//!
//! The node carries the taint [`REAL_NODE_TAINT`], so only pods that
//! tolerate it (and select it with [`REAL_NODE_LABEL`]) run here; every
//! other pod stays on kwok's nodes. The Pulsar image is stood in for by the
//! JVM toolkit (`tools/build-jvm.sh`): real ZooKeeper and BookKeeper jars
//! behind thin `bin/pulsar` and `bin/bookkeeper` shims.

mod pod;
mod probe;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::watch;

use crate::process::Supervisor;

/// The node's name.
pub const REAL_NODE: &str = "real-node-0";
/// The label that selects the node, `key=value` (`spec.pod.nodeSelector`).
pub const REAL_NODE_LABEL: (&str, &str) = ("magnetar.dev/real-pods", "true");
/// The taint that keeps every other pod off the node (`spec.pod.tolerations`).
pub const REAL_NODE_TAINT: (&str, &str) = ("magnetar.dev/real-pods", "true");
/// The cluster's DNS domain, as the test control plane's pods see it.
const CLUSTER_DOMAIN: &str = "cluster.local";
/// How often the node renews its Lease and looks at its pods.
const LEASE_SECONDS: i32 = 40;
const RESYNC: Duration = Duration::from_millis(500);

/// What the runner needs from the control plane.
pub(crate) struct NodeConfig {
    pub kubeconfig: PathBuf,
    /// Pods' volumes, claims, namespaces, hosts files (removed with the
    /// control plane's scratch directory).
    pub scratch: PathBuf,
    /// Container logs, one file per container, kept.
    pub logs: PathBuf,
    /// The JVM toolkit's cache directory (`tools/build-jvm.sh`).
    pub toolkit: PathBuf,
    pub supervisor: Arc<Mutex<Supervisor>>,
}

/// The running node; [`RealNode::shutdown`] (or dropping it) stops every
/// pod's processes.
pub struct RealNode {
    stop: Option<watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    logs: PathBuf,
}

impl std::fmt::Debug for RealNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealNode").field("logs", &self.logs).finish()
    }
}

impl RealNode {
    /// Registers the node and starts its loop on a thread (and runtime) of
    /// its own, so it does not depend on the caller's runtime. Returns once
    /// the node object exists.
    pub(crate) fn start(config: NodeConfig) -> anyhow::Result<RealNode> {
        std::fs::create_dir_all(&config.logs)?;
        std::fs::create_dir_all(config.scratch.join("hosts"))?;
        let shim = build_bind_shim(&config.scratch)?;
        let logs = config.logs.clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("magnetar-real-node".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            rt.block_on(async move {
                let node = match Kubelet::new(config, shim).await {
                    Ok(k) => {
                        let _ = ready_tx.send(Ok(()));
                        k
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                node.run(stop_rx).await;
            });
        })?;
        ready_rx.recv().context("the real node's thread ended")??;
        Ok(RealNode { stop: Some(stop_tx), thread: Some(thread), logs })
    }

    /// One log file per container: `<namespace>_<pod>_<container>.log`.
    pub fn log_dir(&self) -> &Path {
        &self.logs
    }

    /// Stops every pod (SIGTERM, then SIGKILL) and the node's loop. Idempotent.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub use pod::{OfflineOutput, Paths, Refs, run_offline};

/// Compiles the bind shim once per control plane (a few hundred
/// milliseconds; `cc` is part of the toolchain the project needs anyway).
pub fn build_bind_shim(scratch: &Path) -> anyhow::Result<PathBuf> {
    let src = scratch.join("bind_shim.c");
    let out = scratch.join("bind_shim.so");
    std::fs::write(&src, include_str!("bind_shim.c"))?;
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .context("compiling the bind shim with cc")?;
    if !status.success() {
        bail!("cc failed ({status}) compiling {}", src.display());
    }
    Ok(out)
}

/// Shared by the node loop and every pod task.
pub(crate) struct NodeCtx {
    pub client: kube::Client,
    pub scratch: PathBuf,
    pub logs: PathBuf,
    pub toolkit: PathBuf,
    pub shim: PathBuf,
    pub supervisor: Arc<Mutex<Supervisor>>,
}

impl NodeCtx {
    /// The hosts file of the pods of `namespace`.
    pub fn hosts_file(&self, namespace: &str) -> PathBuf {
        self.scratch.join("hosts").join(namespace)
    }
}

struct Running {
    uid: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Kubelet {
    ctx: Arc<NodeCtx>,
    pods: HashMap<(String, String), Running>,
    next_ip: u32,
    hosts: HashMap<String, String>,
}

impl Kubelet {
    async fn new(config: NodeConfig, shim: PathBuf) -> anyhow::Result<Kubelet> {
        let kc = Kubeconfig::read_from(&config.kubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        let client = kube::Client::try_from(cfg)?;
        register_node(&client).await?;
        let ctx = NodeCtx {
            client,
            scratch: config.scratch,
            logs: config.logs,
            toolkit: config.toolkit,
            shim,
            supervisor: config.supervisor,
        };
        Ok(Kubelet { ctx: Arc::new(ctx), pods: HashMap::new(), next_ip: 0, hosts: HashMap::new() })
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut last_lease = tokio::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if last_lease.elapsed() >= Duration::from_secs((LEASE_SECONDS / 4) as u64) {
                match renew_lease(&self.ctx.client).await {
                    Ok(()) => last_lease = tokio::time::Instant::now(),
                    Err(e) => tracing::warn!("real node: renewing the Lease: {e:#}"),
                }
            }
            if let Err(e) = self.sync().await {
                tracing::debug!("real node: sync: {e:#}");
            }
            tokio::select! {
                _ = tokio::time::sleep(RESYNC) => {}
                _ = stop.changed() => break,
            }
        }
        // Every pod's processes, as a kubelet stopping would leave them: gone.
        for (_, r) in self.pods.drain() {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
    }

    /// Level-triggered: the pods bound to this node against the running
    /// ones; the hosts files from the pods and Services.
    async fn sync(&mut self) -> anyhow::Result<()> {
        let pods: Api<Pod> = Api::all(self.ctx.client.clone());
        let list = pods.list(&ListParams::default().fields(&format!("spec.nodeName={REAL_NODE}"))).await?;
        let mut seen = std::collections::HashSet::new();
        for p in &list.items {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            let uid = p.metadata.uid.clone().unwrap_or_default();
            let key = (ns.clone(), name.clone());
            seen.insert(key.clone());
            let deleting = p.metadata.deletion_timestamp.is_some();
            match self.pods.get(&key) {
                Some(r) if r.uid != uid => {
                    // The same name, a new pod (a StatefulSet's replacement).
                    let _ = r.stop.send(true);
                }
                Some(r) if deleting => {
                    let _ = r.stop.send(true);
                }
                Some(_) => {}
                None if deleting => {
                    // Never started here: nothing to stop.
                    pod::finish_deletion(&self.ctx.client, &ns, &name, &uid).await;
                }
                None => {
                    let ip = self.allocate_ip();
                    let (tx, rx) = watch::channel(false);
                    let task = tokio::spawn(pod::run(self.ctx.clone(), p.clone(), ip, rx));
                    self.pods.insert(key, Running { uid, stop: tx, task });
                }
            }
        }
        // Pods gone from the API (or replaced, stopped above) whose task ended.
        let mut done = Vec::new();
        for (key, r) in &self.pods {
            if !seen.contains(key) {
                let _ = r.stop.send(true);
            }
            if r.task.is_finished() {
                done.push(key.clone());
            }
        }
        for key in done {
            self.pods.remove(&key);
        }
        self.write_hosts(&list.items).await
    }

    fn allocate_ip(&mut self) -> Ipv4Addr {
        self.next_ip += 1;
        let n = self.next_ip;
        Ipv4Addr::new(127, 245, (n / 250) as u8, (n % 250 + 1) as u8)
    }

    /// One hosts file per namespace that has pods here: every pod's DNS
    /// name under its subdomain, and every Service that selects pods here.
    async fn write_hosts(&mut self, pods: &[Pod]) -> anyhow::Result<()> {
        let services: Api<Service> = Api::all(self.ctx.client.clone());
        let services = services.list(&ListParams::default()).await?.items;
        let running: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                p.status.as_ref().and_then(|s| s.pod_ip.as_deref()).is_some_and(|ip| ip.starts_with("127.245."))
            })
            .collect();
        let namespaces: std::collections::BTreeSet<String> =
            pods.iter().filter_map(|p| p.metadata.namespace.clone()).collect();
        for ns in namespaces {
            let text = view::hosts_file(&ns, &running, &services, CLUSTER_DOMAIN);
            if self.hosts.get(&ns) == Some(&text) {
                continue;
            }
            // Written in place: each pod bind-mounts this very file (inode).
            let path = self.ctx.hosts_file(&ns);
            tokio::fs::write(&path, &text).await.with_context(|| format!("writing {}", path.display()))?;
            self.hosts.insert(ns, text);
        }
        Ok(())
    }
}

/// The Node object: labelled and tainted so only pods meant for it land
/// here, Ready, with room for 100 pods.
async fn register_node(client: &kube::Client) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": REAL_NODE,
            "labels": {
                REAL_NODE_LABEL.0: REAL_NODE_LABEL.1,
                "kubernetes.io/hostname": REAL_NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {"taints": [{"key": REAL_NODE_TAINT.0, "value": REAL_NODE_TAINT.1, "effect": "NoSchedule"}]},
    });
    nodes
        .patch(REAL_NODE, &PatchParams::apply("magnetar-real-node").force(), &Patch::Apply(&node))
        .await
        .context("registering the real node")?;
    post_node_status(client).await?;
    renew_lease(client).await
}

async fn post_node_status(client: &kube::Client) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let resources = json!({"cpu": "16", "memory": "64Gi", "pods": "100"});
    let condition = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": "magnetar's real test node",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let status = json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [
            condition("Ready", "True", "KubeletReady"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID"),
        ],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": REAL_NODE}],
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "magnetar real node",
            "containerRuntimeVersion": "magnetar://0", "kubeletVersion": "v1.36.3", "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": "amd64",
        },
    }});
    nodes
        .patch_status(REAL_NODE, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .context("posting the real node's status")?;
    Ok(())
}

/// The node's heartbeat, as a kubelet's: the Lease in `kube-node-lease`.
async fn renew_lease(client: &kube::Client) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = Lease {
        metadata: kube::api::ObjectMeta { name: Some(REAL_NODE.into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some(REAL_NODE.into()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases.patch(REAL_NODE, &PatchParams::apply("magnetar-real-node").force(), &Patch::Apply(&lease)).await?;
    Ok(())
}

/// Names and values of a container's ports, for named probe ports.
pub(crate) fn named_ports(c: &k8s_openapi::api::core::v1::Container) -> BTreeMap<String, i32> {
    c.ports.iter().flatten().filter_map(|p| Some((p.name.clone()?, p.container_port))).collect()
}

/// Deletes a pod whose processes are gone (`gracePeriodSeconds: 0`, only
/// that very pod), as the kubelet's final delete.
pub(crate) async fn delete_now(client: &kube::Client, ns: &str, name: &str, uid: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(kube::api::Preconditions { uid: Some(uid.to_string()), resource_version: None }),
        ..DeleteParams::default()
    };
    let _ = pods.delete(name, &dp).await;
}
