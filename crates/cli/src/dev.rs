//! `magnetar dev`: a local control plane, the operator in-process, and an
//! example cluster, until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use magnetar_operator::{Operator, Options};
use magnetar_testenv::apply::{Applier, ensure_namespace, server_message};

use crate::run::{LogFormat, init_logging};

#[derive(clap::Args)]
pub struct Args {
    /// Manifests to apply (default: examples/sidecar-quick-start.yaml).
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// The DNS domain the operator builds names in (the local control plane
    /// runs no DNS, so this only changes the names).
    #[arg(long, env = crate::CLUSTER_DOMAIN_ENV, default_value = magnetar_desired::names::DEFAULT_CLUSTER_DOMAIN, value_parser = crate::cluster_domain)]
    cluster_domain: String,
    /// Also run Istio's control plane (istiod, built from source on first
    /// use: about 15 minutes), so pods get real injected sidecars and every
    /// Istio object passes istiod's validating webhook.
    #[arg(long)]
    istio: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    eprintln!("starting the local control plane (the first run builds it from source)...");
    let mut options = magnetar_testenv::dev_options();
    options.istiod = args.istio;
    let env = magnetar_testenv::dev_environment_with(options).await?;
    // After start-up: its readiness polling would log every refused connection.
    init_logging(LogFormat::Text);
    let client = env.client().await?;
    let operator =
        Operator::start(client.clone(), Options { cluster_domain: args.cluster_domain.clone(), ..Options::default() });
    if !operator.wait_ready(Duration::from_secs(60)).await {
        anyhow::bail!("the operator did not start; logs: {}", env.log_dir().display());
    }
    magnetar_testenv::prerequisites::install(&client).await.context("installing the ingress gateway stand-in")?;

    let files = if args.files.is_empty() {
        vec![magnetar_testenv::repo_root()?.join("examples/sidecar-quick-start.yaml")]
    } else {
        args.files
    };
    let applier = Applier::new(client.clone(), "kubectl");
    for file in &files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for doc in magnetar_testenv::crds::yaml_documents(&text)? {
            if let Some(ns) = doc["metadata"]["namespace"].as_str() {
                ensure_namespace(&client, ns).await?;
            }
            let what =
                format!("{}/{}", doc["kind"].as_str().unwrap_or("?"), doc["metadata"]["name"].as_str().unwrap_or("?"));
            match applier.apply(&doc).await {
                Ok(_) => eprintln!("applied {what} from {}", file.display()),
                Err(e) => eprintln!("could not apply {what} from {}: {}", file.display(), server_message(&e)),
            }
        }
    }

    for secret in magnetar_testenv::prerequisites::ensure_tls_secrets(&client).await? {
        eprintln!("created a self-signed TLS secret {secret} for the gateway");
    }

    println!();
    println!("magnetar is running against a local control plane. In another shell:");
    println!("export KUBECONFIG={}", env.kubeconfig().display());
    println!(
        "{} get pulsarcoordinators,zookeeperclusters,bookkeeperclusters,pulsarbrokers,pulsarproxies,pods -A",
        env.kubectl().display()
    );
    if let Some(istiod) = env.control_plane().istiod() {
        println!(
            "istiod validates and injects; its debug endpoints: http://127.0.0.1:{}/debug/configz",
            istiod.http_port
        );
    }
    println!("logs of the control plane: {}", env.log_dir().display());
    println!("Ctrl-C stops everything.");

    magnetar_operator::shutdown_signal().await;
    eprintln!("stopping...");
    operator.stop().await?;
    env.shutdown();
    Ok(ExitCode::SUCCESS)
}
