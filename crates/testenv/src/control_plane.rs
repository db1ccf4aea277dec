//! One Kubernetes control plane on loopback ports: etcd and kube-apiserver,
//! and, on request, kube-controller-manager, kube-scheduler and kwok with
//! fake nodes.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use k8s_openapi::api::core::v1::{Node, NodeStatus, ServiceAccount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;

use crate::binaries::{self, Binaries, ISTIO_NEWEST};
use crate::crds;
use crate::istiod::{self, Istiod};
use crate::pki::{self, Pki};
use crate::process::Supervisor;
use crate::real_node::{NodeConfig, REAL_NODE, REAL_NODE_TAINT, RealNode};

/// How many fake nodes kwok manages, and how many pods each admits: room
/// for 2,000 pods (about 150 quick-start clusters).
pub const FAKE_NODES: usize = 4;
pub const PODS_PER_NODE: u32 = 500;
/// kwok renews each fake node's Lease in `kube-node-lease` every quarter of
/// this, as a kubelet does. Without a Lease the node lifecycle controller
/// sees no heartbeat but kwok's rare status posts (the heartbeat stage waits
/// 10-20 minutes), declares every node NotReady about a minute after start
/// and marks every pod NotReady with it.
pub const NODE_LEASE_SECONDS: u32 = 40;
/// The annotation kwok selects its nodes by.
pub const KWOK_NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

const SERVICE_CIDR: &str = "10.96.0.0/16";
/// kwok's pod IPs are on loopback: nothing outside this machine is ever a
/// target, even for code that connects to pods (the ZooKeeper leader check),
/// and a connection fails at once instead of timing out.
const POD_CIDR: &str = "127.244.0.0/16";

/// What to start and install.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// Istio version whose CRDs to install (`None`: none). See
    /// [`crate::ISTIO_GUIDE`] and [`crate::ISTIO_NEWEST`].
    pub istio: Option<String>,
    /// The Gateway API channel whose CRDs to install (`standard` or
    /// `experimental`, at [`crate::GATEWAY_API_VERSION`]; `None`: none).
    pub gateway_api: Option<String>,
    /// Install prometheus-operator's PodMonitor CRD.
    pub monitoring_crds: bool,
    /// Install magnetar's own CRDs.
    pub magnetar_crds: bool,
    /// Also run kube-controller-manager, kube-scheduler and kwok with a fake
    /// node, so that workloads get pods that become Running and Ready, and
    /// owners' children are garbage-collected.
    pub workloads: bool,
    /// Also run the real node (see [`crate::real_node`]): pods that
    /// tolerate its taint run as real processes from the JVM toolkit.
    pub real_node: bool,
    /// Also run Istio's control plane, istiod (see [`crate::istiod`]), with
    /// its validating webhook and sidecar injector registered: needs
    /// workloads and Istio's CRDs.
    pub istiod: bool,
    /// A short word for the log directory's name.
    pub label: String,
    /// How long each start-up step may take.
    pub timeout: Duration,
}

impl Default for Options {
    /// magnetar's CRDs, the newest Istio's, the Gateway API's standard
    /// channel and prometheus-operator's PodMonitor; no controllers.
    fn default() -> Self {
        Options {
            istio: Some(ISTIO_NEWEST.to_string()),
            gateway_api: Some("standard".to_string()),
            monitoring_crds: true,
            magnetar_crds: true,
            workloads: false,
            real_node: false,
            istiod: false,
            label: "env".to_string(),
            timeout: Duration::from_secs(120),
        }
    }
}

