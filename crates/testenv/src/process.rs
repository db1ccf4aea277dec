//! Child processes that cannot outlive the process that started them.
//!
//! Three layers, so that no etcd or kube-apiserver survives a test binary:
//! 1. every child runs in its own process group (so a terminal's Ctrl-C does
//!    not reach it half-way and a kill reaches whatever it forks);
//! 2. an `atexit` hook terminates every live group and reaps it when the
//!    process exits normally (`main` returns or `std::process::exit`, which is
//!    how the test harness ends after failed tests too);
//! 3. a watchdog (`sh`, itself in its own group) reads the group ids on a pipe
//!    whose write end only this process holds. When this process dies in any
//!    way (panic=abort, SIGKILL, Ctrl-C) the kernel closes the pipe, the
//!    watchdog's `read` sees end-of-file, and it kills the groups and removes
//!    the scratch directory.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Process ids (= process group ids) of every child still running, for the
/// `atexit` hook.
/// `(pid, stopped last)`.
static LIVE: Mutex<Vec<(i32, bool)>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// How long a process group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

const WATCHDOG: &str = r#"
pgs=""
while read -r pg; do pgs="$pgs $pg"; done
for pg in $pgs; do kill -TERM "-$pg" 2>/dev/null; done
i=0
while [ $i -lt 50 ]; do
  alive=""
  for pg in $pgs; do kill -0 "-$pg" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1; i=$((i+1))
done
for pg in $pgs; do kill -KILL "-$pg" 2>/dev/null; done
[ -n "$1" ] && rm -rf -- "$1"
exit 0
"#;

/// A supervised child: its own process group, output to a log file.
pub(crate) struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    last: bool,
    program: PathBuf,
    args: Vec<String>,
}

impl Proc {
    /// Whether the process has exited (and with what), without blocking.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

/// Owns the children of one environment and their watchdog.
pub(crate) struct Supervisor {
    procs: Vec<Proc>,
    watchdog: Option<(Child, ChildStdin)>,
}

impl Supervisor {
    /// Starts the watchdog; `scratch` is removed by it when everything stops.
    pub fn new(scratch: &Path, log_dir: &Path) -> anyhow::Result<Self> {
        HOOK.call_once(|| unsafe {
            libc::atexit(kill_all_at_exit);
        });
        let log = File::create(log_dir.join("watchdog.log"))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("magnetar-testenv-watchdog")
            .arg(scratch)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting the watchdog (sh)")?;
        let stdin = child.stdin.take().expect("piped stdin");
        Ok(Supervisor { procs: Vec::new(), watchdog: Some((child, stdin)) })
    }

    /// Starts `program args…` in its own process group, stdout and stderr to
    /// `<log_dir>/<name>.log`.
    pub fn spawn(&mut self, name: &str, program: &Path, args: &[String], log_dir: &Path) -> anyhow::Result<()> {
        self.spawn_inner(name, program, args, log_dir, false)
    }

    /// Like [`Supervisor::spawn`], for a process that the others need until
    /// they are gone (etcd): it is stopped after them.
    pub fn spawn_stopped_last(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        log_dir: &Path,
    ) -> anyhow::Result<()> {
        self.spawn_inner(name, program, args, log_dir, true)
    }

    fn spawn_inner(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        log_dir: &Path,
        last: bool,
    ) -> anyhow::Result<()> {
        let log_path = log_dir.join(format!("{name}.log"));
        let log = File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = self.launch(program, args, &log, last)?;
        self.procs.push(Proc {
            name: name.to_string(),
            log: log_path,
            child,
            last,
            program: program.to_path_buf(),
            args: args.to_vec(),
        });
        Ok(())
    }

