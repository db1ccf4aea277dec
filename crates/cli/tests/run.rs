//! `magnetar run` as a Deployment runs it: kubeconfig, leader election on a
//! Lease, /healthz, /readyz and /metrics, and a clean stop on SIGTERM that
//! hands the Lease back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use magnetar_testenv::apply::ensure_namespace;
use magnetar_testenv::{Options, shared};

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, response))
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases.get_opt("magnetar-leader").await.ok().flatten()?.spec?.holder_identity
}

#[tokio::test]
async fn run_serves_health_and_metrics_holds_the_lease_and_stops_on_sigterm() {
    let env = shared(Options::default()).await.unwrap();
    let client = env.client().await.unwrap();
    ensure_namespace(&client, "magnetar-system").await.unwrap();
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_magnetar"))
        .args(["run", "--metrics-addr", &addr, "--namespace", "magnetar-system", "--pod-name", "magnetar-test-0"])
        .args(["--log-format", "json"])
        .env("KUBECONFIG", env.kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let leases: Api<Lease> = Api::namespaced(client.clone(), "magnetar-system");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = get(&addr, "/readyz").is_some_and(|(code, _)| code == 200);
        if ready && holder(&leases).await.as_deref() == Some("magnetar-test-0") {
            break;
        }
        assert!(Instant::now() < deadline, "not ready with the Lease within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&addr, "/healthz").map(|(c, _)| c), Some(200));
    let (code, metrics) = get(&addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("magnetar_leader 1"), "{metrics}");
    assert!(metrics.contains("magnetar_ready 1"), "{metrics}");
    // OpenMetrics: the family is `magnetar_write_requests`, its sample `_total`.
    assert!(metrics.contains("# TYPE magnetar_write_requests counter"), "{metrics}");
    assert!(metrics.contains("\nmagnetar_write_requests_total "), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");

    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exits cleanly on SIGTERM: {status}");
    assert_eq!(holder(&leases).await, None, "the Lease is handed back");
}