impl Options {
    pub fn istio(mut self, version: &str) -> Self {
        self.istio = Some(version.to_string());
        self
    }
    pub fn without_istio(mut self) -> Self {
        self.istio = None;
        self
    }
    pub fn without_gateway_api(mut self) -> Self {
        self.gateway_api = None;
        self
    }
    pub fn gateway_api_channel(mut self, channel: &str) -> Self {
        self.gateway_api = Some(channel.to_string());
        self
    }
    pub fn without_monitoring_crds(mut self) -> Self {
        self.monitoring_crds = false;
        self
    }
    pub fn without_magnetar_crds(mut self) -> Self {
        self.magnetar_crds = false;
        self
    }
    pub fn with_workloads(mut self) -> Self {
        self.workloads = true;
        self
    }
    /// Workloads, and the real node beside kwok's.
    pub fn with_real_node(mut self) -> Self {
        self.workloads = true;
        self.real_node = true;
        self
    }
    /// Workloads, and istiod validating and injecting.
    pub fn with_istiod(mut self) -> Self {
        self.workloads = true;
        self.istiod = true;
        self
    }
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }
}

/// A running control plane. Dropping it (or [`ControlPlane::shutdown`])
/// stops every process; a control plane that is never dropped (a `static`)
/// is stopped when the process exits, whichever way it exits.
pub struct ControlPlane {
    options: Options,
    binaries: Binaries,
    dir: PathBuf,
    scratch: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    startup: Duration,
    supervisor: Arc<Mutex<Supervisor>>,
    real_node: Mutex<Option<RealNode>>,
    istiod: Option<Istiod>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server", &self.server)
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish()
    }
}

