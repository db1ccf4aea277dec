//! No process outlives a test binary: not when it exits normally (the
//! `atexit` hook), not when it is killed (the watchdog).
//!
//! The test binary runs itself again as a child that starts a control plane
//! and reports its processes' pids on stdout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use magnetar_testenv::{Options, shared};

const CHILD_ENV: &str = "MAGNETAR_TESTENV_TEARDOWN_CHILD";

/// Not a test: the child's body (run by the tests below with `--ignored`).
#[tokio::test]
#[ignore = "helper run by the teardown tests"]
async fn child_holds_a_control_plane() {
    let mode = std::env::var(CHILD_ENV).expect("run by the teardown tests");
    let env = shared(Options::default().without_istio().label("teardown")).await.unwrap();
    let pids: Vec<String> = env.processes().iter().map(|(_, pid)| pid.to_string()).collect();
    assert!(!pids.is_empty());
    println!("PIDS {} DIR {}", pids.join(","), env.data_dir().display());
    if mode == "wait" {
        // Until the parent kills this process.
        std::future::pending::<()>().await;
    }
}

/// Kills the child test binary when dropped, so that a failing assertion
/// does not leave it running.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(mode: &str) -> (ChildGuard, Vec<u32>, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_holds_a_control_plane", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The harness may print "test … ... " on the same line first.
            if let Some(at) = line.find("PIDS ") {
                let _ = tx.send(line[at + 5..].to_string());
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(120)).expect("the child reports its control plane's pids");
    let (pids, dir) = line.split_once(" DIR ").unwrap();
    let pids = pids.split(',').map(|p| p.parse().unwrap()).collect();
    (ChildGuard(child), pids, dir.to_string())
}

/// Alive = exists and is not a zombie waiting for a reaper.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until_gone(pids: &[u32], deadline: Duration) -> Vec<u32> {
    let end = Instant::now() + deadline;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn processes_stop_when_the_test_binary_exits() {
    let (mut child, pids, dir) = spawn_child("exit");
    assert!(pids.len() >= 2, "etcd and kube-apiserver at least: {pids:?}");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "the child test failed: {status}");
    // The atexit hook reaps them before the process is gone.
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "still running after a normal exit: {left:?}");
    // The watchdog removes the scratch directory once the child is gone.
    let end = Instant::now() + Duration::from_secs(15);
    while std::path::Path::new(&dir).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}

#[test]
fn processes_stop_when_the_test_binary_is_killed() {
    let (mut child, pids, dir) = spawn_child("wait");
    assert!(pids.iter().all(|&p| alive(p)), "the control plane runs: {pids:?}");
    child.0.kill().unwrap(); // SIGKILL: no unwinding, no atexit
    child.0.wait().unwrap();
    let left = wait_until_gone(&pids, Duration::from_secs(15));
    assert!(left.is_empty(), "still running 15s after SIGKILL of the test binary: {left:?}");
    let end = Instant::now() + Duration::from_secs(15);
    while std::path::Path::new(&dir).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}
