//! JSON-RPC envelopes, as every client request and backend reply is read: `Message::parse`
//! refuses the bytes or yields a message that serializes and parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::mcp::jsonrpc::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else { return };
    let (method, target, params) = (m.method(), m.target(), m.params());
    let _ = (m.client_info(), m.progress_token(), m.is_error(), m.id.as_ref().map(ToString::to_string));
    let bytes = m.to_bytes();
    let again = match Message::parse(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("a message that parsed does not parse once written: {e:?}\n{}", String::from_utf8_lossy(&bytes)),
    };
    assert_eq!(again.kind, m.kind);
    assert_eq!(again.id, m.id);
    assert_eq!(again.method(), method);
    assert_eq!(again.target(), target);
    assert_eq!(again.params().is_some(), params.is_some());
    assert!(again.body.keys().eq(m.body.keys()), "members reordered or lost");
});