impl ControlPlane {
    /// Builds (or finds) the binaries, starts the processes, installs the
    /// CRDs and waits until everything is ready. Prints the log directory on
    /// stderr.
    pub async fn start(options: Options) -> anyhow::Result<ControlPlane> {
        // A free port can be taken by someone else between our choosing it
        // and the process binding it: start again with new ports.
        let mut attempt = 1;
        loop {
            match Self::start_once(&options).await {
                Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => {
                    eprintln!("magnetar-testenv: a port was taken meanwhile, starting again: {e:#}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(options: &Options) -> anyhow::Result<ControlPlane> {
        let options = options.clone();
        let t0 = Instant::now();
        let binaries = tokio::task::spawn_blocking(Binaries::locate).await??;
        let t_build = t0.elapsed();
        let istio_file = options.istio.as_deref().map(|v| binaries.istio_crds(v)).transpose()?;
        let gateway_api_file = options.gateway_api.as_deref().map(|c| binaries.gateway_api_crds(c)).transpose()?;
        let monitoring_file = options.monitoring_crds.then(|| binaries.pod_monitor_crd()).transpose()?;

        let (dir, scratch) = directories(&options.label)?;
        eprintln!("magnetar-testenv: starting a control plane; logs, certificates and kubeconfig in {}", dir.display());
        let pki = Pki::generate(&dir.join("pki"))?;
        let mut supervisor = Supervisor::new(&scratch, &dir)?;

        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let api_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");
        let p = |path: &Path| path.display().to_string();

        supervisor.spawn_stopped_last(
            "etcd",
            &binaries.bin("etcd"),
            &[
                "--name=default".into(),
                format!("--data-dir={}", scratch.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
                format!("--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}"),
                "--unsafe-no-fsync".into(),
                "--log-level=warn".into(),
            ],
            &dir,
        )?;
        supervisor.spawn(
            "kube-apiserver",
            &binaries.bin("kube-apiserver"),
            &[
                format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                // The `kubernetes` Endpoints may not hold a loopback address.
                "--endpoint-reconciler-type=none".into(),
                format!("--secure-port={api_port}"),
                format!("--tls-cert-file={}", p(&pki.serving_cert)),
                format!("--tls-private-key-file={}", p(&pki.serving_key)),
                format!("--client-ca-file={}", p(&pki.ca_cert)),
                "--authorization-mode=Node,RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p(&pki.sa_pub)),
                format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--allow-privileged=true".into(),
                "--profiling=false".into(),
            ],
            &dir,
        )?;

        let admin = pki.client("magnetar-admin", Some("system:masters"))?;
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, pki::kubeconfig(&server, &pki.ca_pem, &admin, "magnetar-admin"))?;

        let mut cp = ControlPlane {
            options: options.clone(),
            binaries,
            dir,
            scratch,
            kubeconfig,
            server,
            startup: Duration::ZERO,
            supervisor: Arc::new(Mutex::new(supervisor)),
            real_node: Mutex::new(None),
            istiod: None,
        };
        let client = cp.client().await?;

        let t1 = Instant::now();
        cp.guard("kube-apiserver /readyz", wait_readyz(&client)).await?;
        let t_ready = t1.elapsed();

        let t2 = Instant::now();
        let mut all = Vec::new();
        if options.magnetar_crds {
            all.extend(crds::magnetar_crds());
        }
        for file in istio_file.iter().chain(&gateway_api_file).chain(&monitoring_file) {
            all.extend(crds::crds_from_yaml_file(file)?);
        }
        cp.guard("installing CRDs", crds::install(&client, &all, options.timeout)).await?;
        let t_crds = t2.elapsed();

        let t3 = Instant::now();
        if options.workloads {
            cp.start_workloads(&pki, &client).await?;
        }
        if options.real_node {
            cp.start_real_node().await?;
        }
        let t_work = t3.elapsed();
        let t4 = Instant::now();
        if options.istiod {
            cp.istiod = Some(cp.start_istiod(&pki, &client).await?);
        }
        let t_istiod = t4.elapsed();

        cp.startup = t0.elapsed();
        eprintln!(
            "magnetar-testenv: control plane up at {} in {:.1}s (binaries {:.1}s, apiserver ready {:.1}s, {} CRDs {:.1}s{}{}); kubeconfig {}",
            cp.server,
            cp.startup.as_secs_f64(),
            t_build.as_secs_f64(),
            t_ready.as_secs_f64(),
            all.len(),
            t_crds.as_secs_f64(),
            if options.workloads {
                format!(", controllers + kwok nodes {:.1}s", t_work.as_secs_f64())
            } else {
                String::new()
            },
            if options.istiod { format!(", istiod {:.1}s", t_istiod.as_secs_f64()) } else { String::new() },
            cp.kubeconfig.display(),
        );
        Ok(cp)
    }

    /// kube-controller-manager, kube-scheduler, kwok and its fake nodes.
    async fn start_workloads(&self, pki: &Pki, client: &kube::Client) -> anyhow::Result<()> {
        let p = |path: &Path| path.display().to_string();
        let write_kubeconfig = |name: &str, cn: &str, org: Option<&str>| -> anyhow::Result<PathBuf> {
            let cert = pki.client(cn, org)?;
            let path = self.dir.join(format!("{name}.kubeconfig"));
            std::fs::write(&path, pki::kubeconfig(&self.server, &pki.ca_pem, &cert, cn))?;
            Ok(path)
        };
        // --use-service-account-credentials=false: every controller acts as
        // the controller-manager itself, which therefore needs every right.
        let kcm_kc =
            write_kubeconfig("kube-controller-manager", "system:kube-controller-manager", Some("system:masters"))?;
        let sched_kc = write_kubeconfig("kube-scheduler", "system:kube-scheduler", None)?;
        let kwok_kc = write_kubeconfig("kwok", "kwok", Some("system:masters"))?;
        let stages = self.binaries.kwok_stages()?;

        {
            let mut sup = self.supervisor.lock().unwrap_or_else(|e| e.into_inner());
            sup.spawn(
                "kube-controller-manager",
                &self.binaries.bin("kube-controller-manager"),
                &[
                    format!("--kubeconfig={}", p(&kcm_kc)),
                    "--secure-port=0".into(),
                    "--leader-elect=false".into(),
                    // Everything but what needs a cloud or real kubelets.
                    // Endpoints and EndpointSlices: nothing here routes traffic,
                    // and the API server refuses kwok's loopback pod IPs in them.
                    "--controllers=*,-node-ipam-controller,-node-route-controller,-cloud-node-lifecycle-controller,-service-lb-controller,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller".into(),
                    "--use-service-account-credentials=false".into(),
                    format!("--root-ca-file={}", p(&pki.ca_cert)),
                    format!("--cluster-signing-cert-file={}", p(&pki.ca_cert)),
                    format!("--cluster-signing-key-file={}", p(&pki.ca_key)),
                    format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                    "--profiling=false".into(),
                ],
                &self.dir,
            )?;
            sup.spawn(
                "kube-scheduler",
                &self.binaries.bin("kube-scheduler"),
                &[
                    format!("--kubeconfig={}", p(&sched_kc)),
                    "--secure-port=0".into(),
                    "--leader-elect=false".into(),
                    "--profiling=false".into(),
                ],
                &self.dir,
            )?;
            sup.spawn(
                "kwok",
                &self.binaries.bin("kwok"),
                &[
                    format!("--kubeconfig={}", p(&kwok_kc)),
                    format!("--config={}", p(&stages)),
                    "--manage-all-nodes=false".into(),
                    format!(
                        "--manage-nodes-with-annotation-selector={}={}",
                        KWOK_NODE_ANNOTATION.0, KWOK_NODE_ANNOTATION.1
                    ),
                    format!("--cidr={POD_CIDR}"),
                    "--node-ip=127.0.0.1".into(),
                    format!("--node-lease-duration-seconds={NODE_LEASE_SECONDS}"),
                ],
                &self.dir,
            )?;
        }

        let nodes: Api<Node> = Api::all(client.clone());
        for name in fake_nodes() {
            nodes
                .patch(&name, &PatchParams::apply("magnetar-testenv").force(), &Patch::Apply(&fake_node(&name)))
                .await
                .with_context(|| format!("creating the fake node {name}"))?;
        }

        // kwok's default StorageClass: its volume stages bind PVCs (the
        // StatefulSets' volumeClaimTemplates) to hostPath PVs it creates.
        let sc_yaml = std::fs::read_to_string(self.binaries.dir.join("kwok/storage-class.yaml"))
            .context("reading kwok's StorageClass (run tools/build-cluster.sh)")?;
        let sc: k8s_openapi::api::storage::v1::StorageClass = serde_norway::from_str(&sc_yaml)?;
        kube::Api::<k8s_openapi::api::storage::v1::StorageClass>::all(client.clone())
            .patch("kwok-volume", &PatchParams::apply("magnetar-testenv").force(), &Patch::Apply(&sc))
            .await
            .context("creating kwok's StorageClass")?;

        // Ready (kwok), and the node lifecycle controller has lifted the
        // not-ready taint that admission put on each new node.
        let timeout = self.options.timeout;
        for name in fake_nodes() {
            self.guard(&format!("the fake node {name} becoming Ready and untainted"), async {
                tokio::time::timeout(timeout, await_condition(nodes.clone(), &name, node_ready_untainted))
                    .await
                    .map_err(|_| anyhow!("node {name} not Ready and untainted within {timeout:?}"))??;
                Ok(())
            })
            .await?;
        }

        // The service-account controller creating `default` in `default`
        // tells us the controller-manager runs.
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        self.guard("kube-controller-manager creating the default ServiceAccount", async {
            tokio::time::timeout(timeout, await_condition(sas, "default", |sa: Option<&ServiceAccount>| sa.is_some()))
                .await
                .map_err(|_| anyhow!("no default ServiceAccount within {timeout:?}"))??;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// The real node, with the JVM toolkit (built on first use).
    async fn start_real_node(&self) -> anyhow::Result<()> {
        let toolkit = tokio::task::spawn_blocking(binaries::jvm_toolkit).await??;
        let config = NodeConfig {
            kubeconfig: self.kubeconfig.clone(),
            scratch: self.scratch.join("real-node"),
            logs: self.dir.join("pods"),
            toolkit,
            supervisor: self.supervisor.clone(),
        };
        let node = tokio::task::spawn_blocking(move || RealNode::start(config)).await??;
        *self.real_node.lock().unwrap_or_else(|e| e.into_inner()) = Some(node);
        let nodes: Api<Node> = Api::all(self.client().await?);
        let timeout = self.options.timeout;
        self.guard("the real node becoming Ready and untainted but for its own taint", async {
            let ready = |n: Option<&Node>| {
                let ready = n
                    .and_then(|n| n.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                let foreign = n
                    .and_then(|n| n.spec.as_ref())
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|ts| ts.iter().any(|t| t.key != REAL_NODE_TAINT.0));
                ready && !foreign
            };
            tokio::time::timeout(timeout, await_condition(nodes, REAL_NODE, ready))
                .await
                .map_err(|_| anyhow!("node {REAL_NODE} not Ready within {timeout:?}"))??;
            Ok(())
        })
        .await
    }

    /// istiod (built on first use by `tools/build-istio.sh`), its objects
    /// installed, started and ready: its webhook refuses an invalid object.
    async fn start_istiod(&self, pki: &Pki, client: &kube::Client) -> anyhow::Result<Istiod> {
        if self.options.istio.is_none() {
            bail!("istiod needs Istio's CRDs: set Options::istio");
        }
        let tools = tokio::task::spawn_blocking(binaries::istio_tools).await??;
        let ports = [free_port()?, free_port()?, free_port()?, free_port()?, free_port()?, free_port()?];
        let plan = istiod::plan(&tools, pki, &self.dir, &self.kubeconfig, ports)?;
        self.supervisor.lock().unwrap_or_else(|e| e.into_inner()).spawn(
            "istiod",
            &plan.program,
            &plan.args,
            &self.dir,
        )?;
        self.guard("istiod becoming ready", istiod::install_and_wait(client, &plan, self.options.timeout)).await?;
        Ok(plan.istiod)
    }

    /// The running istiod's ports, if [`Options::istiod`].
    pub fn istiod(&self) -> Option<&Istiod> {
        self.istiod.as_ref()
    }

    /// The directory of the real node's container logs, if it runs.
    pub fn pod_logs(&self) -> Option<PathBuf> {
        self.real_node.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|n| n.log_dir().to_path_buf())
    }

    /// Runs `fut`, failing early (with the log's tail) if a process exits.
    async fn guard<T>(&self, what: &str, fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        let deadline = self.options.timeout;
        let exited = async {
            loop {
                let e = self.supervisor.lock().unwrap_or_else(|e| e.into_inner()).first_exited();
                if let Some(e) = e {
                    return e;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            r = fut => r.with_context(|| format!("{what} (logs: {})", self.dir.display())),
            (name, log, status) = exited => Err(anyhow!(
                "{name} exited ({status}) while {what}; last lines of {}:\n{}",
                log.display(),
                tail(&log, 25)
            )),
            _ = tokio::time::sleep(deadline + Duration::from_secs(5)) => {
                bail!("{what}: no result within {deadline:?} (logs: {})", self.dir.display())
            }
        }
    }

    /// A new client (admin, system:masters) for the caller's runtime.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// The admin kubeconfig (certificates embedded).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory holding every process's log, the certificates and the
    /// kubeconfigs.
    pub fn log_dir(&self) -> &Path {
        &self.dir
    }

    /// Scratch data (etcd's), removed when the control plane stops.
    pub fn data_dir(&self) -> &Path {
        &self.scratch
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// kubectl built from the same Kubernetes version.
    pub fn kubectl(&self) -> PathBuf {
        self.binaries.bin("kubectl")
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// How long [`ControlPlane::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// `(name, pid)` of every running process; each leads its own process
    /// group.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.supervisor.lock().unwrap_or_else(|e| e.into_inner()).pids()
    }

    /// Stops kube-apiserver (SIGTERM, SIGKILL after a grace period) and
    /// starts it again with the same flags and port; etcd keeps the data.
    /// Returns once `/readyz` answers `ok` again, with how long the API
    /// server was away.
    pub async fn restart_apiserver(&self) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        let supervisor = self.supervisor.clone();
        tokio::task::spawn_blocking(move || {
            supervisor.lock().unwrap_or_else(|e| e.into_inner()).restart("kube-apiserver")
        })
        .await??;
        let client = self.client().await?;
        self.guard("kube-apiserver /readyz after a restart", wait_readyz(&client)).await?;
        Ok(t0.elapsed())
    }

    /// Stops every process and removes the scratch data (etcd). The log
    /// directory stays. Idempotent.
    pub fn shutdown(&self) {
        if let Some(mut node) = self.real_node.lock().unwrap_or_else(|e| e.into_inner()).take() {
            node.shutdown();
        }
        self.supervisor.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The names of the fake nodes kwok manages.
pub fn fake_nodes() -> impl Iterator<Item = String> {
    (0..FAKE_NODES).map(|i| format!("kwok-node-{i}"))
}

/// A fake node, selected by kwok through its annotation.
fn fake_node(name: &str) -> Node {
    let pods = PODS_PER_NODE.to_string();
    let resources = || {
        std::collections::BTreeMap::from([
            ("cpu".to_string(), Quantity("64".into())),
            ("memory".to_string(), Quantity("256Gi".into())),
            ("pods".to_string(), Quantity(pods.clone())),
        ])
    };
    let labels = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("type", "kwok"),
    ];
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(
                [(KWOK_NODE_ANNOTATION.0, KWOK_NODE_ANNOTATION.1), ("node.alpha.kubernetes.io/ttl", "0")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            labels: Some(labels.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..ObjectMeta::default()
        },
        status: Some(NodeStatus {
            allocatable: Some(resources()),
            capacity: Some(resources()),
            ..NodeStatus::default()
        }),
        ..Node::default()
    }
}

/// Ready, and without taints (the lifecycle controller lifts the
/// not-ready taint once the node is Ready).
pub fn node_ready_untainted(n: Option<&Node>) -> bool {
    let ready = n
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let tainted = n.and_then(|n| n.spec.as_ref()).and_then(|s| s.taints.as_ref()).is_some_and(|ts| !ts.is_empty());
    ready && !tainted
}

async fn wait_readyz(client: &kube::Client) -> anyhow::Result<()> {
    loop {
        let req = http::Request::get("/readyz").body(Vec::new())?;
        let last = match client.request_text(req).await {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => body,
            Err(e) => e.to_string(),
        };
        tracing::trace!(%last, "kube-apiserver not ready yet");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `<target>/testenv/<utc time>-<pid>-<n>-<label>` for logs (kept) and a
/// scratch directory under the system temp dir (removed at shutdown).
fn directories(label: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let root = match std::env::var_os("MAGNETAR_TESTENV_LOGS") {
        Some(d) => PathBuf::from(d),
        None => target_dir().join("testenv"),
    };
    let dir = root.join(format!("{}-{pid}-{n}-{label}", utc_stamp()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let scratch = std::env::temp_dir().join(format!("magnetar-testenv-{pid}-{n}"));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    Ok((dir, scratch))
}

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    match binaries::repo_root() {
        Ok(root) => root.join("target"),
        Err(_) => std::env::temp_dir(),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `YYYYmmdd-HHMMSS` in UTC, without a date crate.
fn utc_stamp() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
            as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamp_is_well_formed() {
        let s = super::utc_stamp();
        assert_eq!(s.len(), 15, "{s}");
        assert!(s.starts_with("20"), "{s}");
        assert_eq!(&s[8..9], "-");
    }
}
