//! `scale`: N quick-start clusters at once against `magnetar run`, next to
//! the floor, on the real test control plane (magnetar-testenv with
//! workloads and the Istio guide's CRDs).
//!
//! For each size N, on a fresh control plane:
//! 1. **floor**: the objects `magnetar render` makes of the quick start,
//!    server-side applied (field manager `kubectl`, as `kubectl apply
//!    --server-side -f` sends them: one after the other, in apply order) into
//!    N fresh namespaces at once, until every StatefulSet and Deployment has
//!    its replicas Ready; then the namespaces are deleted and waited for;
//! 2. **operator**: `magnetar run` (the release binary) as a child process,
//!    as the ServiceAccount of `deploy/operator/rbac.yaml`, leader election
//!    on; idle until ready and leader; the quick start applied into N fresh
//!    namespaces at once; timed until every resource of every cluster is
//!    Ready with the broker's endpoints published; then a quiet window
//!    (`--quiet-minutes`) in which it must write nothing.
//!
//! RSS and CPU come from `/proc/<pid>` of the child; API requests by verb
//! from kube-apiserver's `apiserver_flowcontrol_dispatched_requests_total`
//! for flow schemas that match only the operator (see [`apiserver`]); writes
//! also from the operator's own `magnetar_write_requests_total`.
//!
//! ```sh
//! cargo build --release -p magnetar
//! nice -n 10 cargo run --release -p magnetar-bench --bin scale -- --sizes 1,10,100
//! ```

mod apiserver;
mod clusters;
mod operator;
mod plot;
mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use kube::api::{Api, ListParams};

use magnetar_testenv::apply::Applier;
use magnetar_testenv::{ControlPlane, FAKE_NODES, ISTIO_GUIDE, Options, PODS_PER_NODE};

use crate::clusters::{KUBECTL, Resources, Workloads};
use crate::operator::{OperatorProcess, Usage};

#[derive(Parser, Debug)]
#[command(about = "Scale bench: N quick-start clusters against `magnetar run`, next to the server-side-apply floor")]
struct Args {
    /// Cluster counts to measure, each on a fresh control plane.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    sizes: Vec<usize>,
    /// Length of the observation window after convergence, in which the
    /// operator must write nothing.
    #[arg(long, default_value_t = 5.0)]
    quiet_minutes: f64,
    /// The `magnetar` binary (default: target/release/magnetar of this
    /// workspace; build it with `cargo build --release -p magnetar`).
    #[arg(long)]
    magnetar: Option<PathBuf>,
    /// Where to write the PNG plot (relative to the workspace root).
    #[arg(long, default_value = "docs/scale.png")]
    plot: PathBuf,
    /// Where to write the measurements as JSON (relative to the workspace root).
    #[arg(long, default_value = "target/scale/results.json")]
    json: PathBuf,
    /// Deadline of each phase (convergence, floor, namespace deletion).
    #[arg(long, default_value_t = 20.0)]
    deadline_minutes: f64,
    /// Measure nothing: print the tables and draw the plot of an earlier
    /// run's JSON.
    #[arg(long)]
    from_json: Option<PathBuf>,
}

/// The measurements of one size.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SizeResult {
    pub clusters: usize,
    /// Rendered objects per cluster (what the floor applies).
    pub objects_per_cluster: usize,
    /// Pods of the clusters once converged.
    pub pods: usize,
    /// Floor: apply of the rendered objects → every workload Ready.
    pub floor_secs: f64,
    /// Deleting the floor's namespaces (not part of any figure).
    pub floor_cleanup_secs: f64,
    /// `magnetar run` start → caches synced and leader.
    pub operator_start_secs: f64,
    /// Apply of the quick starts → every cluster Ready with endpoints.
    pub converged_secs: f64,
    /// The median cluster's time to converge.
    pub converged_median_secs: f64,
    pub idle: Usage,
    pub converged: Usage,
    pub after_quiet: Usage,
    /// The largest RSS sampled during the quiet window, kB.
    pub quiet_max_rss_kb: u64,
    /// The operator's requests (API server count), by verb: start → idle.
    pub startup_requests: BTreeMap<String, u64>,
    /// ... apply → converged.
    pub requests: BTreeMap<String, u64>,
    /// ... during the quiet window.
    pub quiet_requests: BTreeMap<String, u64>,
    /// The operator's write counter (leases excluded): apply → converged.
    pub operator_writes: u64,
    /// ... during the quiet window (must be 0).
    pub quiet_operator_writes: u64,
    /// Seconds after convergence of the last write seen in the quiet window.
    pub quiet_last_write_secs: Option<f64>,
    pub quiet_secs: f64,
    /// The operator's reconciles: apply → converged, and in the quiet window.
    pub reconciles: u64,
    pub quiet_reconciles: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread: the bench only waits on the network, and a child's
    // PR_SET_PDEATHSIG is tied to the thread that started it.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let root = magnetar_testenv::repo_root()?;
    if let Some(path) = &args.from_json {
        let results: Vec<SizeResult> = serde_json::from_str(&std::fs::read_to_string(root.join(path))?)?;
        return report_and_plot(&results, &args, &root.join(path));
    }
    let binary = args.magnetar.clone().unwrap_or_else(|| root.join("target/release/magnetar"));
    if !binary.is_file() {
        bail!("{} not found: build it with `cargo build --release -p magnetar` (or pass --magnetar)", binary.display());
    }
    let deadline = Duration::from_secs_f64(args.deadline_minutes * 60.0);
    let quiet = Duration::from_secs_f64(args.quiet_minutes * 60.0);
    let json_path = root.join(&args.json);
    let mut results = Vec::new();
    for &n in &args.sizes {
        eprintln!("scale: {n} cluster(s)");
        let r = run_size(n, &binary, deadline, quiet).await.with_context(|| format!("size {n}"))?;
        eprintln!("scale: {}", serde_json::to_string(&r)?);
        results.push(r);
        // Written after every size, so a later failure keeps the earlier ones.
        if let Some(dir) = json_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&json_path, serde_json::to_string_pretty(&results)?)?;
    }
    report_and_plot(&results, &args, &json_path)
}

