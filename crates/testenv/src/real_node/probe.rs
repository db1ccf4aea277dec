//! Probes as the kubelet runs them: HTTP GET (2xx/3xx passes), TCP connect,
//! exec (exit 0 passes) inside the container's namespaces, each with its
//! timeout, period and thresholds.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Where a probe is run: the pod's address, its named ports, and how to
/// enter the container (for exec).
pub struct Target<'a> {
    pub ip: Ipv4Addr,
    pub ports: &'a BTreeMap<String, i32>,
    /// `nsenter … chroot …` prefix that runs a command inside the container.
    pub exec_prefix: &'a [String],
    pub env: &'a [(String, String)],
}

/// What one probe run answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub passed: bool,
    pub detail: String,
}

/// Runs `probe` once against `target`.
pub async fn run(probe: &Probe, target: &Target<'_>) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let result = tokio::time::timeout(timeout, run_inner(probe, target)).await;
    match result {
        Ok(Ok(detail)) => Outcome { passed: true, detail },
        Ok(Err(detail)) => Outcome { passed: false, detail },
        Err(_) => Outcome { passed: false, detail: format!("timed out after {timeout:?}") },
    }
}

async fn run_inner(probe: &Probe, t: &Target<'_>) -> Result<String, String> {
    let port = |p: &IntOrString| match p {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(name) => t.ports.get(name).copied().ok_or_else(|| format!("no container port {name:?}")),
    };
    if let Some(h) = &probe.http_get {
        let port = port(&h.port)?;
        if h.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")) {
            return Err("HTTPS probes are not supported by the test node".into());
        }
        let host = h.host.clone().unwrap_or_else(|| t.ip.to_string());
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let code = http_get(&host, port, &path).await?;
        return if (200..400).contains(&code) {
            Ok(format!("GET {path} on {port}: {code}"))
        } else {
            Err(format!("GET {path} on {port}: {code}"))
        };
    }
    if let Some(s) = &probe.tcp_socket {
        let port = port(&s.port)?;
        let host = s.host.clone().unwrap_or_else(|| t.ip.to_string());
        tokio::net::TcpStream::connect((host.as_str(), port as u16))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        return Ok(format!("connect {host}:{port}: ok"));
    }
    if let Some(e) = &probe.exec {
        let cmd = e.command.clone().unwrap_or_default();
        if cmd.is_empty() || t.exec_prefix.is_empty() {
            return Err("exec probe without a command or a running container".into());
        }
        let out = tokio::process::Command::new(&t.exec_prefix[0])
            .args(&t.exec_prefix[1..])
            .args(&cmd)
            .env_clear()
            .envs(t.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("exec: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().chars().take(200).collect::<String>();
        return if out.status.success() {
            Ok(format!("exec: {text}"))
        } else {
            Err(format!("exec: {} {text} {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
        };
    }
    Err("a probe without a handler".into())
}

/// The status code of `GET path` (HTTP/1.1, `Connection: close`).
async fn http_get(host: &str, port: i32, path: &str) -> Result<u16, String> {
    let mut s =
        tokio::net::TcpStream::connect((host, port as u16)).await.map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.36\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut buf = vec![0u8; 256];
    let mut n = 0;
    while n < 12 {
        let r = s.read(&mut buf[n..]).await.map_err(|e| format!("read: {e}"))?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not an HTTP answer: {head:?}"))
}

/// The kubelet's bookkeeping for one probe: initial delay, period, and
/// consecutive successes and failures against the thresholds.
#[derive(Debug)]
pub struct Tracker {
    pub probe: Probe,
    next: Instant,
    successes: i32,
    failures: i32,
    /// The last verdict (thresholds applied); `None` before the first.
    pub state: Option<bool>,
    pub last: Option<Outcome>,
}

impl Tracker {
    pub fn new(probe: Probe, started: Instant) -> Self {
        let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        Tracker { probe, next: started + delay, successes: 0, failures: 0, state: None, last: None }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Records one run; returns the verdict when it changed.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> Option<bool> {
        let period = Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64);
        self.next = now + period;
        if outcome.passed {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        self.last = Some(outcome);
        let verdict = if self.successes >= self.probe.success_threshold.unwrap_or(1).max(1) {
            Some(true)
        } else if self.failures >= self.probe.failure_threshold.unwrap_or(3).max(1) {
            Some(false)
        } else {
            None
        };
        match verdict {
            Some(v) if self.state != Some(v) => {
                self.state = Some(v);
                Some(v)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(success: i32, failure: i32) -> Probe {
        Probe {
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            period_seconds: Some(1),
            ..Probe::default()
        }
    }

    fn outcome(passed: bool) -> Outcome {
        Outcome { passed, detail: String::new() }
    }

    #[test]
    fn thresholds_count_consecutive_answers() {
        let now = Instant::now();
        let mut t = Tracker::new(probe(1, 3), now);
        assert_eq!(t.record(outcome(false), now), None);
        assert_eq!(t.record(outcome(false), now), None);
        assert_eq!(t.record(outcome(true), now), Some(true));
        assert_eq!(t.record(outcome(false), now), None);
        assert_eq!(t.record(outcome(false), now), None);
        assert_eq!(t.record(outcome(false), now), Some(false));
        assert_eq!(t.record(outcome(false), now), None, "reported once");
        assert!(!t.due(now), "next run one period later");
    }
}
