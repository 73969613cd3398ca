//! The test backend's tools over stdin/stdout, for the gateway to run as a stdio server.
//! Its `whoami` tool answers with its process id, so a test can watch that process.
//! With `--report-env FILE` it first writes its environment there, one `NAME=value` a line,
//! so a test can see what the gateway handed it.

use rmcp::ServiceExt;
use tollgate_tests::backend::EchoServer;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--report-env") {
        let report: String = std::env::vars().map(|(k, v)| format!("{k}={v}\n")).collect();
        let path = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--report-env needs a file"))?;
        // Written whole, then renamed, so a reader never sees half of it.
        std::fs::write(format!("{path}.part"), report)?;
        std::fs::rename(format!("{path}.part"), path)?;
    }
    let server = EchoServer::new(std::process::id().to_string());
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
