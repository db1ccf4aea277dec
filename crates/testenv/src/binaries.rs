//! Where the control plane's binaries and Istio's CRDs are: built (or found
//! cached) by `tools/build-cluster.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, bail};

/// The Istio version the guide is tested with.
pub const ISTIO_GUIDE: &str = "1.24.2";
/// The newest Istio whose CRDs `tools/build-cluster.sh` fetches.
pub const ISTIO_NEWEST: &str = "1.32.0";
/// The Gateway API whose CRDs `tools/build-cluster.sh` fetches (TLSRoute is
/// v1 in its standard channel from 1.5 on).
pub const GATEWAY_API_VERSION: &str = "v1.6.3";
/// The prometheus-operator whose PodMonitor CRD `tools/build-cluster.sh` fetches.
pub const PROMETHEUS_OPERATOR_VERSION: &str = "v0.85.0";

/// The cache directory of one control-plane build: `bin/` and `istio/`.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    /// Runs `tools/build-cluster.sh` (a no-op when cached; a cold build takes
    /// 5-10 minutes and reports progress on stderr) and returns its cache
    /// directory. `MAGNETAR_CLUSTER_DIR` skips the script and names the
    /// directory directly. Runs the script once per process.
    pub fn locate() -> anyhow::Result<Binaries> {
        static CACHED: Mutex<Option<Binaries>> = Mutex::new(None);
        let mut cached = CACHED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = &*cached {
            return Ok(b.clone());
        }
        let dir = match std::env::var_os("MAGNETAR_CLUSTER_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => run_build_script()?,
        };
        for tool in ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"] {
            let p = dir.join("bin").join(tool);
            if !p.is_file() {
                bail!("{} is missing: the control-plane cache {} is incomplete", p.display(), dir.display());
            }
        }
        let b = Binaries { dir };
        *cached = Some(b.clone());
        Ok(b)
    }

    pub fn bin(&self, tool: &str) -> PathBuf {
        self.dir.join("bin").join(tool)
    }

    /// kwok's default node and pod stages, taken from the kwok module.
    pub fn kwok_stages(&self) -> anyhow::Result<PathBuf> {
        let p = self.dir.join("kwok").join("stages.yaml");
        if p.is_file() {
            return Ok(p);
        }
        bail!("{} is missing: run tools/build-cluster.sh", p.display())
    }

    /// The CRD YAML of an Istio version.
    /// The Gateway API CRDs of `channel` (`standard` or `experimental`) at
    /// [`GATEWAY_API_VERSION`].
    pub fn gateway_api_crds(&self, channel: &str) -> anyhow::Result<PathBuf> {
        let p = self.dir.join("gateway-api").join(format!("{GATEWAY_API_VERSION}-{channel}.yaml"));
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "no Gateway API {GATEWAY_API_VERSION} {channel} CRDs in {} (tools/build-cluster.sh fetches them)",
            self.dir.display()
        )
    }

    /// prometheus-operator's PodMonitor CRD at [`PROMETHEUS_OPERATOR_VERSION`].
    pub fn pod_monitor_crd(&self) -> anyhow::Result<PathBuf> {
        let p = self.dir.join("prometheus-operator").join(format!("{PROMETHEUS_OPERATOR_VERSION}-podmonitors.yaml"));
        if p.is_file() {
            return Ok(p);
        }
        bail!("no PodMonitor CRD in {} (tools/build-cluster.sh fetches it)", self.dir.display())
    }

    /// prometheus-operator's ServiceMonitor CRD at [`PROMETHEUS_OPERATOR_VERSION`]
    /// (the chart's optional ServiceMonitor for the operator).
    pub fn service_monitor_crd(&self) -> anyhow::Result<PathBuf> {
        let p =
            self.dir.join("prometheus-operator").join(format!("{PROMETHEUS_OPERATOR_VERSION}-servicemonitors.yaml"));
        if p.is_file() {
            return Ok(p);
        }
        bail!("no ServiceMonitor CRD in {} (tools/build-cluster.sh fetches it)", self.dir.display())
    }

    pub fn istio_crds(&self, version: &str) -> anyhow::Result<PathBuf> {
        let p = self.dir.join("istio").join(format!("{version}.yaml"));
        if p.is_file() {
            return Ok(p);
        }
        let have: Vec<String> = std::fs::read_dir(self.dir.join("istio"))
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        bail!("no CRDs for Istio {version} in {} (have: {})", self.dir.display(), have.join(", "))
    }
}

