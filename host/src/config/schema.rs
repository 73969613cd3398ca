//! `tollgate config schema`: a JSON Schema (draft 2020-12) of the config file, for editors and CI.
//!
//! It is derived from the config types themselves (`#[derive(JsonSchema)]` beside each
//! `Deserialize`), so it follows them; descriptions are their doc comments. A type whose
//! `Deserialize` is written by hand describes itself by hand, next to that impl ([`Secret`],
//! [`Nets`], [`Operations`]) or here ([`CompileCache`], to keep `config.rs` short); socket
//! addresses use [`SocketAddress`].
//!
//! The schema says what reading the file accepts, plus the one rule of a secret reference (exactly
//! one of `env` and `file`). What only `tollgate validate` can tell is left to it: ranges, names,
//! one backend per server, URLs, whether a variable is set or a file exists, and each policy's own
//! `config`, which the policy checks itself.
//!
//! [`Secret`]: super::Secret
//! [`CompileCache`]: super::CompileCache
//! [`Nets`]: super::Nets
//! [`Operations`]: super::Operations

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use super::{CompileCache, Config};

/// What the schema calls itself: `$id` and `title`.
pub const ID: &str = "urn:tollgate:config";
pub const TITLE: &str = "Tollgate configuration";

/// The schema of the whole config file, as `tollgate config schema` prints it.
pub fn schema() -> Value {
    let root = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<Config>().to_value();
    let Value::Object(mut generated) = root else { unreachable!("the schema of a struct is an object") };
    let description = format!(
        "The config file of Tollgate {}, an MCP gateway (`tollgate serve --config FILE`), in YAML or JSON. \
         Generated from the gateway's config types by `tollgate config schema`; `tollgate validate` checks \
         what a schema cannot (ranges, names, URLs, environment variables and files).",
        env!("CARGO_PKG_VERSION")
    );
    // The identifying keywords first, then what was generated.
    let mut out = Map::new();
    out.insert("$schema".into(), generated.remove("$schema").unwrap_or_else(|| json!(schemars::consts::meta_schemas::DRAFT2020_12)));
    out.insert("$id".into(), json!(ID));
    out.insert("title".into(), json!(TITLE));
    out.insert("description".into(), json!(description));
    generated.remove("title");
    generated.remove("description");
    out.extend(generated);
    let mut out = Value::Object(out);
    unwrap_lines(&mut out);
    out
}

/// Doc comments are wrapped at the source's width; an editor shows a description as it is, so
/// the lines of each paragraph are joined again (paragraphs stay apart), and rustdoc's links
/// (``[`Secret`]``) are left as code.
pub fn unwrap_lines(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => {
                        let joined = text.split("\n\n").map(|p| p.replace('\n', " ")).collect::<Vec<_>>().join("\n\n");
                        *text = joined.replace("[`", "`").replace("`]", "`");
                    }
                    // Values, not schemas: left as they are.
                    _ if matches!(key.as_str(), "default" | "examples" | "const" | "enum") => {}
                    _ => unwrap_lines(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_lines),
        _ => {}
    }
}

/// As [`CompileCache`]'s `Deserialize` (in `config.rs`) reads it: `off` (or `false`), or a directory.
impl JsonSchema for CompileCache {
    fn schema_name() -> Cow<'static, str> {
        "CompileCache".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "const": "off", "description": "No cache: every load compiles." },
                { "const": false, "description": "As `off`." },
                { "type": "string", "minLength": 1, "description": "A directory, relative to the config file." }
            ]
        })
    }
}

/// A `SocketAddr` as serde reads it from text: an IP address and a port (`127.0.0.1:8080`,
/// `[::1]:8080`), never a host name. The pattern admits every address that parses (and a few
/// out-of-range ones, which `tollgate validate` refuses).
pub struct SocketAddress;

impl JsonSchema for SocketAddress {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "SocketAddress".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+(%\d+)?\]):\d+$",
            "examples": ["127.0.0.1:8080", "0.0.0.0:8080", "[::1]:8080"]
        })
    }
}

