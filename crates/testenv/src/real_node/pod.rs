//! One pod on the real node: its volumes, its containers' processes (with
//! restarts and probes), its status, its deletion.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::probe::{self, Tracker};
use super::{NodeCtx, view};

/// Where the JVM toolkit and the bind shim appear inside every pod.
const TOOLKIT_MOUNT: &str = "/opt/magnetar-jvm";
/// The Pulsar image's home and working directory.
const IMAGE_HOME: &str = "/pulsar";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Restart back-off: the kubelet's doubling, capped lower (tests wait on it).
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The longest grace period honoured on deletion.
const MAX_GRACE: Duration = Duration::from_secs(30);

/// The status of one container, as reported.
#[derive(Clone, Debug, Default)]
struct ContainerState {
    running_since: Option<String>,
    waiting: Option<(String, String)>,
    last_exit: Option<(i32, String, String)>,
    restarts: i32,
    started: bool,
    ready: bool,
}

struct PodState {
    containers: Vec<(String, String, ContainerState)>,
    init_done: bool,
    message: Option<String>,
}

/// Runs the pod until `stop`, then deletes it for good.
pub async fn run(ctx: Arc<NodeCtx>, pod: Pod, ip: Ipv4Addr, mut stop: watch::Receiver<bool>) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let start_time = now();
    let state = Arc::new(Mutex::new(PodState {
        containers: spec.containers.iter().map(|c| (c.name.clone(), image(c), ContainerState::default())).collect(),
        init_done: spec.init_containers.as_ref().is_none_or(Vec::is_empty),
        message: None,
    }));
    let changed = Arc::new(Notify::new());
    let reporter = Reporter {
        client: ctx.client.clone(),
        ns: ns.clone(),
        name: name.clone(),
        ip,
        start_time,
        transitions: Mutex::new(BTreeMap::new()),
    };
    reporter.report(&state).await;

    let dir = ctx.scratch.join("pods").join(format!("{ns}_{name}_{}", &uid[..uid.len().min(8)]));
    let layout = tokio::select! {
        l = prepare(&ctx, &pod, &dir, ip) => l,
        _ = stop.changed() => {
            super::delete_now(&ctx.client, &ns, &name, &uid).await;
            return;
        }
    };
    // The kubelet starts a pod's containers with its own name already in
    // its /etc/hosts. Here the namespace's hosts file gains the pod once the
    // node loop sees the reported pod IP; a JVM that resolved its own
    // hostname before that would keep the failure (a bookie would register
    // under its IP). So the containers wait for the entry; the status is
    // reported again meanwhile, in case the first report was lost.
    let own_entry = format!("{ip} ");
    while !tokio::fs::read_to_string(&layout.hosts).await.is_ok_and(|t| t.lines().any(|l| l.starts_with(&own_entry))) {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => reporter.report(&state).await,
            _ = stop.changed() => {
                super::delete_now(&ctx.client, &ns, &name, &uid).await;
                return;
            }
        }
    }
    let layout = Arc::new(layout);

    // Init containers, in order, each to completion.
    for c in spec.init_containers.iter().flatten() {
        loop {
            let cs = Arc::new(Mutex::new(ContainerState::default()));
            let code = tokio::select! {
                code = run_to_completion(&ctx, &layout, c, &cs) => code,
                _ = stop.changed() => {
                    super::delete_now(&ctx.client, &ns, &name, &uid).await;
                    return;
                }
            };
            if code == 0 {
                break;
            }
            state.lock().unwrap_or_else(|e| e.into_inner()).message =
                Some(format!("init container {} exited {code}", c.name));
            reporter.report(&state).await;
            tokio::time::sleep(BACKOFF_START).await;
        }
    }
    state.lock().unwrap_or_else(|e| e.into_inner()).init_done = true;

    let (stop_containers, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let run = ContainerRun {
            ctx: ctx.clone(),
            layout: layout.clone(),
            container: c.clone(),
            index: i,
            state: state.clone(),
            changed: changed.clone(),
            grace: grace(&pod),
        };
        tasks.push(tokio::spawn(run.run(stop_rx.clone())));
    }
    loop {
        tokio::select! {
            _ = changed.notified() => reporter.report(&state).await,
            _ = stop.changed() => break,
        }
    }
    let _ = stop_containers.send(true);
    for t in tasks {
        let _ = t.await;
    }
    super::delete_now(&ctx.client, &ns, &name, &uid).await;
}

