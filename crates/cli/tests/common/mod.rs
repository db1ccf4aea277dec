//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use magnetar_testenv::repo_root;

pub mod stand_ins;

/// The compatibility manifests and the examples.
pub fn manifests() -> Vec<PathBuf> {
    let root = repo_root().unwrap();
    let mut out = Vec::new();
    for dir in [root.parent().unwrap().join("shared/compat"), root.join("examples")] {
        if !dir.is_dir() {
            eprintln!("SKIPPED: {} is absent", dir.display());
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// `magnetar render -f FILE -o yaml`: its stdout, or None when magnetar
/// refuses the manifest (the compatibility tests' business).
pub fn render(path: &Path) -> Option<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_magnetar"))
        .args(["render", "-f"])
        .arg(path)
        .args(["-o", "yaml"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    out.status.success().then(|| String::from_utf8(out.stdout).unwrap())
}

/// `render`'s YAML without the kinds Istio's tools do not read
/// (prometheus-operator's PodMonitors, which `spec.monitoring` adds).
pub fn render_for_istio(path: &Path) -> Option<String> {
    let yaml = render(path)?;
    let docs: Vec<&str> =
        yaml.split("\n---\n").filter(|d| !d.trim_start().starts_with("apiVersion: monitoring.coreos.com/")).collect();
    Some(docs.join("\n---\n"))
}
