//! A legacy HTTP+SSE backend (protocol 2024-11-05): one long GET stream that announces
//! where to POST, and carries every answer.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Client, Inbox, describe, excerpt, http_client, static_headers};
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::jsonrpc::Message;
use crate::mcp::sse;

pub struct SseBackend {
    url: reqwest::Url,
    client: reqwest::Client,
    connect_timeout: Duration,
}

impl SseBackend {
    pub fn new(
        _server: &str,
        url: &str,
        headers: &std::collections::BTreeMap<String, crate::config::Secret>,
        client: &Client,
    ) -> Result<SseBackend, GatewayError> {
        let url = reqwest::Url::parse(url).map_err(|e| GatewayError::BadRequest(format!("invalid backend URL: {e}")))?;
        Ok(SseBackend { url, client: http_client(client, static_headers(headers)?, false)?, connect_timeout: client.limits.connect_timeout() })
    }

    pub async fn connect(self: &Arc<Self>, inbox: Inbox) -> Result<SseUpstream, BackendError> {
        let resp = self.client.get(self.url.clone()).header(ACCEPT, "text/event-stream").send().await.map_err(|e| describe(&e, self.connect_timeout))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(BackendError::Status { status, detail: excerpt(&body) });
        }
        let (tx, rx) = oneshot::channel();
        let base = self.url.clone();
        let reader = tokio::spawn(read(resp, base, inbox, tx));
        let endpoint = match tokio::time::timeout(self.connect_timeout, rx).await {
            Ok(Ok(Ok(url))) => url,
            Ok(Ok(Err(e))) => {
                reader.abort();
                return Err(e);
            }
            Ok(Err(_)) => return Err(BackendError::Closed("the SSE stream ended before announcing its endpoint".into())),
            Err(_) => {
                reader.abort();
                return Err(BackendError::Protocol("no `endpoint` event arrived on the SSE stream".into()));
            }
        };
        Ok(SseUpstream { backend: self.clone(), endpoint, reader })
    }

    /// A TCP connection is the probe: any request to the SSE URL would open a backend session.
    pub async fn probe(&self) -> Result<(), BackendError> {
        let addrs = self.url.socket_addrs(|| None).map_err(|e| BackendError::Unreachable(e.to_string()))?;
        let connect = tokio::net::TcpStream::connect(&addrs[..]);
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BackendError::Unreachable(e.to_string())),
            Err(_) => Err(BackendError::Timeout(self.connect_timeout)),
        }
    }
}

/// Reads the stream: the first `endpoint` event resolves the POST URL, then messages go to the inbox.
async fn read(resp: reqwest::Response, base: reqwest::Url, inbox: Inbox, endpoint: oneshot::Sender<Result<reqwest::Url, BackendError>>) {
    let mut endpoint = Some(endpoint);
    let mut body = resp.bytes_stream();
    let mut dec = sse::Decoder::default();
    let mut events = Vec::new();
    let cause = loop {
        let chunk = match body.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => break describe(&e, Duration::ZERO),
            None => break BackendError::Closed("the SSE stream ended".into()),
        };
        if let Err(e) = dec.feed(&chunk, &mut events) {
            break BackendError::Protocol(e.to_string());
        }
        for ev in events.drain(..) {
            match ev.event.as_deref() {
                Some("endpoint") => {
                    let url = announced(&base, ev.data.trim());
                    if let Some(tx) = endpoint.take() {
                        let _ = tx.send(url);
                    }
                }
                None | Some("message") => {
                    if let Ok(m) = Message::parse(ev.data.as_bytes()) {
                        inbox.deliver(m, None).await;
                    }
                }
                Some(_) => {}
            }
        }
    };
    if endpoint.is_none() {
        inbox.closed(cause);
    }
}

/// The announced POST endpoint, resolved against the SSE URL. It must stay on the backend's
/// own origin: the configured headers (credentials) go with every POST, so a backend must not
/// be able to send them elsewhere.
fn announced(base: &reqwest::Url, data: &str) -> Result<reqwest::Url, BackendError> {
    let url = base.join(data).map_err(|e| BackendError::Protocol(format!("bad endpoint '{}': {e}", excerpt(data.as_bytes()))))?;
    if url.origin() != base.origin() {
        return Err(BackendError::Protocol(format!(
            "the backend announced an endpoint on another origin ({}), not its own ({}); nothing is sent there",
            url.origin().ascii_serialization(),
            base.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

pub struct SseUpstream {
    backend: Arc<SseBackend>,
    endpoint: reqwest::Url,
    reader: JoinHandle<()>,
}

impl SseUpstream {
    pub async fn send(&self, msg: &Message) -> Result<(), BackendError> {
        let resp = self
            .backend
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.backend.connect_timeout * 2)
            .body(msg.to_bytes())
            .send()
            .await
            .map_err(|e| describe(&e, self.backend.connect_timeout * 2))?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        if status == 404 {
            return Err(BackendError::SessionLost);
        }
        Err(BackendError::Status { status, detail: excerpt(&body) })
    }

    pub fn close(&self) {
        self.reader.abort();
    }
}

impl Drop for SseUpstream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_stays_on_the_backends_origin() {
        let base = reqwest::Url::parse("http://mcp.internal:8000/sse").unwrap();
        assert_eq!(announced(&base, "/messages?session=1").unwrap().as_str(), "http://mcp.internal:8000/messages?session=1");
        assert_eq!(announced(&base, "http://mcp.internal:8000/m").unwrap().as_str(), "http://mcp.internal:8000/m");
        for foreign in ["http://evil.example/m", "//evil.example/m", "https://mcp.internal:8000/m", "http://mcp.internal:8001/m", "http://user@evil.example/"] {
            assert!(matches!(announced(&base, foreign), Err(BackendError::Protocol(_))), "{foreign}");
        }
    }
}
