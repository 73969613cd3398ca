//! The SSE decoder reading a backend's stream: however the stream is cut into reads, it yields
//! the same events as when it arrives in one piece, and each event written again with `encode`
//! reads back as itself.
//!
//! Input: the first byte modulo 8 says how many of the next bytes are chunk sizes (each modulo
//! 32, cycled; a 0 is an empty read, then one byte; none at all means one byte per read). The
//! rest is the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::mcp::sse::{Decoder, Event, encode};

fn decode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Event> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out).expect("fuzz inputs are far below MAX_EVENT_BYTES");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let (plan, stream) = rest.split_at((n as usize % 8).min(rest.len()));
    let whole = decode([stream]);

    let mut chunks = Vec::new();
    let mut sizes = plan.iter().map(|s| *s as usize % 32).cycle();
    let mut at = 0;
    while at < stream.len() {
        let size = sizes.next().unwrap_or(1);
        if size == 0 {
            chunks.push(&stream[at..at]);
        }
        let end = (at + size.max(1)).min(stream.len());
        chunks.push(&stream[at..end]);
        at = end;
    }
    assert_eq!(decode(chunks), whole, "chunking changed the events");

    for ev in &whole {
        let written = encode(ev.id.as_deref(), ev.event.as_deref(), ev.data.as_bytes());
        // `encode` writes no `retry`.
        assert_eq!(decode([&written[..]]), vec![Event { retry: None, ..ev.clone() }], "{written:?}");
    }
});
