//! Starts the dev control plane and keeps it up until Ctrl-C:
//! `cargo run -p magnetar-testenv --example up`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = magnetar_testenv::dev_environment().await?;
    println!("export KUBECONFIG={}", env.kubeconfig().display());
    println!("{} get nodes,crds", env.kubectl().display());
    tokio::signal::ctrl_c().await?;
    env.shutdown();
    Ok(())
}
