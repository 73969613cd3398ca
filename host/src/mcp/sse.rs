//! Server-Sent Events wire format: writing events to clients and reading them from backends.

use bytes::{Buf, BufMut, Bytes, BytesMut};

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
///
/// Each byte is examined once, however the stream is cut into chunks: a backend that sends a long
/// line a few bytes at a time must not make the gateway re-scan that line on every read.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The line being read, whose end has not arrived yet.
    buf: BytesMut,
    /// How much of `buf` is known to hold no line end, so the next chunk's scan starts there.
    scanned: usize,
    /// The last line ended with a CR at the very end of a chunk: a LF opening the next chunk is
    /// the second half of that CRLF, not a blank line that would dispatch the event early.
    after_cr: bool,
    fields: Fields,
}

/// The event being assembled from field lines; apart from `buf` so a line borrowed from it can be read into it.
#[derive(Debug, Default)]
struct Fields {
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
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Event>) -> Result<(), EventTooLarge> {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        self.buf.extend_from_slice(chunk);
        // Lines are read in place and the consumed prefix dropped once, at the end.
        let mut start = 0;
        let mut from = self.scanned;
        while let Some(i) = self.buf[from..].iter().position(|c| *c == b'\n' || *c == b'\r') {
            let end = from + i;
            self.fields.line(&self.buf[start..end], out);
            start = end + 1;
            // CRLF is one line end; a lone CR is one too (SSE spec, "end of line").
            if self.buf[end] == b'\r' {
                match self.buf.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            from = start;
        }
        self.buf.advance(start);
        self.scanned = self.buf.len();
        if self.buf.len() + self.fields.current.data.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(())
    }
}

impl Fields {
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

    fn decode(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        out
    }

    fn data(d: &str) -> Event {
        Event { data: d.into(), ..Default::default() }
    }

    #[test]
    fn a_crlf_split_across_reads_is_one_line_end() {
        // Read as two line ends, the LF would be a blank line and dispatch "a" on its own.
        assert_eq!(decode(&[b"data: a\r", b"\ndata: b\r", b"", b"\n\r\n"]), vec![data("a\nb")]);
        assert_eq!(decode(&[b"data: a\r", b"\n", b"\r", b"\n"]), vec![data("a")]);
    }

    #[test]
    fn a_lone_cr_ends_a_line() {
        assert_eq!(decode(&[b"data: a\rdata: b\r\r"]), vec![data("a\nb")]);
        assert_eq!(decode(&[b"data: a\r", b"data: b\r", b"\r"]), vec![data("a\nb")]);
        assert_eq!(decode(&[b"data: a\r", b"\r", b"\r\n"]), vec![data("a")]);
    }

    #[test]
    fn every_split_of_a_stream_decodes_as_the_whole() {
        let stream: &[u8] = b"id: 1\r\ndata: x\r\n\r\nevent: e\rdata: y\r\rdata: z\n\n: c\r\nretry: 5\r\n\r\n";
        let whole = decode(&[stream]);
        assert_eq!(whole.len(), 4);
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                assert_eq!(decode(&[&stream[..i], &stream[i..j], &stream[j..]]), whole, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn a_long_line_in_small_chunks_takes_linear_time() {
        // Re-scanning the partial line on every read made this ~10^11 byte comparisons (many
        // minutes); linear, it takes well under a second even unoptimized. The deadline is checked
        // as it goes so that a quadratic decoder fails at the deadline instead of running on.
        let started = std::time::Instant::now();
        let deadline = std::time::Duration::from_secs(20);
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(b"data: ", &mut out).unwrap();
        let piece = [b'x'; 64];
        for _ in 0..(4 << 20) / piece.len() {
            d.feed(&piece, &mut out).unwrap();
            assert!(started.elapsed() < deadline, "feeding a long line piece by piece is not linear");
        }
        d.feed(b"\n\n", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data.len(), 4 << 20);
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let piece = vec![b'x'; 1 << 20];
        assert!(d.feed(b"data: ", &mut out).is_ok());
        let reads = 1 + (0..32).position(|_| d.feed(&piece, &mut out).is_err()).expect("the bound holds");
        assert_eq!(reads, MAX_EVENT_BYTES / piece.len());
        // Many complete data lines of one event count too, not only a partial line.
        let mut d = Decoder::default();
        let line = [b"data: ".as_slice(), &piece, b"\n"].concat();
        let reads = 1 + (0..32).position(|_| d.feed(&line, &mut out).is_err()).expect("the bound holds");
        assert_eq!(reads, MAX_EVENT_BYTES / piece.len());
        assert!(out.is_empty());
    }
}