/// A pod marked for deletion that never ran here.
pub async fn finish_deletion(client: &kube::Client, ns: &str, name: &str, uid: &str) {
    super::delete_now(client, ns, name, uid).await;
}

fn grace(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .max(0) as u64;
    Duration::from_secs(secs).min(MAX_GRACE)
}

fn image(c: &Container) -> String {
    c.image.clone().unwrap_or_default()
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

// ---------------------------------------------------------------------------
// Layout: volumes and the image

/// Host paths of the pod's volumes, its identity, and its hosts file.
struct Layout {
    dir: PathBuf,
    ns: String,
    pod_name: String,
    hostname: String,
    ip: Ipv4Addr,
    volumes: BTreeMap<String, PathBuf>,
    image_home: PathBuf,
    hosts: PathBuf,
    toolkit: PathBuf,
    shim: PathBuf,
    refs: Refs,
    pod: Pod,
}

/// Lays out the pod's directory: a copy of the image's `/pulsar`, and each
/// volume (waiting, as the kubelet does, until its ConfigMap or Secret
/// exists).
async fn prepare(ctx: &NodeCtx, pod: &Pod, dir: &Path, ip: Ipv4Addr) -> Layout {
    loop {
        match try_prepare(ctx, pod, dir, ip).await {
            Ok(l) => return l,
            Err(e) => {
                tracing::debug!("real node: preparing {}: {e:#}", dir.display());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn try_prepare(ctx: &NodeCtx, pod: &Pod, dir: &Path, ip: Ipv4Addr) -> anyhow::Result<Layout> {
    let refs = Refs::fetch(&ctx.client, pod).await?;
    let hosts = ctx.hosts_file(pod.metadata.namespace.as_deref().unwrap_or_default());
    if !hosts.exists() {
        std::fs::write(&hosts, "127.0.0.1 localhost\n")?;
    }
    let paths =
        Paths { toolkit: ctx.toolkit.clone(), shim: ctx.shim.clone(), hosts, claims: ctx.scratch.join("claims") };
    layout(pod, &refs, dir, ip, &paths)
}

/// The ConfigMaps and Secrets a pod refers to (volumes, env, envFrom),
/// by name: data of ConfigMaps as text, of Secrets as bytes.
#[derive(Clone, Debug, Default)]
pub struct Refs {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Refs {
    /// Reads every ConfigMap and Secret the pod names; one that is missing
    /// and not optional is an error (the kubelet waits for it).
    async fn fetch(client: &kube::Client, pod: &Pod) -> anyhow::Result<Refs> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let mut refs = Refs::default();
        for (name, optional) in referenced(pod, true) {
            match cms.get_opt(&name).await? {
                Some(c) => {
                    refs.config_maps.insert(name, c.data.unwrap_or_default());
                }
                None if optional => {}
                None => anyhow::bail!("ConfigMap {ns}/{name} not found"),
            }
        }
        for (name, optional) in referenced(pod, false) {
            match secrets.get_opt(&name).await? {
                Some(s) => {
                    let mut d: BTreeMap<String, Vec<u8>> =
                        s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                    for (k, v) in s.string_data.unwrap_or_default() {
                        d.insert(k, v.into_bytes());
                    }
                    refs.secrets.insert(name, d);
                }
                None if optional => {}
                None => anyhow::bail!("Secret {ns}/{name} not found"),
            }
        }
        Ok(refs)
    }
}

/// `(name, optional)` of the ConfigMaps (or Secrets) a pod refers to.
fn referenced(pod: &Pod, config_maps: bool) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let Some(spec) = &pod.spec else { return out };
    for v in spec.volumes.iter().flatten() {
        if config_maps && let Some(cm) = &v.config_map {
            out.push((cm.name.clone(), cm.optional == Some(true)));
        }
        if !config_maps && let Some(s) = &v.secret {
            out.push((s.secret_name.clone().unwrap_or_default(), s.optional == Some(true)));
        }
    }
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for from in c.env_from.iter().flatten() {
            if config_maps && let Some(r) = &from.config_map_ref {
                out.push((r.name.clone(), r.optional == Some(true)));
            }
            if !config_maps && let Some(r) = &from.secret_ref {
                out.push((r.name.clone(), r.optional == Some(true)));
            }
        }
        for e in c.env.iter().flatten() {
            let Some(from) = &e.value_from else { continue };
            if config_maps && let Some(r) = &from.config_map_key_ref {
                out.push((r.name.clone(), r.optional == Some(true)));
            }
            if !config_maps && let Some(r) = &from.secret_key_ref {
                out.push((r.name.clone(), r.optional == Some(true)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Where the shared pieces of every pod are on this machine.
pub struct Paths {
    pub toolkit: PathBuf,
    pub shim: PathBuf,
    pub hosts: PathBuf,
    /// Claims' data, by namespace and claim name (outlives pods).
    pub claims: PathBuf,
}

/// Lays out the pod's directory: a copy of the image's `/pulsar`, and each
/// volume from `refs`.
fn layout(pod: &Pod, refs: &Refs, dir: &Path, ip: Ipv4Addr, paths: &Paths) -> anyhow::Result<Layout> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let fs_group = spec.security_context.as_ref().and_then(|s| s.fs_group);
    std::fs::create_dir_all(dir.join("ns"))?;
    let image_home = dir.join("image");
    if !image_home.exists() {
        copy_tree(&paths.toolkit.join("image"), &image_home)?;
        // The image's directories are group 0 and group-writable (the
        // Pulsar image's convention; its user is 10000 in group 0).
        make_group_writable(&image_home, 0)?;
    }
    let mut volumes = BTreeMap::new();
    for v in spec.volumes.iter().flatten() {
        let vdir = dir.join("volumes").join(&v.name);
        let path = if let Some(cm) = &v.config_map {
            let data: BTreeMap<String, Vec<u8>> = refs
                .config_maps
                .get(&cm.name)
                .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect())
                .unwrap_or_default();
            let keys = cm.items.as_ref().map(|items| items.iter().map(|i| (i.key.clone(), i.path.clone())).collect());
            write_files(&vdir, &data, keys, cm.default_mode.unwrap_or(0o644))?
        } else if let Some(s) = &v.secret {
            let data = refs.secrets.get(s.secret_name.as_deref().unwrap_or_default()).cloned().unwrap_or_default();
            let keys = s.items.as_ref().map(|items| items.iter().map(|i| (i.key.clone(), i.path.clone())).collect());
            write_files(&vdir, &data, keys, s.default_mode.unwrap_or(0o644))?
        } else if let Some(claim) = &v.persistent_volume_claim {
            // Claims outlive pods: a StatefulSet's replacement pod finds
            // its data again.
            let p = paths.claims.join(&ns).join(&claim.claim_name);
            std::fs::create_dir_all(&p)?;
            make_group_writable(&p, fs_group.unwrap_or(0) as u32)?;
            p
        } else {
            // emptyDir, and anything else the test node does not model
            // (projected service-account tokens: nothing here reads them).
            std::fs::create_dir_all(&vdir)?;
            make_group_writable(&vdir, fs_group.unwrap_or(0) as u32)?;
            vdir
        };
        volumes.insert(v.name.clone(), path);
    }
    Ok(Layout {
        dir: dir.to_path_buf(),
        ns,
        pod_name: pod.metadata.name.clone().unwrap_or_default(),
        hostname: spec.hostname.clone().or_else(|| pod.metadata.name.clone()).unwrap_or_default(),
        ip,
        volumes,
        image_home,
        hosts: paths.hosts.clone(),
        toolkit: paths.toolkit.clone(),
        shim: paths.shim.clone(),
        refs: refs.clone(),
        pod: pod.clone(),
    })
}

/// Writes a ConfigMap's or Secret's keys as files (all keys, or the
/// `items` selected, at their paths).
fn write_files(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<Vec<(String, String)>>,
    mode: i32,
) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let files: Vec<(String, String)> = items.unwrap_or_else(|| data.keys().map(|k| (k.clone(), k.clone())).collect());
    for (key, rel) in files {
        let Some(bytes) = data.get(&key) else { continue };
        if rel.contains("..") || rel.starts_with('/') {
            continue;
        }
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode as u32 & 0o777))?;
    }
    Ok(dir.to_path_buf())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .with_context(|| format!("copying {}", from.display()))?;
    anyhow::ensure!(status.success(), "cp -a {} {} failed", from.display(), to.display());
    Ok(())
}

/// `chgrp -R gid` and group write with setgid directories, as the kubelet
/// does for a volume with an `fsGroup`.
fn make_group_writable(path: &Path, gid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("chgrp").arg("-R").arg(gid.to_string()).arg(path).status()?;
    anyhow::ensure!(status.success(), "chgrp {gid} {}", path.display());
    let status = std::process::Command::new("chmod").arg("-R").arg("g+rwX").arg(path).status()?;
    anyhow::ensure!(status.success(), "chmod g+rwX {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------
// Containers

/// The user, group and supplementary groups a container runs as.
#[derive(Clone, Debug)]
struct Identity {
    uid: i64,
    gid: i64,
    groups: Vec<i64>,
}

fn identity(pod: &Pod, c: &Container) -> Identity {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let uid = csc.and_then(|s| s.run_as_user).or(psc.and_then(|s| s.run_as_user)).unwrap_or(0);
    let gid = csc.and_then(|s| s.run_as_group).or(psc.and_then(|s| s.run_as_group)).unwrap_or(0);
    let mut groups: Vec<i64> = psc.and_then(|s| s.fs_group).into_iter().collect();
    groups.extend(psc.and_then(|s| s.supplemental_groups.clone()).unwrap_or_default());
    groups.sort();
    groups.dedup();
    Identity { uid, gid, groups }
}

fn setpriv(id: &Identity) -> Vec<String> {
    let mut v = vec!["setpriv".to_string(), format!("--reuid={}", id.uid), format!("--regid={}", id.gid)];
    if id.groups.is_empty() {
        v.push("--clear-groups".into());
    } else {
        v.push(format!("--groups={}", id.groups.iter().map(i64::to_string).collect::<Vec<_>>().join(",")));
    }
    v.push("--no-new-privs".into());
    v.push("--".into());
    v
}

/// Single-quoted for sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script that builds the container's view (run by `unshare` in new
/// mount and UTS namespaces): a copy-on-write root, the image, the volumes
/// at their mount paths, the hosts file, the hostname; then it becomes the
/// container's command as its user, in its working directory.
fn setup_script(l: &Layout, c: &Container, id: &Identity) -> String {
    let r = l.dir.join("ns").display().to_string();
    let root = format!("{r}/root");
    let mut s = String::from("set -e\nmount --make-rprivate /\n");
    s.push_str(&format!("mount -t tmpfs -o size=512m magnetar-pod {}\n", q(&r)));
    s.push_str(&format!("mkdir {0}/up {0}/work {0}/root\n", q(&r)));
    s.push_str(&format!("mount -t overlay overlay -o lowerdir=/,upperdir={r}/up,workdir={r}/work {}\n", q(&root)));
    for d in ["proc", "dev", "sys"] {
        s.push_str(&format!("mount --rbind /{d} {}\n", q(&format!("{root}/{d}"))));
    }
    let mut bind = |src: &Path, target: &str, read_only: bool, file: bool| {
        let t = q(&format!("{root}{target}"));
        if file {
            s.push_str(&format!("mkdir -p \"$(dirname {t})\"; [ -e {t} ] || touch {t}\n"));
        } else {
            s.push_str(&format!("mkdir -p {t}\n"));
        }
        s.push_str(&format!("mount --bind {} {t}\n", q(&src.display().to_string())));
        if read_only {
            s.push_str(&format!("mount -o remount,bind,ro {t}\n"));
        }
    };
    bind(&l.image_home, IMAGE_HOME, false, false);
    bind(&l.toolkit, TOOLKIT_MOUNT, true, false);
    bind(&l.shim, &format!("{TOOLKIT_MOUNT}-bind-shim.so"), true, true);
    bind(&l.hosts, "/etc/hosts", true, true);
    let mut mounts: Vec<_> = c.volume_mounts.iter().flatten().collect();
    mounts.sort_by_key(|m| m.mount_path.len());
    for m in mounts {
        if let Some(src) = l.volumes.get(&m.name) {
            let src = match m.sub_path.as_deref().filter(|p| !p.is_empty() && !p.contains("..")) {
                Some(sub) => src.join(sub),
                None => src.clone(),
            };
            bind(&src, &m.mount_path, m.read_only == Some(true), src.is_file());
        }
    }
    s.push_str(&format!("hostname {}\n", q(&l.hostname)));
    let wd = c.working_dir.clone().unwrap_or_else(|| IMAGE_HOME.to_string());
    let user = setpriv(id).iter().map(|a| q(a)).collect::<Vec<_>>().join(" ");
    s.push_str(&format!(
        "exec chroot {} /bin/sh -c 'cd \"$1\" || exit 1; shift; exec \"$@\"' magnetar-wd {} {user} \"$@\"\n",
        q(&root),
        q(&wd)
    ));
    s
}

/// The container's environment, as the kubelet computes it.
fn environment(l: &Layout, c: &Container) -> anyhow::Result<Vec<(String, String)>> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut set = |vars: &mut BTreeMap<String, String>, k: String, v: String| {
        if !vars.contains_key(&k) {
            order.push(k.clone());
        }
        vars.insert(k, v);
    };
    // What the image and the runtime provide.
    set(&mut vars, "PATH".into(), PATH.into());
    set(&mut vars, "HOSTNAME".into(), l.hostname.clone());
    set(&mut vars, "HOME".into(), IMAGE_HOME.into());
    set(&mut vars, "PULSAR_HOME".into(), IMAGE_HOME.into());
    set(&mut vars, "MAGNETAR_JVM_HOME".into(), TOOLKIT_MOUNT.into());
    set(&mut vars, "MAGNETAR_POD_IP".into(), l.ip.to_string());
    set(&mut vars, "LD_PRELOAD".into(), format!("{TOOLKIT_MOUNT}-bind-shim.so"));
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(data) = from.config_map_ref.as_ref().and_then(|r| l.refs.config_maps.get(&r.name)) {
            for (k, v) in data {
                set(&mut vars, format!("{prefix}{k}"), v.clone());
            }
        }
        if let Some(data) = from.secret_ref.as_ref().and_then(|r| l.refs.secrets.get(&r.name)) {
            for (k, v) in data {
                set(&mut vars, format!("{prefix}{k}"), String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    for e in c.env.iter().flatten() {
        let v = env_value(l, c, e)?;
        let v = view::expand(&v, &vars);
        set(&mut vars, e.name.clone(), v);
    }
    Ok(order.into_iter().map(|k| (k.clone(), vars[&k].clone())).collect())
}

fn env_value(l: &Layout, c: &Container, e: &EnvVar) -> anyhow::Result<String> {
    let Some(from) = &e.value_from else { return Ok(e.value.clone().unwrap_or_default()) };
    if let Some(r) = &from.secret_key_ref {
        let v =
            l.refs.secrets.get(&r.name).and_then(|d| d.get(&r.key)).map(|b| String::from_utf8_lossy(b).into_owned());
        return match v {
            Some(v) => Ok(v),
            None if r.optional == Some(true) => Ok(String::new()),
            None => Err(anyhow!("env {}: key {} of Secret {} not found", e.name, r.key, r.name)),
        };
    }
    if let Some(r) = &from.config_map_key_ref {
        let v = l.refs.config_maps.get(&r.name).and_then(|d| d.get(&r.key)).cloned();
        return match v {
            Some(v) => Ok(v),
            None if r.optional == Some(true) => Ok(String::new()),
            None => Err(anyhow!("env {}: key {} of ConfigMap {} not found", e.name, r.key, r.name)),
        };
    }
    if let Some(f) = &from.field_ref {
        let spec = l.pod.spec.as_ref();
        return Ok(match f.field_path.as_str() {
            "metadata.name" => l.pod_name.clone(),
            "metadata.namespace" => l.ns.clone(),
            "metadata.uid" => l.pod.metadata.uid.clone().unwrap_or_default(),
            "status.podIP" => l.ip.to_string(),
            "status.hostIP" => "127.0.0.1".into(),
            "spec.nodeName" => super::REAL_NODE.into(),
            "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
            other => return Err(anyhow!("env {}: fieldRef {other} is not supported by the test node", e.name)),
        });
    }
    if let Some(r) = &from.resource_field_ref {
        let res = c.resources.as_ref();
        let (kind, what) = r.resource.split_once('.').unwrap_or(("", ""));
        let map = match kind {
            "limits" => res.and_then(|r| r.limits.as_ref()),
            "requests" => res.and_then(|r| r.requests.as_ref()),
            _ => None,
        };
        return Ok(map.and_then(|m| m.get(what)).map(|q| q.0.clone()).unwrap_or_else(|| "0".into()));
    }
    Ok(String::new())
}

struct ContainerRun {
    ctx: Arc<NodeCtx>,
    layout: Arc<Layout>,
    container: Container,
    index: usize,
    state: Arc<Mutex<PodState>>,
    changed: Arc<Notify>,
    grace: Duration,
}

impl ContainerRun {
    fn update(&self, f: impl FnOnce(&mut ContainerState)) {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut st.containers[self.index].2);
        }
        self.changed.notify_one();
    }

    /// Runs the container, restarting it with back-off whenever it exits
    /// or fails its liveness or startup probe, until `stop`.
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_START;
        loop {
            let outcome = self.run_once(&mut stop).await;
            let Some((code, reason)) = outcome else { return };
            let finished = now();
            self.update(|s| {
                let started = s.running_since.take().unwrap_or_default();
                s.last_exit = Some((code, reason.clone(), format!("{started}|{finished}")));
                s.waiting =
                    Some(("CrashLoopBackOff".into(), format!("back-off {backoff:?} restarting failed container")));
                s.ready = false;
                s.started = false;
                s.restarts += 1;
            });
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One run of the process. `None` when stopped; else its exit code and
    /// reason.
    async fn run_once(&self, stop: &mut watch::Receiver<bool>) -> Option<(i32, String)> {
        let c = &self.container;
        let l = &self.layout;
        let env = match environment(l, c) {
            Ok(env) => env,
            Err(e) => {
                self.update(|s| s.waiting = Some(("CreateContainerConfigError".into(), format!("{e:#}"))));
                return tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => Some((-1, "CreateContainerConfigError".into())),
                    _ = stop.changed() => None,
                };
            }
        };
        let id = identity(&l.pod, c);
        let (mut child, pid) = match spawn(&self.ctx, l, c, &env, &id) {
            Ok(x) => x,
            Err(e) => {
                self.update(|s| s.waiting = Some(("RunContainerError".into(), format!("{e:#}"))));
                return tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => Some((-1, "RunContainerError".into())),
                    _ = stop.changed() => None,
                };
            }
        };
        let started = Instant::now();
        self.update(|s| {
            s.running_since = Some(now());
            s.waiting = None;
            s.started = c.startup_probe.is_none();
            s.ready = false;
        });
        let ports = super::named_ports(c);
        let mut exec_prefix = vec![
            "nsenter".to_string(),
            "-t".into(),
            pid.to_string(),
            "-m".into(),
            "-u".into(),
            "-r".into(),
            "-w".into(),
            "--".into(),
        ];
        exec_prefix.extend(setpriv(&id));
        let target = probe::Target { ip: l.ip, ports: &ports, exec_prefix: &exec_prefix, env: &env };
        let mut startup = c.startup_probe.clone().map(|p| Tracker::new(p, started));
        let mut readiness = c.readiness_probe.clone().map(|p| Tracker::new(p, started));
        let mut liveness = c.liveness_probe.clone().map(|p| Tracker::new(p, started));
        if readiness.is_none() {
            self.update(|s| s.ready = true);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                status = child.wait() => {
                    crate::process::forget(pid);
                    let code = status.ok().and_then(|s| {
                        use std::os::unix::process::ExitStatusExt;
                        s.code().or(s.signal().map(|sig| 128 + sig))
                    }).unwrap_or(-1);
                    let reason = if code == 0 { "Completed" } else { "Error" };
                    return Some((code, reason.into()));
                }
                _ = stop.changed() => {
                    terminate(&mut child, pid, self.grace).await;
                    return None;
                }
                _ = tick.tick() => {}
            }
            let now_i = Instant::now();
            if let Some(t) = startup.as_mut().filter(|t| t.state != Some(true)) {
                if t.due(now_i) {
                    let o = probe::run(&t.probe, &target).await;
                    match t.record(o, Instant::now()) {
                        Some(true) => self.update(|s| s.started = true),
                        Some(false) => {
                            tracing::info!("real node: {} startup probe failed: {:?}", l.pod_name, t.last);
                            terminate(&mut child, pid, self.grace).await;
                            return Some((137, "StartupProbeFailed".into()));
                        }
                        None => {}
                    }
                }
                continue;
            }
            if let Some(t) = liveness.as_mut()
                && t.due(now_i)
            {
                let o = probe::run(&t.probe, &target).await;
                if t.record(o, Instant::now()) == Some(false) {
                    tracing::info!("real node: {} liveness probe failed: {:?}", l.pod_name, t.last);
                    terminate(&mut child, pid, self.grace).await;
                    return Some((137, "LivenessProbeFailed".into()));
                }
            }
            if let Some(t) = readiness.as_mut()
                && t.due(now_i)
            {
                let o = probe::run(&t.probe, &target).await;
                if let Some(v) = t.record(o, Instant::now()) {
                    self.update(|s| s.ready = v);
                }
            }
        }
    }
}

/// Starts the container's process in its own process group (registered
/// with the supervisor, so it cannot outlive the tests), output appended to
/// its log file.
fn spawn(
    ctx: &NodeCtx,
    l: &Layout,
    c: &Container,
    env: &[(String, String)],
    id: &Identity,
) -> anyhow::Result<(tokio::process::Child, i32)> {
    let log_path = ctx.logs.join(format!("{}_{}_{}.log", l.ns, l.pod_name, c.name));
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
    {
        use std::io::Write;
        writeln!(&log, "# {} started container {} (pod IP {})", now(), c.name, l.ip)?;
    }
    let mut cmd = command(l, c, env, id)?;
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let child = cmd.spawn().context("starting unshare")?;
    let pid = child.id().ok_or_else(|| anyhow!("no pid"))? as i32;
    ctx.supervisor.lock().unwrap_or_else(|e| e.into_inner()).adopt(pid);
    Ok((child, pid))
}

/// The container's process: `unshare` into new mount and UTS namespaces,
/// [`setup_script`], then the container's command and args unchanged (but
/// for `$(VAR)` references), in its own process group.
fn command(
    l: &Layout,
    c: &Container,
    env: &[(String, String)],
    id: &Identity,
) -> anyhow::Result<tokio::process::Command> {
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let argv: Vec<String> =
        c.command.iter().flatten().chain(c.args.iter().flatten()).map(|a| view::expand(a, &vars)).collect();
    if argv.is_empty() {
        anyhow::bail!("container {} has no command: the test node has no image entrypoints", c.name);
    }
    let script = setup_script(l, c, id);
    let mut cmd = tokio::process::Command::new("unshare");
    cmd.args(["--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", &script, "magnetar-setup"]);
    cmd.args(argv);
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.process_group(0);
    Ok(cmd)
}

/// What an offline run printed.
#[derive(Debug)]
pub struct OfflineOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the first container of `pod` once, outside any cluster, exactly as
/// the real node would (same layout, environment, namespaces, user), with
/// `refs` for its ConfigMaps and Secrets and `extra_env` added (after the
/// pod's own). Waits up to `timeout` for it to exit; its output is returned.
pub async fn run_offline(
    pod: &Pod,
    refs: &Refs,
    paths: &Paths,
    dir: &Path,
    extra_env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<OfflineOutput> {
    let l = layout(pod, refs, dir, Ipv4Addr::LOCALHOST, paths)?;
    let spec = pod.spec.as_ref().ok_or_else(|| anyhow!("a pod without spec"))?;
    let c = spec.containers.first().ok_or_else(|| anyhow!("a pod without containers"))?;
    let mut env = environment(&l, c)?;
    env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let id = identity(pod, c);
    let mut cmd = command(&l, c, &env, &id)?;
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| anyhow!("{} did not exit within {timeout:?}", c.name))??;
    Ok(OfflineOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs an init container to completion; its exit code.
async fn run_to_completion(ctx: &NodeCtx, l: &Layout, c: &Container, _state: &Arc<Mutex<ContainerState>>) -> i32 {
    let Ok(env) = environment(l, c) else { return -1 };
    let id = identity(&l.pod, c);
    let Ok((mut child, pid)) = spawn(ctx, l, c, &env, &id) else { return -1 };
    let status = child.wait().await;
    crate::process::forget(pid);
    status.ok().and_then(|s| s.code()).unwrap_or(-1)
}

/// SIGTERM to the group, the grace period, then SIGKILL.
async fn terminate(child: &mut tokio::process::Child, pid: i32, grace: Duration) {
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = child.wait().await;
    }
    // Whatever the main process left in its group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    crate::process::forget(pid);
}

// ---------------------------------------------------------------------------
// Status

struct Reporter {
    client: kube::Client,
    ns: String,
    name: String,
    ip: Ipv4Addr,
    start_time: String,
    /// Each condition's status and when it last changed.
    transitions: Mutex<BTreeMap<&'static str, (bool, String)>>,
}

impl Reporter {
    async fn report(&self, state: &Arc<Mutex<PodState>>) {
        let status = {
            let st = state.lock().unwrap_or_else(|e| e.into_inner());
            self.status(&st)
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        if let Err(e) = api.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&status)).await {
            tracing::debug!("real node: status of {}/{}: {e}", self.ns, self.name);
        }
    }

    fn status(&self, st: &PodState) -> Value {
        let all_ready = st.init_done && st.containers.iter().all(|(_, _, c)| c.ready);
        let mut transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        let mut cond = |type_: &'static str, ok: bool| {
            let entry = transitions.entry(type_).or_insert_with(|| (ok, now()));
            if entry.0 != ok {
                *entry = (ok, now());
            }
            json!({"type": type_, "status": if ok { "True" } else { "False" }, "lastTransitionTime": entry.1})
        };
        let containers: Vec<Value> = st
            .containers
            .iter()
            .map(|(name, image, c)| {
                let state = if let Some(since) = &c.running_since {
                    json!({"running": {"startedAt": since}})
                } else if let Some((reason, message)) = &c.waiting {
                    json!({"waiting": {"reason": reason, "message": message}})
                } else {
                    json!({"waiting": {"reason": "ContainerCreating"}})
                };
                let last = c.last_exit.as_ref().map_or(json!({}), |(code, reason, times)| {
                    let (started, finished) = times.split_once('|').unwrap_or(("", ""));
                    let mut term = json!({"exitCode": code, "reason": reason, "finishedAt": finished});
                    if !started.is_empty() {
                        term["startedAt"] = json!(started);
                    }
                    json!({"terminated": term})
                });
                json!({
                    "name": name, "image": image, "imageID": "", "containerID": format!("magnetar://{}/{}", self.name, c.restarts),
                    "ready": c.ready, "started": c.started, "restartCount": c.restarts,
                    "state": state, "lastState": last,
                })
            })
            .collect();
        let running = st.containers.iter().any(|(_, _, c)| c.running_since.is_some());
        let mut status = json!({
            "phase": if running || st.init_done { "Running" } else { "Pending" },
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.ip.to_string(),
            "podIPs": [{"ip": self.ip.to_string()}],
            "startTime": self.start_time,
            "conditions": [
                cond("PodReadyToStartContainers", true),
                cond("Initialized", st.init_done),
                cond("ContainersReady", all_ready),
                cond("Ready", all_ready),
                cond("PodScheduled", true),
            ],
            "containerStatuses": containers,
        });
        if let Some(m) = &st.message {
            status["message"] = json!(m);
        }
        json!({"status": status})
    }
}
