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

/// A running `magnetar dev`: its KUBECONFIG and the kubectl it printed.
struct Dev {
    child: std::process::Child,
    kubeconfig: String,
    kubectl: String,
}

impl Dev {
    fn start(args: &[&str]) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_magnetar"))
            .arg("dev")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut kubeconfig, mut kubectl) = (String::new(), String::new());
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                kubeconfig = path.to_string();
            } else if line.contains(" get pulsarcoordinators") {
                kubectl = line.split_whitespace().next().unwrap().to_string();
            } else if line.starts_with("Ctrl-C stops everything") {
                break;
            }
        }
        assert!(!kubeconfig.is_empty() && !kubectl.is_empty(), "dev printed its KUBECONFIG and kubectl lines");
        Dev { child, kubeconfig, kubectl }
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        kubectl(&self.kubectl, &self.kubeconfig, args)
    }

    /// The example converges: `kubectl wait` on the coordinator's Ready condition.
    fn wait_example_ready(&self) {
        let (ok, out) = self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pulsarcoordinator/demo",
            "-n",
            "pulsar-demo",
            "--timeout=180s",
        ]);
        assert!(ok, "{out}");
    }

    /// Ctrl-C (the same SIGINT a terminal sends): dev exits cleanly and no
    /// process of its control plane is left.
    fn interrupt(mut self) {
        let pid = self.child.id();
        assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "dev exits cleanly on Ctrl-C: {status}");
        // Every process of that control plane names its folder in its arguments.
        let dir = self.kubeconfig.trim_end_matches("kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ps = String::from_utf8_lossy(&Command::new("ps").args(["-eo", "args"]).output().unwrap().stdout)
                .into_owned();
            let left: Vec<&str> = ps.lines().filter(|l| l.contains(dir)).collect();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "processes left after Ctrl-C: {left:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn dev_runs_a_cluster_kubectl_can_use_and_stops_on_ctrl_c() {
    let dev = Dev::start(&[]);
    let (ok, crds) = dev.kubectl(&["get", "crd", "-o", "name"]);
    assert!(ok, "{crds}");
    for crd in [
        "pulsarbrokers.pulsar.streamnative.io",
        "gateways.networking.istio.io",
        "authorizationpolicies.security.istio.io",
    ] {
        assert!(crds.contains(crd), "{crd} in {crds}");
    }
    dev.wait_example_ready();
    dev.interrupt();
}

/// `magnetar dev --istio` (issue 9.5): istiod runs beside the control plane
/// and the example's pods carry the sidecar it injected.
#[test]
fn dev_with_istio_shows_pods_injected_by_istiod() {
    let dev = Dev::start(&["--istio"]);
    dev.wait_example_ready();
    let (ok, out) = dev.kubectl(&[
        "get",
        "pods",
        "-n",
        "pulsar-demo",
        "-l",
        "app.kubernetes.io/component in (zookeeper,bookie,broker)",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.sidecar\\.istio\\.io/status} {.spec.containers[*].name}{\"\\n\"}{end}",
    ]);
    assert!(ok, "{out}");
    let pods: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(pods.len() >= 3, "the example's ZooKeeper, bookie and broker pods: {out}");
    for pod in pods {
        assert!(pod.contains("istio-proxy") && pod.contains("\"containers\""), "not injected by istiod: {pod}");
    }
    dev.interrupt();
}
