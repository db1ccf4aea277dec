//! `magnetar`: the operator and its tools in one binary (SPEC 5).

mod crds;
mod dev;
mod doctor;
mod render;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The build step allocates many small strings and maps per object; mimalloc
/// builds the quick-start example about 1.8x faster than glibc's malloc
/// (docs/performance.md). The benchmark uses the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "magnetar", version, about = "Apache Pulsar on Istio, as a Kubernetes operator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (kubeconfig or in-cluster).
    Run(run::Args),
    /// Print every object the operator would create for the given manifests (offline).
    Render(render::Args),
    /// Print magnetar's CustomResourceDefinitions (or write them into a folder).
    Crds(crds::Args),
    /// Check a live cluster the way the Istio guide's verify and troubleshooting steps do.
    Doctor(doctor::Args),
    /// Start a local control plane, run the operator against it and apply an example.
    Dev(dev::Args),
}

/// Environment fallback of `--cluster-domain` (run, render, dev, doctor).
pub const CLUSTER_DOMAIN_ENV: &str = "MAGNETAR_CLUSTER_DOMAIN";

/// Parses `--cluster-domain`: a clear error instead of names that cannot
/// resolve.
pub fn cluster_domain(s: &str) -> Result<String, String> {
    magnetar_desired::names::check_cluster_domain(s).map(|()| s.to_string())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Crds(args) => crds::run(args),
        Command::Doctor(args) => runtime().and_then(|rt| rt.block_on(doctor::run(args))),
        Command::Run(args) => runtime().and_then(|rt| rt.block_on(run::run(args))),
        Command::Dev(args) => runtime().and_then(|rt| rt.block_on(dev::run(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
