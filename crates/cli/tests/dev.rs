//! The README's run command: `magnetar dev` brings up a cluster that kubectl
//! can talk to, with the example applied and reconciled, and Ctrl-C stops
//! every process it started.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kubectl(kubectl: &str, kubeconfig: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(kubectl).args(args).env("KUBECONFIG", kubeconfig).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn dev_runs_a_cluster_kubectl_can_use_and_stops_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_magnetar"))
        .arg("dev")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut kubeconfig, mut kubectl_bin) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = path.to_string();
        } else if line.contains(" get pulsarcoordinators") {
            kubectl_bin = line.split_whitespace().next().unwrap().to_string();
        } else if line.starts_with("Ctrl-C stops everything") {
            break;
        }
    }
    assert!(!kubeconfig.is_empty() && !kubectl_bin.is_empty(), "dev printed its KUBECONFIG and kubectl lines");

    let (ok, crds) = kubectl(&kubectl_bin, &kubeconfig, &["get", "crd", "-o", "name"]);
    assert!(ok, "{crds}");
    for crd in [
        "pulsarbrokers.pulsar.streamnative.io",
        "gateways.networking.istio.io",
        "authorizationpolicies.security.istio.io",
    ] {
        assert!(crds.contains(crd), "{crd} in {crds}");
    }
    // The example converges: `kubectl wait` on the coordinator's Ready condition.
    let (ok, out) = kubectl(
        &kubectl_bin,
        &kubeconfig,
        &["wait", "--for=condition=Ready", "pulsarcoordinator/demo", "-n", "pulsar-demo", "--timeout=180s"],
    );
    assert!(ok, "{out}");

    // Ctrl-C: the same SIGINT a terminal sends.
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "dev exits cleanly on Ctrl-C: {status}");
    // Every process of that control plane names its folder in its arguments.
    let dir = kubeconfig.trim_end_matches("kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ps =
            String::from_utf8_lossy(&Command::new("ps").args(["-eo", "args"]).output().unwrap().stdout).into_owned();
        let left: Vec<&str> = ps.lines().filter(|l| l.contains(dir)).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left after Ctrl-C: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