/// The repository root: from this crate's source location, else the first
/// ancestor of the current directory that has `tools/build-cluster.sh`.
pub fn repo_root() -> anyhow::Result<PathBuf> {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if compiled.join("tools/build-cluster.sh").is_file() {
        return Ok(compiled.canonicalize()?);
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        if dir.join("tools/build-cluster.sh").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "cannot find tools/build-cluster.sh above {} (nor in the source tree {}); run from the magnetar repository or set MAGNETAR_CLUSTER_DIR",
        cwd.display(),
        compiled.display()
    )
}

fn run_build_script() -> anyhow::Result<PathBuf> {
    run_script("tools/build-cluster.sh")
}

/// The JVM toolkit (real ZooKeeper, BookKeeper and Pulsar configuration
/// jars, the image shims): `tools/build-jvm.sh`'s cache directory, built
/// once per process. `MAGNETAR_JVM_DIR` names it directly.
pub fn jvm_toolkit() -> anyhow::Result<PathBuf> {
    static CACHED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut cached = CACHED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = &*cached {
        return Ok(d.clone());
    }
    let dir = match std::env::var_os("MAGNETAR_JVM_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => run_script("tools/build-jvm.sh")?,
    };
    if !dir.join("image/bin").is_dir() {
        bail!("{} has no image/bin: the JVM toolkit cache is incomplete", dir.display());
    }
    *cached = Some(dir.clone());
    Ok(dir)
}

/// Istio's `istioctl` and `pilot-discovery` (istiod), built from the pinned
/// `istio.io/istio` module, and `analyze-files` (istioctl's analyzers over
/// files, Pods and Services included; `tools/istio/cmd/analyze-files`) and
/// `xds-dump` (istiod's configuration generator for one proxy;
/// `tools/istio/cmd/xds-dump`): `tools/build-istio.sh`'s cache directory
/// (its `bin/` holds all four),
/// built once per process. A cold build takes about 10 CPU-minutes (15-20
/// minutes on two busy cores) and reports progress on stderr.
/// `MAGNETAR_ISTIO_DIR` names the directory directly.
pub fn istio_tools() -> anyhow::Result<PathBuf> {
    static CACHED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut cached = CACHED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = &*cached {
        return Ok(d.clone());
    }
    let dir = match std::env::var_os("MAGNETAR_ISTIO_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => run_script("tools/build-istio.sh")?,
    };
    for tool in ["istioctl", "pilot-discovery", "analyze-files", "xds-dump"] {
        let p = dir.join("bin").join(tool);
        if !p.is_file() {
            bail!("{} is missing: the Istio cache {} is incomplete", p.display(), dir.display());
        }
    }
    *cached = Some(dir.clone());
    Ok(dir)
}

/// Helm, built from the pinned `helm.sh/helm/v4` module by
/// `tools/build-helm.sh` (about 2 minutes cold), once per process.
/// `MAGNETAR_HELM` names the binary directly.
pub fn helm() -> anyhow::Result<PathBuf> {
    static CACHED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut cached = CACHED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = &*cached {
        return Ok(p.clone());
    }
    let p = match std::env::var_os("MAGNETAR_HELM") {
        Some(p) => PathBuf::from(p),
        None => run_script("tools/build-helm.sh")?,
    };
    if !p.is_file() {
        bail!("{} is missing: the Helm cache is incomplete", p.display());
    }
    *cached = Some(p.clone());
    Ok(p)
}

/// Runs a build script of `tools/` and returns the cache directory (or
/// binary) it prints on its last line.
fn run_script(relative: &str) -> anyhow::Result<PathBuf> {
    let script = repo_root()?.join(relative);
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({}); its progress and errors are above on stderr", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
    if last.is_empty() {
        bail!("{} printed no cache directory on stdout", script.display());
    }
    Ok(PathBuf::from(last))
}
