//! Telling HTTP/1 from HTTP/2 on a connection without TLS (where ALPN cannot say), so each is
//! served by its own protocol's builder.
//!
//! HTTP/2 with prior knowledge opens with a fixed 24-byte preface, and nothing else does. A
//! first byte other than `P` is HTTP/1 at once, and nothing is consumed. Otherwise the bytes
//! are read (never polled for) until they part from the preface or complete it, and given
//! back to the HTTP server ahead of the socket's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What HTTP/2 without TLS sends first.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub enum Protocol {
    Http1,
    Http2,
}

/// The protocol a connection speaks, and the connection with whatever was read to tell it put
/// back. Waits for as many bytes as that takes; the caller bounds the wait (the header read
/// timeout).
pub async fn protocol(stream: TcpStream) -> io::Result<(Protocol, Rewind)> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut io = Rewind { ahead: Vec::new(), at: 0, io: stream };
    if first[0] != H2_PREFACE[0] {
        return Ok((Protocol::Http1, io));
    }
    let mut seen = [0u8; 24];
    let mut n = 0;
    while n < seen.len() {
        let got = io.io.read(&mut seen[n..]).await?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        n += got;
        if seen[..n] != H2_PREFACE[..n] {
            io.ahead = seen[..n].to_vec();
            return Ok((Protocol::Http1, io));
        }
    }
    io.ahead = seen.to_vec();
    Ok((Protocol::Http2, io))
}

/// A connection whose first bytes were read ahead: reads give those back first.
pub struct Rewind {
    ahead: Vec<u8>,
    at: usize,
    io: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.ahead.len() {
            let n = buf.remaining().min(this.ahead.len() - this.at);
            buf.put_slice(&this.ahead[this.at..this.at + n]);
            this.at += n;
            if this.at == this.ahead.len() {
                this.ahead = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn told(sent: &[u8]) -> (bool, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(sent).await.unwrap();
        client.shutdown().await.unwrap();
        let (p, mut io) = protocol(server).await.unwrap();
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        (matches!(p, Protocol::Http2), all)
    }

    #[tokio::test]
    async fn each_protocol_is_told_and_every_byte_reaches_the_server() {
        let h2 = [&H2_PREFACE[..], b"\x00\x00\x00\x04"].concat();
        assert_eq!(told(&h2).await, (true, h2.clone()));
        for h1 in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"POST /a/mcp HTTP/1.1\r\n\r\n", b"PRI-ish / HTTP/1.1\r\n\r\n"] {
            assert_eq!(told(h1).await, (false, h1.to_vec()), "{}", String::from_utf8_lossy(h1));
        }
    }

    #[tokio::test]
    async fn a_preface_cut_short_is_an_error_not_a_wait() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(&H2_PREFACE[..10]).await.unwrap();
        client.shutdown().await.unwrap();
        assert!(protocol(server).await.is_err());
    }
}
