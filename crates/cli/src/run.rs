//! `magnetar run`: the operator.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use magnetar_operator::{LeaderElection, OperatorIdentity, Options};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Watch only this namespace (default: all).
    #[arg(long)]
    watch_namespace: Option<String>,
    /// The operator's namespace (its Lease lives there, and its identity is
    /// allowed to ZooKeeper for the leader check).
    #[arg(long, env = "POD_NAMESPACE", default_value = "magnetar-system")]
    namespace: String,
    /// The operator's ServiceAccount.
    #[arg(long, default_value = "magnetar")]
    service_account: String,
    /// This instance's name in the leader Lease.
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// Run without leader election (a single instance).
    #[arg(long)]
    no_leader_election: bool,
    /// Seconds a leader Lease lasts without renewal. The leader renews every
    /// third of it and steps down when it could not renew for two thirds; a
    /// standby looks every second. A killed leader is replaced within this
    /// plus about a second (docs/design.md, "Leader election").
    #[arg(long, default_value_t = magnetar_operator::leader::DEFAULT_LEASE_SECONDS, value_parser = clap::value_parser!(u64).range(3..=3600))]
    lease_duration: u64,
    /// The cluster's DNS domain (the kubelet's --cluster-domain), used in
    /// every in-cluster name magnetar writes.
    #[arg(long, env = crate::CLUSTER_DOMAIN_ENV, default_value = magnetar_desired::names::DEFAULT_CLUSTER_DOMAIN, value_parser = crate::cluster_domain)]
    cluster_domain: String,
    /// Reconciles of one kind in flight at once (0: unbounded). Bounds the
    /// operator's peak memory when many resources change together.
    #[arg(long, env = "MAGNETAR_CONCURRENT_RECONCILES", default_value_t = magnetar_operator::options::DEFAULT_CONCURRENT_RECONCILES)]
    concurrent_reconciles: u16,
}

/// Installs the log subscriber (RUST_LOG filters, default info).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let client = kube::Client::try_default().await.context("connecting to the cluster (KUBECONFIG or in-cluster)")?;
    let identity = OperatorIdentity { namespace: args.namespace.clone(), service_account: args.service_account };
    let leader_election = (!args.no_leader_election).then(|| {
        let me = args.pod_name.clone().unwrap_or_else(|| format!("magnetar-{}", std::process::id()));
        LeaderElection {
            lease_duration: std::time::Duration::from_secs(args.lease_duration),
            ..LeaderElection::new(args.namespace.clone(), me)
        }
    });
    let opts = Options {
        identity,
        namespace: args.watch_namespace,
        leader_election,
        metrics_addr: Some(args.metrics_addr),
        cluster_domain: args.cluster_domain,
        concurrent_reconciles: args.concurrent_reconciles,
        ..Options::default()
    };
    magnetar_operator::run(client, opts).await?;
    Ok(ExitCode::SUCCESS)
}
