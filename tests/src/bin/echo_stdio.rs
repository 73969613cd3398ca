//! The test backend's tools over stdin/stdout, for the gateway to run as a stdio server.
//! Its `whoami` tool answers with its process id, so a test can watch that process.

use rmcp::ServiceExt;
use tollgate_tests::backend::EchoServer;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let server = EchoServer::new(std::process::id().to_string());
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
