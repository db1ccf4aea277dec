//! `magnetar render -f FILE… [-o yaml|json]`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Manifest files (multi-document YAML); `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Output format: YAML documents, or one JSON `v1` List.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    output: Format,
    /// The cluster's DNS domain (the kubelet's --cluster-domain), as the
    /// operator would be given it.
    #[arg(long, env = crate::CLUSTER_DOMAIN_ENV, default_value = magnetar_desired::names::DEFAULT_CLUSTER_DOMAIN, value_parser = crate::cluster_domain)]
    cluster_domain: String,
}

fn read(path: &PathBuf) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
        return Ok(("<stdin>".into(), s));
    }
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path.display().to_string(), s))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inputs = args.files.iter().map(read).collect::<anyhow::Result<Vec<_>>>()?;
    let options = magnetar_desired::render::RenderOptions { cluster_domain: args.cluster_domain };
    let rendered = match magnetar_desired::render::render_with(&inputs, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("error: invalid input; nothing rendered");
            return Ok(ExitCode::FAILURE);
        }
    };
    for note in &rendered.notes {
        eprintln!("{note}");
    }
    let out = match args.output {
        Format::Json => {
            let items: Vec<Value> = rendered.objects.into_iter().map(|o| o.value).collect();
            let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items});
            serde_json::to_string_pretty(&list)? + "\n"
        }
        Format::Yaml => {
            let docs =
                rendered.objects.iter().map(|o| serde_norway::to_string(&o.value)).collect::<Result<Vec<_>, _>>()?;
            docs.join("---\n")
        }
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