fn report_and_plot(results: &[SizeResult], args: &Args, json_path: &std::path::Path) -> anyhow::Result<()> {
    let quiet_minutes = results.first().map_or(args.quiet_minutes, |r| (r.quiet_secs / 60.0).round());
    let table = report::markdown(results, quiet_minutes);
    println!("{table}");
    std::fs::write(json_path.with_extension("md"), &table)?;
    let plot_path = magnetar_testenv::repo_root()?.join(&args.plot);
    plot::draw(results, &plot_path)?;
    eprintln!("scale: results in {}, plot in {}", json_path.display(), plot_path.display());
    Ok(())
}

async fn run_size(
    n: usize,
    binary: &std::path::Path,
    deadline: Duration,
    quiet: Duration,
) -> anyhow::Result<SizeResult> {
    let env = ControlPlane::start(Options::default().with_workloads().istio(ISTIO_GUIDE).label(&format!("scale-{n}")))
        .await?;
    let client = env.client().await?;
    clusters::ensure_gateway(&client, deadline).await?;

    // What the floor applies, and how many pods it asks for.
    let floor_ns: Vec<String> = (0..n).map(|i| format!("floor-{i}")).collect();
    let rendered: Vec<Vec<serde_json::Value>> =
        floor_ns.iter().map(|ns| clusters::rendered(ns)).collect::<anyhow::Result<_>>()?;
    let expected = clusters::workloads_of(&rendered[0]);
    let pods_per_cluster: i64 = rendered[0]
        .iter()
        .filter(|d| d["kind"] == "StatefulSet" || d["kind"] == "Deployment")
        .map(|d| d["spec"]["replicas"].as_i64().unwrap_or(1))
        .sum();
    let capacity = FAKE_NODES as i64 * i64::from(PODS_PER_NODE);
    if n as i64 * pods_per_cluster + 1 > capacity {
        bail!("{n} clusters need {} pods; the fake nodes hold {capacity}", n as i64 * pods_per_cluster);
    }

    // 1. The floor.
    clusters::create_namespaces(&client, &floor_ns).await?;
    let workloads = Workloads::watch(&client).await?;
    let applier = Applier::new(client.clone(), KUBECTL);
    let t0 = Instant::now();
    futures::future::try_join_all(rendered.iter().map(|docs| clusters::apply_in_order(&applier, docs))).await?;
    let each = clusters::wait_each(
        "the floor's workloads Ready",
        &floor_ns,
        t0,
        deadline,
        || Ok(()),
        |ns| workloads.ready(ns, &expected),
    )
    .await?;
    let floor_secs = max_secs(&each);
    eprintln!("scale: floor {floor_secs:.1}s for {n} cluster(s) ({} objects each)", rendered[0].len());
    drop(workloads);
    let floor_cleanup_secs = clusters::delete_namespaces(&client, &floor_ns, deadline).await?.as_secs_f64();

    // 2. The operator.
    let kubeconfig = apiserver::prepare_operator_identity(&env, &client).await?;
    let namespaces: Vec<String> = (0..n).map(|i| format!("scale-{i}")).collect();
    clusters::create_namespaces(&client, &namespaces).await?;
    let docs: Vec<Vec<serde_json::Value>> =
        namespaces.iter().map(|ns| clusters::quick_start(ns)).collect::<anyhow::Result<_>>()?;
    let resources = Resources::watch(&client).await?;
    let r_start = apiserver::operator_requests(&client).await?;

    let mut op = OperatorProcess::spawn(binary, &kubeconfig, &env.log_dir().join("magnetar-run.log"))?;
    eprintln!("scale: magnetar run pid {}, log {}", op.pid(), op.log.display());
    let operator_start_secs = op.wait_ready_leader(deadline).await?.as_secs_f64();
    let idle = op.usage()?;
    let r_idle = apiserver::operator_requests(&client).await?;
    if apiserver::delta(&r_idle, &r_start).values().sum::<u64>() == 0 {
        bail!("the API server counted no request of the operator: the flow schemas do not match it");
    }
    let m_idle = op.metrics().await?;

    let t0 = Instant::now();
    futures::future::try_join_all(docs.iter().map(|d| clusters::apply_in_order(&applier, d))).await?;
    let each = clusters::wait_each(
        "every cluster Ready with endpoints",
        &namespaces,
        t0,
        deadline,
        || op.check_alive(),
        |ns| resources.converged(ns),
    )
    .await?;
    let converged_secs = max_secs(&each);
    let converged = op.usage()?;
    let t_conv = Instant::now();
    let r_conv = apiserver::operator_requests(&client).await?;
    let m_conv = op.metrics().await?;
    eprintln!(
        "scale: converged {converged_secs:.1}s; RSS {} MB (idle {} MB); watching {:.0}s for writes",
        converged.rss_kb / 1024,
        idle.rss_kb / 1024,
        quiet.as_secs_f64()
    );

    // The quiet window: sampled every second for writes and memory.
    let mut last_writes = counter(&m_conv, "magnetar_write_requests_total");
    let mut last_write = None;
    let mut max_rss = converged.rss_kb;
    while t_conv.elapsed() < quiet {
        tokio::time::sleep(Duration::from_secs(1).min(quiet.saturating_sub(t_conv.elapsed()))).await;
        op.check_alive()?;
        max_rss = max_rss.max(op.usage()?.rss_kb);
        let w = counter(&op.metrics().await?, "magnetar_write_requests_total");
        if w > last_writes {
            last_write = Some(t_conv.elapsed().as_secs_f64());
            last_writes = w;
        }
    }
    let after_quiet = op.usage()?;
    let r_end = apiserver::operator_requests(&client).await?;
    let m_end = op.metrics().await?;
    let quiet_secs = t_conv.elapsed().as_secs_f64();
    op.stop();

    let pods_api: Api<k8s_openapi::api::core::v1::Pod> = Api::all(client.clone());
    let pods = pods_api
        .list_metadata(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().is_some_and(|ns| ns.starts_with("scale-")))
        .count();

    let mut times: Vec<f64> = each.values().map(Duration::as_secs_f64).collect();
    times.sort_by(f64::total_cmp);
    Ok(SizeResult {
        clusters: n,
        objects_per_cluster: rendered[0].len(),
        pods,
        floor_secs,
        floor_cleanup_secs,
        operator_start_secs,
        converged_secs,
        converged_median_secs: times[times.len() / 2],
        idle,
        converged,
        after_quiet,
        quiet_max_rss_kb: max_rss,
        startup_requests: apiserver::delta(&r_idle, &r_start),
        requests: apiserver::delta(&r_conv, &r_idle),
        quiet_requests: apiserver::delta(&r_end, &r_conv),
        operator_writes: counter(&m_conv, "magnetar_write_requests_total")
            - counter(&m_idle, "magnetar_write_requests_total"),
        quiet_operator_writes: counter(&m_end, "magnetar_write_requests_total")
            - counter(&m_conv, "magnetar_write_requests_total"),
        quiet_last_write_secs: last_write,
        quiet_secs,
        reconciles: reconciles(&m_conv) - reconciles(&m_idle),
        quiet_reconciles: reconciles(&m_end) - reconciles(&m_conv),
    })
}

fn max_secs(each: &BTreeMap<String, Duration>) -> f64 {
    each.values().max().copied().unwrap_or_default().as_secs_f64()
}

fn counter(m: &BTreeMap<String, f64>, name: &str) -> u64 {
    m.get(name).copied().unwrap_or(0.0) as u64
}

fn reconciles(m: &BTreeMap<String, f64>) -> u64 {
    m.iter().filter(|(k, _)| k.starts_with("magnetar_reconciles_total{")).map(|(_, v)| *v as u64).sum()
}
