//! One control plane per [`Options`] for the whole test binary.
//!
//! `#[tokio::test]` gives every test its own runtime and drops it when the
//! test ends, so the control plane is started on a thread of its own (with a
//! runtime that lives only for the start-up) and is made of plain OS
//! processes; each test then makes its own [`kube::Client`] with
//! [`ControlPlane::client`]. The processes stop when the test binary exits
//! (see [`crate::process`]).

use std::sync::Mutex;

use anyhow::anyhow;
use tokio::sync::OnceCell;

use crate::control_plane::{ControlPlane, Options};

type Cell = OnceCell<Result<ControlPlane, String>>;

/// The control plane for `options`, started by the first caller; every
/// later caller (from any test, any runtime) gets the same one. A start-up
/// failure is remembered, so every test that needs it fails with the same
/// message instead of starting again.
pub async fn shared(options: Options) -> anyhow::Result<&'static ControlPlane> {
    static ENVS: Mutex<Vec<(Options, &'static Cell)>> = Mutex::new(Vec::new());
    let cell: &'static Cell = {
        let mut envs = ENVS.lock().unwrap_or_else(|e| e.into_inner());
        match envs.iter().find(|(o, _)| *o == options) {
            Some((_, cell)) => cell,
            None => {
                let cell: &'static Cell = Box::leak(Box::new(OnceCell::new()));
                envs.push((options.clone(), cell));
                cell
            }
        }
    };
    let result = cell.get_or_init(|| async move { start_detached(options).await.map_err(|e| format!("{e:#}")) }).await;
    let env = result.as_ref().map_err(|e| anyhow!("the shared control plane did not start: {e}"))?;
    // Captured by the test harness: shown when the calling test fails.
    eprintln!("magnetar-testenv: shared control plane {}, logs in {}", env.server(), env.log_dir().display());
    Ok(env)
}

/// [`ControlPlane::start`] on a thread and runtime of its own, so that it does
/// not depend on the caller's runtime surviving.
pub async fn start_detached(options: Options) -> anyhow::Result<ControlPlane> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("magnetar-testenv-start".into()).spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(ControlPlane::start(options)));
        // If the caller went away the control plane is dropped, i.e. stopped.
        let _ = tx.send(result);
    })?;
    rx.await.map_err(|_| anyhow!("the start-up thread panicked"))?
}
