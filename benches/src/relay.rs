//! The floor of one hop: a process that relays bytes between the driver and the backend and
//! reads none of them. Whatever it adds over `direct` is what any proxy in between pays on this
//! machine (two more loopback writes and two more wake-ups per call), so a gateway row is
//! best read against it as well as against `direct`.
//!
//! It is built the way the gateway serves connections: one single-threaded runtime per core,
//! each connection (with its backend connection) kept on one of them, `TCP_NODELAY` both ways.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

use crate::gateway::Gateway;

/// Serves until killed: accepts on `listen`, and relays each connection to `to`.
pub fn serve(listen: SocketAddr, to: SocketAddr) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards: Vec<tokio::runtime::Handle> = (0..threads)
        .map(|i| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = rt.handle().clone();
            std::thread::Builder::new().name(format!("relay-{i}")).spawn(move || rt.block_on(std::future::pending::<()>()))?;
            Ok(handle)
        })
        .collect::<std::io::Result<_>>()?;
    let accept = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    accept.block_on(async move {
        let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        for n in 0usize.. {
            let (client, _) = listener.accept().await?;
            shards[n % shards.len()].spawn(async move {
                let _ = relay(client, to).await;
            });
        }
        Ok(())
    })
}

async fn relay(mut client: TcpStream, to: SocketAddr) -> std::io::Result<()> {
    let mut backend = TcpStream::connect(to).await?;
    client.set_nodelay(true)?;
    backend.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut backend).await?;
    Ok(())
}

/// Starts `loadgen relay` (this binary) from `listen` to `to`, and waits until it accepts.
pub async fn start(listen: SocketAddr, to: SocketAddr, log: std::path::PathBuf, timeout: Duration) -> anyhow::Result<Gateway> {
    let exe = std::env::current_exe().context("finding loadgen's own binary")?;
    let out = std::fs::File::create(&log)?;
    let child = Command::new(exe)
        .args(["relay", "--listen", &listen.to_string(), "--to", &to.to_string()])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting the relay")?;
    let mut relay = Gateway::from_child(child, listen, log);
    crate::gateway::wait_up(&mut relay, "the relay", timeout, |addr| async move {
        TcpStream::connect(addr).await?;
        Ok(())
    })
    .await?;
    Ok(relay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes go through both ways unchanged, and the client's close reaches the backend.
    #[tokio::test]
    async fn bytes_go_through_both_ways_and_a_close_follows() {
        tokio::time::timeout(Duration::from_secs(10), through()).await.expect("the relay answers within 10 s");
    }

    async fn through() {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = backend.local_addr().unwrap();
        let echo = tokio::spawn(async move {
            let (mut s, _) = backend.accept().await.unwrap();
            let mut all = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return all;
                }
                all.extend_from_slice(&buf[..n]);
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = front.local_addr().unwrap();
        tokio::spawn(async move {
            let (client, _) = front.accept().await.unwrap();
            relay(client, to).await.unwrap();
        });
        let mut client = TcpStream::connect(listen).await.unwrap();
        for word in [&b"POST /mcp"[..], b" HTTP/1.1\r\n"] {
            client.write_all(word).await.unwrap();
            let mut back = vec![0u8; word.len()];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(back, word);
        }
        client.shutdown().await.unwrap();
        assert_eq!(echo.await.unwrap(), b"POST /mcp HTTP/1.1\r\n");
    }
}
