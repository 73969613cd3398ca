//! Server-Sent Events wire format: writing events to clients and reading them from backends.

use bytes::{BufMut, Bytes, BytesMut};

/// One event as written to a client. `data` is one JSON-RPC message, which never holds a raw newline.
pub fn encode(id: Option<&str>, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 48);
    if let Some(event) = event {
        b.put_slice(b"event: ");
        b.put_slice(event.as_bytes());
        b.put_u8(b'\n');
    }
    if let Some(id) = id {
        b.put_slice(b"id: ");
        b.put_slice(id.as_bytes());
        b.put_u8(b'\n');
    }
    // serde_json escapes newlines inside strings, so a message is one line; split defensively anyway.
    for line in data.split(|c| *c == b'\n') {
        b.put_slice(b"data: ");
        b.put_slice(line);
        b.put_u8(b'\n');
    }
    b.put_u8(b'\n');
    b.freeze()
}

/// A comment line that keeps idle connections (and the proxies between) from timing out.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// An event read from a backend.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Incremental parser: feed it chunks as they arrive, take complete events out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    current: Event,
    has_field: bool,
    data_lines: usize,
}

/// Bound on one event, so a backend cannot make the gateway buffer without end.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
#[error("an SSE event exceeded {MAX_EVENT_BYTES} bytes")]
pub struct EventTooLarge;

impl Decoder {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|c| *c == b'\n' || *c == b'\r') {
            let line = self.buf.split_to(pos);
            // Swallow the terminator, treating "\r\n" as one.
            let first = self.buf[0];
            let _ = self.buf.split_to(1);
            if first == b'\r' && self.buf.first() == Some(&b'\n') {
                let _ = self.buf.split_to(1);
            }
            self.line(&line, out);
        }
        if self.buf.len() + self.current.data.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_field {
                out.push(std::mem::take(&mut self.current));
            }
            self.has_field = false;
            self.data_lines = 0;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => (&text[..i], text[i + 1..].strip_prefix(' ').unwrap_or(&text[i + 1..])),
            None => (&text[..], ""),
        };
        self.has_field = true;
        match field {
            "data" => {
                if self.data_lines > 0 {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.data_lines += 1;
            }
            "event" => self.current.event = Some(value.to_owned()),
            "id" => self.current.id = Some(value.to_owned()),
            "retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_split_across_chunks_and_line_endings() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(b"id: 1\r\ndata: \r\n\r\nevent: message\nda", &mut out).unwrap();
        assert_eq!(out, vec![Event { id: Some("1".into()), data: String::new(), ..Default::default() }]);
        d.feed(b"ta: {\"a\":1}\n: comment\n\nevent: endpoint\ndata: /m?s=1\n\n", &mut out).unwrap();
        assert_eq!(out[1], Event { event: Some("message".into()), data: "{\"a\":1}".into(), ..Default::default() });
        assert_eq!(out[2].data, "/m?s=1");
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(&encode(Some("s1-4"), Some("message"), br#"{"x":"y"}"#), &mut out).unwrap();
        assert_eq!(out[0].id.as_deref(), Some("s1-4"));
        assert_eq!(out[0].data, r#"{"x":"y"}"#);
    }
}
