//! The config file reader (`tollgate validate`, start-up, hot reload, the management API): any
//! text is refused with problems or accepted, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use serde_norway::Value;
use tollgate::config::Config;

/// Config::parse loads every `openapi` backend's `spec`, from a URL or a file. The fuzzer must
/// neither reach the network nor read arbitrary files (`/dev/zero`, `/dev/stdin`), so only specs
/// that are plain relative paths below the working directory are let through.
fn local_only(text: &str) -> bool {
    match serde_norway::from_str::<Value>(text) {
        Ok(v) => specs_are_local(&v),
        // What YAML does not read as a value may still deserialize (a repeated key in a map);
        // without escapes, a `spec` key must be spelled out.
        Err(_) => !text.contains("spec") && !text.contains('\\'),
    }
}

fn specs_are_local(v: &Value) -> bool {
    match v {
        Value::Mapping(m) => m.iter().all(|(k, v)| {
            let is_spec = matches!(untag(k), Value::String(s) if s == "spec");
            (!is_spec || is_local_path(v)) && specs_are_local(k) && specs_are_local(v)
        }),
        Value::Sequence(items) => items.iter().all(specs_are_local),
        Value::Tagged(t) => specs_are_local(&t.value),
        _ => true,
    }
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn is_local_path(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.starts_with('/') && !s.contains("..") && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"/._-".contains(&c)),
        // A tag (`!!binary`) might turn into other text than it shows.
        Value::Tagged(_) => false,
        // Numbers, booleans, null: never a URL or an absolute path, whatever serde makes of them;
        // a sequence or a mapping is no path at all.
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if !local_only(text) {
        return;
    }
    if let Ok(config) = Config::parse(text) {
        // What `tollgate export` and the management API write back out.
        let _ = serde_norway::to_string(&config);
    }
    // Relative paths taken from the config file's folder, as `tollgate serve --config` does.
    let _ = Config::parse_in(text, Some(Path::new(".")));
});