    /// Starts `program args…` in its own process group, output to `log`,
    /// under the exit hook and the watchdog.
    fn launch(&mut self, program: &Path, args: &[String], log: &File, last: bool) -> anyhow::Result<Child> {
        let mut out = log;
        writeln!(out, "# {} {}", program.display(), args.join(" "))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id() as i32;
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).push((pid, last));
        if let Some((_, stdin)) = &mut self.watchdog {
            // If the watchdog is gone the atexit hook still covers us.
            let _ = writeln!(stdin, "{pid}");
            let _ = stdin.flush();
        }
        Ok(child)
    }

    /// Stops the child `name` (SIGTERM, SIGKILL after the grace period) and
    /// starts it again with the same program and arguments; its log goes on
    /// in the same file.
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self.procs.iter().position(|p| p.name == name).with_context(|| format!("no process {name}"))?;
        let (pid, last) = (self.procs[i].pid(), self.procs[i].last);
        terminate_groups(&[pid]);
        let _ = self.procs[i].child.wait();
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|(p, _)| *p != pid);
        let (program, args, log_path) =
            (self.procs[i].program.clone(), self.procs[i].args.clone(), self.procs[i].log.clone());
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        writeln!(&log, "# restarted")?;
        self.procs[i].child = self.launch(&program, &args, &log, last)?;
        Ok(())
    }

    /// Takes a process group started elsewhere (a real node's container)
    /// under the same guarantees: killed when this process exits or dies.
    pub fn adopt(&mut self, pid: i32) {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).push((pid, false));
        if let Some((_, stdin)) = &mut self.watchdog {
            let _ = writeln!(stdin, "{pid}");
            let _ = stdin.flush();
        }
    }

    /// `(name, pid)` of every child; each is also its process group id.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs.iter().map(|p| (p.name.clone(), p.child.id())).collect()
    }

    /// The first child that has exited, if any.
    pub fn first_exited(&mut self) -> Option<(String, PathBuf, std::process::ExitStatus)> {
        self.procs.iter_mut().find_map(|p| p.exited().map(|st| (p.name.clone(), p.log.clone(), st)))
    }

    /// Stops every child (SIGTERM, then SIGKILL after a grace period), reaps
    /// them, then lets the watchdog finish (it removes the scratch directory).
    pub fn shutdown(&mut self) {
        let pids: Vec<(i32, bool)> = self.procs.iter().map(|p| (p.pid(), p.last)).collect();
        stop_in_order(&pids);
        for p in &mut self.procs {
            let _ = p.child.wait();
        }
        {
            let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            live.retain(|pid| !pids.contains(pid));
        }
        self.procs.clear();
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin); // end-of-file: the watchdog cleans up and exits
            let _ = child.wait();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// SIGTERM to each group, wait (polling with a deadline) until the leaders
/// are gone, then SIGKILL whatever is left. The leaders are our children, so
/// `waitpid` reaps them here.
fn terminate_groups(pids: &[i32]) {
    for &pid in pids {
        unsafe { libc::kill(-pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + GRACE;
    let mut waiting: Vec<i32> = pids.to_vec();
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain(|&pid| {
            let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            // 0: still running; pid: reaped now; -1: already reaped elsewhere.
            r == 0
        });
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for &pid in pids {
        // Stragglers in the group (and a leader that ignored SIGTERM).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    for &pid in &waiting {
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
}

/// An adopted process group that has ended: the exit hook leaves it alone.
pub(crate) fn forget(pid: i32) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|(p, _)| *p != pid);
}

extern "C" fn kill_all_at_exit() {
    let pids = match LIVE.try_lock() {
        Ok(mut live) => std::mem::take(&mut *live),
        Err(_) => return, // the watchdog will do it
    };
    stop_in_order(&pids);
}

/// Everything but the processes marked "last", then those.
fn stop_in_order(pids: &[(i32, bool)]) {
    for phase in [false, true] {
        let group: Vec<i32> = pids.iter().filter(|(_, last)| *last == phase).map(|(pid, _)| *pid).collect();
        if !group.is_empty() {
            terminate_groups(&group);
        }
    }
}
