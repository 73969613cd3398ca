//! The OpenAPI reader: any document, JSON or YAML, is refused with problems or becomes a
//! catalog of tools, never a panic; and each tool turns awkward arguments into a request or an
//! argument error.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tollgate::config::openapi::{Catalog, OpenApiConfig};

/// The settings as a config file would give them: the document's own servers and every
/// operation, then a base URL, a selection with globs, a rename and a fixed header.
static CONFIGS: LazyLock<Vec<OpenApiConfig>> = LazyLock::new(|| {
    [
        json!({ "spec": "fuzz.yaml" }),
        json!({
            "spec": "fuzz.yaml",
            "base_url": "http://127.0.0.1:9/v1",
            "operations": ["list*", "showPetById", "*"],
            "tools": { "showPetById": { "name": "get_pet", "description": "One pet." } },
            "headers": { "X-Api-Key": "k" },
        }),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).expect("a valid openapi backend config"))
    .collect()
});

/// Argument values a model might send: separators, dot segments, line breaks, every JSON type.
fn odd_values() -> [Value; 8] {
    [json!("a/../b?c=d#e"), json!(".."), json!("x\r\nInjected: 1"), json!(""), json!(-1.5), json!(["a", "b,c"]), json!({ "k": "v", "n": null }), Value::Null]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for cfg in CONFIGS.iter() {
        let Ok(catalog) = Catalog::from_text(text, cfg) else { continue };
        let _ = serde_json::to_vec(catalog.listing());
        for tool in &catalog.tools {
            assert!(catalog.tool(&tool.name).is_some(), "tool {} is listed but not found", tool.name);
            let props: Vec<String> = tool.listing["inputSchema"]["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
            let _ = tool.op.build(&Map::new());
            for value in odd_values() {
                let args: Map<String, Value> = props.iter().map(|p| (p.clone(), value.clone())).collect();
                let _ = tool.op.build(&args);
            }
        }
    }
});
