//! Turns OpenAPI schemas into self-contained JSON Schema for tools.
//!
//! References are inlined, because many clients and models read `$ref` poorly. A reference that
//! leads back into itself (a tree of nodes, a category with a parent) cannot be inlined: it goes
//! to `$defs` at the root of the tool's schema and is referred to there. A budget on inlined
//! nodes keeps a document that reuses schemas heavily from blowing up; past it, `$defs` are used
//! for everything. OpenAPI 3.0 keywords (`nullable`, `example`, boolean `exclusiveMaximum`) are
//! translated to their JSON Schema 2020-12 forms; required fields, enums and formats are kept.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::SpecError;
use super::spec::{Document, Version};

/// Nodes inlined per tool schema before further references go to `$defs`.
const INLINE_BUDGET: usize = 20_000;

/// Keywords whose value is one subschema.
const ONE: [&str; 11] =
    ["items", "not", "additionalProperties", "if", "then", "else", "contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "additionalItems"];
/// Keywords whose value is a list of subschemas.
const LIST: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const MAP: [&str; 5] = ["properties", "patternProperties", "dependentSchemas", "$defs", "definitions"];
/// OpenAPI-only keywords that mean nothing to a JSON Schema reader.
const DROP: [&str; 4] = ["discriminator", "xml", "externalDocs", "nullable"];

/// Builds the schemas of one tool, sharing one `$defs`.
pub struct Inliner<'a> {
    doc: &'a Document,
    stack: Vec<String>,
    defs: BTreeMap<String, Value>,
    names: HashMap<String, String>,
    budget: usize,
}

impl<'a> Inliner<'a> {
    pub fn new(doc: &'a Document) -> Inliner<'a> {
        Inliner { doc, stack: Vec::new(), defs: BTreeMap::new(), names: HashMap::new(), budget: INLINE_BUDGET }
    }

    /// A schema with its references resolved (or moved to `$defs`).
    pub fn schema(&mut self, v: &Value) -> Result<Value, SpecError> {
        let Value::Object(m) = v else { return Ok(v.clone()) };
        self.budget = self.budget.saturating_sub(1);
        if let Some(r) = m.get("$ref").and_then(Value::as_str) {
            let mut out = if self.stack.iter().any(|s| s == r) || self.budget == 0 {
                self.def_ref(r)?
            } else {
                let target = self.doc.pointer(r)?;
                self.stack.push(r.to_owned());
                let out = self.schema(target);
                self.stack.pop();
                out?
            };
            // Words beside a $ref (3.1 allows them) refine the target: a description in context.
            let rest: Map<String, Value> = m.iter().filter(|(k, _)| *k != "$ref").map(|(k, v)| (k.clone(), v.clone())).collect();
            if let (Value::Object(o), false) = (&mut out, rest.is_empty()) {
                o.extend(self.object(&rest)?);
            }
            return Ok(out);
        }
        Ok(Value::Object(self.object(m)?))
    }

    /// A schema object without `$ref` at its top, its subschemas resolved.
    fn object(&mut self, m: &Map<String, Value>) -> Result<Map<String, Value>, SpecError> {
        let mut out = Map::with_capacity(m.len());
        for (k, v) in m {
            if k.starts_with("x-") || DROP.contains(&k.as_str()) {
                continue;
            }
            let value = if ONE.contains(&k.as_str()) {
                self.schema(v)?
            } else if LIST.contains(&k.as_str()) {
                match v {
                    Value::Array(items) => Value::Array(items.iter().map(|s| self.schema(s)).collect::<Result<_, _>>()?),
                    other => self.schema(other)?,
                }
            } else if MAP.contains(&k.as_str()) {
                match v {
                    Value::Object(props) => {
                        let mut o = Map::with_capacity(props.len());
                        for (name, s) in props {
                            o.insert(name.clone(), self.schema(s)?);
                        }
                        Value::Object(o)
                    }
                    other => other.clone(),
                }
            } else {
                v.clone()
            };
            out.insert(k.clone(), value);
        }
        if self.doc.version == Version::V30 {
            from_30(m, &mut out);
        }
        Ok(out)
    }

    /// `{"$ref": "#/$defs/Name"}`, building the definition the first time.
    fn def_ref(&mut self, r: &str) -> Result<Value, SpecError> {
        if let Some(name) = self.names.get(r) {
            return Ok(json!({ "$ref": format!("#/$defs/{name}") }));
        }
        let base: String =
            r.rsplit('/').next().unwrap_or("def").chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
        let mut name = base.clone();
        let mut n = 2;
        while self.names.values().any(|v| *v == name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.names.insert(r.to_owned(), name.clone());
        let target = self.doc.pointer(r)?;
        let outer = std::mem::replace(&mut self.stack, vec![r.to_owned()]);
        let body = self.schema(target);
        self.stack = outer;
        self.defs.insert(name.clone(), body?);
        Ok(json!({ "$ref": format!("#/$defs/{name}") }))
    }

    /// Puts the definitions used so far at the root of `schema`.
    pub fn finish(self, mut schema: Value) -> Value {
        if !self.defs.is_empty()
            && let Value::Object(o) = &mut schema
        {
            o.insert("$defs".into(), Value::Object(self.defs.into_iter().collect()));
        }
        schema
    }
}

/// Translates OpenAPI 3.0 schema keywords into JSON Schema 2020-12.
fn from_30(src: &Map<String, Value>, out: &mut Map<String, Value>) {
    if let Some(example) = out.remove("example") {
        out.entry("examples").or_insert_with(|| Value::Array(vec![example]));
    }
    for (flag, bound) in [("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")] {
        match out.get(flag) {
            Some(Value::Bool(true)) => {
                if let Some(b) = out.remove(bound) {
                    out.insert(flag.into(), b);
                } else {
                    out.remove(flag);
                }
            }
            Some(Value::Bool(false)) => {
                out.remove(flag);
            }
            _ => {}
        }
    }
    if src.get("nullable") == Some(&Value::Bool(true)) {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(_) => {}
            None => {
                let inner = std::mem::take(out);
                if inner.is_empty() {
                    return; // `{nullable: true}` alone already allows null
                }
                out.insert("anyOf".into(), json!([Value::Object(inner), { "type": "null" }]));
                return;
            }
        }
        if let Some(Value::Array(e)) = out.get_mut("enum")
            && !e.contains(&Value::Null)
        {
            e.push(Value::Null);
        }
    }
}

/// Whether a (resolved) schema describes a JSON object, which `outputSchema` must.
pub fn is_object(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.len() == 1 && ts[0] == "object",
        None => schema.get("properties").is_some() || schema.get("allOf").and_then(Value::as_array).is_some_and(|a| !a.is_empty() && a.iter().all(is_object)),
        _ => false,
    }
}