/// The rule `tollgate validate` holds every secret reference to: exactly one of `env` and `file`
/// (a `null` one counts as absent, as serde reads it).
pub(super) fn one_source(schema: &mut Schema) {
    let only = |given: &str, absent: &str| {
        json!({
            "required": [given],
            "properties": { given: { "type": "string" }, absent: { "type": "null" } }
        })
    };
    schema.insert("oneOf".into(), json!([only("env", "file"), only("file", "env")]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// The fields serde reads for `T` (a struct with `deny_unknown_fields`), as its own error
    /// for an unknown field lists them: independent of the schema's derive.
    fn serde_fields<T: DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
        let err = serde_norway::from_str::<T>("zz_not_a_field: 1").unwrap_err().to_string();
        // "unknown field `zz_not_a_field`, expected one of `a`, `b`" (or "expected `a` or `b`").
        let (_, expected) = err.split_once("expected ").unwrap_or_else(|| panic!("{err}"));
        expected.split('`').skip(1).step_by(2).map(str::to_owned).collect()
    }

    fn properties<'a>(schema: &'a Value, at: &str) -> &'a Map<String, Value> {
        schema.pointer(&format!("{at}/properties")).and_then(Value::as_object).unwrap_or_else(|| panic!("no properties at {at}"))
    }

    #[test]
    fn every_top_level_field_is_in_the_schema() {
        let s = schema();
        let fields = serde_fields::<Config>();
        assert!(fields.len() >= 13 && fields.contains(&"servers".to_owned()), "{fields:?}");
        let props = properties(&s, "");
        for f in &fields {
            assert!(props.contains_key(f), "`{f}` is read from the file but missing from the schema");
        }
        assert_eq!(props.len(), fields.len(), "the schema names only fields serde reads: {:?}", props.keys().collect::<Vec<_>>());
        assert_eq!(s["additionalProperties"], json!(false), "unknown top-level keys are refused, as serde refuses them");
        assert_eq!(s["required"], json!(["servers"]));
    }

    #[test]
    fn nested_sections_list_the_fields_serde_reads() {
        use super::super::*;
        let s = schema();
        let check = |name: &str, fields: Vec<String>| {
            let props = properties(&s, &format!("/$defs/{name}"));
            let mut listed: Vec<&String> = props.keys().collect();
            listed.sort();
            let mut read: Vec<&String> = fields.iter().collect();
            read.sort();
            assert_eq!(listed, read, "{name}");
            assert_eq!(s["$defs"][name]["additionalProperties"], json!(false), "{name}");
        };
        check("ServerConfig", serde_fields::<ServerConfig>());
        check("BackendConfig", serde_fields::<BackendConfig>());
        check("StdioConfig", serde_fields::<StdioConfig>());
        check("OpenApiConfig", serde_fields::<OpenApiConfig>());
        check("Limits", serde_fields::<Limits>());
        check("ManagementConfig", serde_fields::<ManagementConfig>());
        check("PolicyBinding", serde_fields::<PolicyBinding>());
        check("SecretRef", serde_fields::<SecretRef>());
    }

    #[test]
    fn the_schema_names_itself_and_the_version() {
        let s = schema();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["$id"], ID);
        assert_eq!(s["title"], TITLE);
        assert!(s["description"].as_str().unwrap().contains(env!("CARGO_PKG_VERSION")));
        let keys: Vec<&String> = s.as_object().unwrap().keys().take(4).collect();
        assert_eq!(keys, ["$schema", "$id", "title", "description"]);
        let docs = &s["properties"]["listen"]["description"];
        assert!(docs.as_str().is_some_and(|d| d.contains("Loopback by default")), "doc comments become descriptions: {docs}");
        let wrapped = s["$defs"]["BackendConfig"]["properties"]["headers"]["description"].as_str().unwrap();
        assert!(wrapped.contains("each a `Secret`. The client's own headers") && !wrapped.contains('\n'), "{wrapped}");
    }

    #[test]
    fn secrets_are_described_without_a_value() {
        let s = schema();
        let secret = &s["$defs"]["Secret"];
        let reference = &s["$defs"]["SecretRef"];
        assert_eq!(secret["anyOf"][1]["$ref"], "#/$defs/SecretRef", "{secret}");
        assert_eq!(reference["oneOf"].as_array().map(Vec::len), Some(2), "{reference}");
        // No default, example or constant that could carry a credential, anywhere under them.
        for (name, part) in [("Secret", secret), ("SecretRef", reference)] {
            let text = part.to_string();
            for key in ["\"default\"", "\"examples\"", "\"enum\""] {
                assert!(!text.contains(key), "{name} has {key}: {text}");
            }
        }
        let fields = ["/$defs/StateConfig/properties/redis", "/$defs/ManagementConfig/properties/database", "/$defs/ClientTls/properties/key"];
        for at in fields {
            let field = s.pointer(at).unwrap_or_else(|| panic!("{at}"));
            assert!(field.get("default").is_none(), "{at}: {field}");
        }
    }
}
