//! `magnetar crds`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Write one file per CRD into this folder instead of printing them.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let crds = magnetar_api::crds();
    match args.dir {
        None => {
            let docs: Vec<String> = crds.iter().map(magnetar_api::crd_yaml).collect();
            print!("{}", docs.join("---\n"));
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for crd in &crds {
                let path = dir.join(magnetar_api::crd_file_name(crd));
                std::fs::write(&path, magnetar_api::crd_yaml(crd))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
