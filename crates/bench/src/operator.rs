//! The operator under test: a `magnetar run` child process, its own
//! resident memory and CPU time from `/proc`, and its `/metrics`.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running `magnetar run`. Dropping it stops the process (SIGTERM, then
/// SIGKILL after a grace period); it also dies with the bench, whichever way
/// the bench ends (`PR_SET_PDEATHSIG`).
pub struct OperatorProcess {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

/// What `/proc/<pid>` says about the process.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// VmRSS, kB.
    pub rss_kb: u64,
    /// VmHWM (peak RSS), kB.
    pub hwm_kb: u64,
    /// RssAnon (heap, stacks), kB.
    pub anon_kb: u64,
    /// RssFile (the mapped binary and libraries), kB.
    pub file_kb: u64,
    /// utime + stime, seconds.
    pub cpu_secs: f64,
}

impl OperatorProcess {
    /// Starts `binary run` with `kubeconfig`, leader election on (the
    /// default), `/metrics` on a free loopback port, output to `log`.
    pub fn spawn(binary: &Path, kubeconfig: &Path, log: &Path) -> anyhow::Result<OperatorProcess> {
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(binary);
        cmd.arg("run")
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .env("KUBECONFIG", kubeconfig)
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,kube_runtime=warn");
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork
        // and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", binary.display()))?;
        Ok(OperatorProcess { child, metrics_port, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("magnetar run exited ({status}); see {}", self.log.display());
        }
        Ok(())
    }

    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage(self.pid())
    }

    /// The operator's `/metrics`, as `name{labels}` → value.
    pub async fn metrics(&self) -> anyhow::Result<BTreeMap<String, f64>> {
        let text = tokio::time::timeout(Duration::from_secs(10), http_get(self.metrics_port, "/metrics"))
            .await
            .map_err(|_| anyhow!("/metrics of magnetar run did not answer within 10s"))??;
        Ok(parse_prometheus(&text).into_iter().map(|(name, labels, v)| (series(&name, &labels), v)).collect())
    }

    /// Waits until the operator's caches are synced and it holds the
    /// leader Lease (`magnetar_ready` and `magnetar_leader` both 1).
    pub async fn wait_ready_leader(&mut self, deadline: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(m) = self.metrics().await
                && m.get("magnetar_ready") == Some(&1.0)
                && m.get("magnetar_leader") == Some(&1.0)
            {
                return Ok(start.elapsed());
            }
            if start.elapsed() > deadline {
                bail!("magnetar run not ready and leader within {deadline:?}; see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM (the operator releases its Lease), then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Memory and CPU time of `pid` from `/proc/<pid>/status` and `stat`.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces), from field 3 on:
    // utime is field 14, stime field 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(Usage {
        rss_kb: kb("VmRSS"),
        hwm_kb: kb("VmHWM"),
        anon_kb: kb("RssAnon"),
        file_kb: kb("RssFile"),
        cpu_secs: (ticks(14 - 3) + ticks(15 - 3)) as f64 / hz,
    })
}

async fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8(buf)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("malformed HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

/// Samples of the Prometheus text format: `(name, labels, value)`.
pub fn parse_prometheus(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let Some(close) = line.rfind('}') else { continue };
                (&line[..open], parse_labels(&line[open + 1..close]), &line[close + 1..])
            }
            None => match line.split_once(' ') {
                Some((name, rest)) => (name, BTreeMap::new(), rest),
                None => continue,
            },
        };
        if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            out.push((name.to_string(), labels, v));
        }
    }
    out
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    out
}

fn series(name: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", l.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_samples() {
        let text = "# HELP x y\n# TYPE x counter\nmagnetar_ready 1\n\
            apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"a-b\",priority_level=\"p\"} 12\n\
            weird{a=\"x\\\"y\",b=\"\"} 3.5\n";
        let s = parse_prometheus(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], ("magnetar_ready".into(), BTreeMap::new(), 1.0));
        assert_eq!(s[1].1["flow_schema"], "a-b");
        assert_eq!(s[1].1["priority_level"], "p");
        assert_eq!(s[1].2, 12.0);
        assert_eq!(s[2].1["a"], "x\"y");
        assert_eq!(s[2].1["b"], "");
    }

    #[test]
    fn reads_own_usage() {
        let u = usage(std::process::id()).unwrap();
        assert!(u.rss_kb > 0 && u.hwm_kb >= u.rss_kb, "{u:?}");
    }
}
