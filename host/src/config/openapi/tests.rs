use std::path::PathBuf;

use serde_json::{Value, json};

use super::catalog::{glob, sanitize};
use super::request::ArgumentError;
use super::*;
use crate::config::{BackendKind, Config, Operations};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/openapi")
}

fn cfg(spec: &str, operations: Operations) -> OpenApiConfig {
    let mut c: OpenApiConfig = serde_norway::from_str(&format!("spec: {spec}\nbase_url: http://127.0.0.1:1\n")).unwrap();
    c.operations = operations;
    c
}

fn load_example(file: &str) -> Catalog {
    let path = examples().join(file);
    Catalog::load(&cfg(path.to_str().unwrap(), Operations::All), Duration::from_secs(1), &crate::config::TlsMaterial::default())
        .unwrap_or_else(|p| panic!("{p:?}"))
}

fn from_text(text: &str) -> Catalog {
    Catalog::from_text(text, &cfg("inline", Operations::All)).unwrap_or_else(|p| panic!("{p:?}"))
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn petstore_30_operations_become_tools_with_their_schemas() {
    let c = load_example("petstore.yaml");
    let names: Vec<&str> = c.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["listPets", "createPets", "showPetById"]);
    let show = &c.tool("showPetById").unwrap().listing;
    assert_eq!(show["description"], "Info for a specific pet");
    assert_eq!(show["inputSchema"]["required"], json!(["petId"]));
    assert_eq!(show["inputSchema"]["properties"]["petId"], json!({ "type": "string", "description": "The id of the pet to retrieve" }));
    assert_eq!(show["outputSchema"]["required"], json!(["id", "name"]));
    assert_eq!(show["outputSchema"]["properties"]["id"], json!({ "type": "integer", "format": "int64" }));
    assert_eq!(show["annotations"]["readOnlyHint"], true);
    let create = &c.tool("createPets").unwrap().listing;
    assert_eq!(create["inputSchema"]["required"], json!(["body"]));
    assert_eq!(create["inputSchema"]["properties"]["body"]["required"], json!(["id", "name"]));
    let list = &c.tool("listPets").unwrap().listing;
    assert_eq!(list["inputSchema"]["properties"]["limit"]["maximum"], 100);
    assert!(list.get("outputSchema").is_none(), "an array answer has no object output schema");
}

#[test]
fn openapi_31_documents_load_and_operations_without_id_get_stable_names() {
    let c = load_example("webhook-example.yaml");
    assert_eq!(c.tools.len(), 1, "webhooks are not operations the gateway calls");
    assert_eq!(c.tools[0].name, "listPets");
    let c = load_example("non-oauth-scopes.json");
    assert_eq!(c.tools[0].name, "get_users");
    assert_eq!(c.tools[0].listing["description"], "GET /users");
}

#[test]
fn all_of_objects_get_output_schemas_and_odd_operation_ids_are_cleaned() {
    let c = load_example("petstore-expanded.yaml");
    let t = c.tool("find_pet_by_id").expect("'find pet by id' becomes a valid tool name");
    assert!(t.listing["outputSchema"]["allOf"].is_array());
    assert_eq!(c.tool("findPets").unwrap().listing["inputSchema"]["properties"]["tags"]["items"], json!({ "type": "string" }));
    assert_eq!(c.tool("deletePet").unwrap().listing["annotations"]["destructiveHint"], true);
}

const COLLIDING: &str = r##"
openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /items/{id}:
    parameters:
      - { name: id, in: path, required: true, schema: { type: string } }
    put:
      operationId: put
      parameters:
        - { name: id, in: query, schema: { type: integer } }
        - { name: body, in: header, schema: { type: string } }
        - { name: Authorization, in: header, schema: { type: string } }
        - { name: session, in: cookie, schema: { type: string } }
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/Node" } } }
      responses:
        "200": { description: ok, content: { application/json: { schema: { $ref: "#/components/schemas/Node" } } } }
components:
  schemas:
    Node:
      type: object
      properties:
        name: { type: string, enum: [a, b] }
        children: { type: array, items: { $ref: "#/components/schemas/Node" } }
"##;

#[test]
fn parameters_that_share_a_name_are_kept_apart_and_the_body_has_its_own_place() {
    let c = from_text(COLLIDING);
    let input = &c.tools[0].listing["inputSchema"];
    let mut props: Vec<&String> = input["properties"].as_object().unwrap().keys().collect();
    props.sort();
    assert_eq!(props, ["body", "header_body", "path_id", "query_id", "session"]);
    assert!(input["properties"].get("Authorization").is_none(), "the gateway never lets a model set Authorization");
    assert_eq!(input["required"], json!(["path_id", "body"]));
    let built = c.tools[0].op.build(&args(json!({ "path_id": "a b", "query_id": 7, "header_body": "h", "session": "s;1", "body": { "name": "a" } }))).unwrap();
    assert_eq!(built.target, "/items/a%20b?id=7");
    assert_eq!(built.headers, [("body".to_owned(), "h".to_owned()), ("cookie".to_owned(), "session=s%3B1".to_owned())]);
    assert_eq!(built.body, Some(("application/json".to_owned(), br#"{"name":"a"}"#.to_vec())));
}

#[test]
fn recursive_schemas_go_to_defs_and_keep_their_enums() {
    let c = from_text(COLLIDING);
    let input = &c.tools[0].listing["inputSchema"];
    assert_eq!(input["properties"]["body"]["properties"]["name"]["enum"], json!(["a", "b"]));
    assert_eq!(input["properties"]["body"]["properties"]["children"]["items"], json!({ "$ref": "#/$defs/Node" }));
    assert_eq!(input["$defs"]["Node"]["properties"]["children"]["items"], json!({ "$ref": "#/$defs/Node" }));
    let output = &c.tools[0].listing["outputSchema"];
    assert_eq!(output["$defs"]["Node"]["type"], "object");
}

#[test]
fn openapi_30_nullable_and_exclusive_bounds_become_json_schema() {
    let c = from_text(
        r#"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /x:
    get:
      operationId: x
      parameters:
        - { name: n, in: query, schema: { type: integer, minimum: 0, exclusiveMinimum: true, nullable: true, example: 3 } }
      responses: { "204": { description: none } }
"#,
    );
    assert_eq!(c.tools[0].listing["inputSchema"]["properties"]["n"], json!({ "type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [3] }));
}

fn one_param(decl: &str) -> Catalog {
    from_text(&format!(
        "openapi: 3.1.0\ninfo: {{ title: t, version: '1' }}\npaths:\n  /f/{{p}}:\n    get:\n      operationId: f\n      parameters:\n        - {{ name: p, in: path, required: true, schema: {{ type: string }} }}\n        - {decl}\n      responses: {{ '204': {{ description: none }} }}\n"
    ))
}

#[test]
fn path_parameters_cannot_leave_their_segment() {
    let c = one_param("{ name: q, in: query, schema: { type: string } }");
    let op = &c.tools[0].op;
    let target = |p: &str| op.build(&args(json!({ "p": p }))).map(|b| b.target);
    assert_eq!(target("../admin").unwrap(), "/f/..%2Fadmin");
    assert_eq!(target("a%2Fb").unwrap(), "/f/a%252Fb");
    assert_eq!(target("x?y#z").unwrap(), "/f/x%3Fy%23z");
    assert_eq!(target("é").unwrap(), "/f/%C3%A9");
    for dots in ["..", ".", ""] {
        assert_eq!(target(dots), Err(ArgumentError::DotSegment("p".into())), "{dots:?}");
    }
    assert_eq!(op.build(&args(json!({}))), Err(ArgumentError::Missing("p".into())));
}

#[test]
fn query_arrays_and_objects_follow_style_and_explode() {
    let cases = [
        ("{ name: t, in: query, schema: { type: array, items: { type: string } } }", json!(["a", "b c"]), "t=a&t=b%20c"),
        ("{ name: t, in: query, explode: false, schema: { type: array } }", json!(["a", "b"]), "t=a,b"),
        ("{ name: t, in: query, style: pipeDelimited, explode: false, schema: { type: array } }", json!([1, 2]), "t=1%7C2"),
        ("{ name: t, in: query, style: spaceDelimited, explode: false, schema: { type: array } }", json!([1, 2]), "t=1%202"),
        ("{ name: t, in: query, style: deepObject, explode: true, schema: { type: object } }", json!({ "a": 1, "b": "&" }), "t%5Ba%5D=1&t%5Bb%5D=%26"),
        ("{ name: t, in: query, schema: { type: object } }", json!({ "a": 1, "b": 2 }), "a=1&b=2"),
        ("{ name: t, in: query, explode: false, schema: { type: object } }", json!({ "a": 1, "b": 2 }), "t=a,1,b,2"),
        ("{ name: t, in: query, content: { application/json: { schema: { type: object } } } }", json!({ "a": 1 }), "t=%7B%22a%22%3A1%7D"),
        ("{ name: t, in: query, schema: { type: boolean } }", json!(true), "t=true"),
    ];
    for (decl, value, query) in cases {
        let c = one_param(decl);
        let built = c.tools[0].op.build(&args(json!({ "p": "1", "t": value }))).unwrap();
        assert_eq!(built.target, format!("/f/1?{query}"), "{decl}");
    }
}

#[test]
fn headers_refuse_line_breaks_and_join_arrays() {
    let c = one_param("{ name: X-Tags, in: header, schema: { type: array } }");
    let op = &c.tools[0].op;
    assert_eq!(op.build(&args(json!({ "p": "1", "X-Tags": ["a", "b"] }))).unwrap().headers, [("X-Tags".to_owned(), "a,b".to_owned())]);
    assert_eq!(op.build(&args(json!({ "p": "1", "X-Tags": "a\r\nX-Evil: 1" }))), Err(ArgumentError::BadHeader("X-Tags".into())));
}

#[test]
fn configured_headers_are_not_the_models_to_set() {
    let text = "openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /k:\n    get:\n      operationId: k\n      parameters:\n        - { name: X-Api-Key, in: header, required: true, schema: { type: string } }\n        - { name: Host, in: header, schema: { type: string } }\n        - { name: X-Trace, in: header, schema: { type: string } }\n      responses: { '204': { description: none } }\n";
    let mut c = cfg("inline", Operations::All);
    c.headers.insert("x-api-key".into(), "secret".into());
    let catalog = Catalog::from_text(text, &c).unwrap();
    assert_eq!(catalog.tools[0].listing["inputSchema"], json!({ "type": "object", "properties": { "X-Trace": { "type": "string" } } }));
}

#[test]
fn selection_problems_name_their_place() {
    let path = examples().join("petstore.yaml");
    let mut c = cfg(path.to_str().unwrap(), Operations::Only(vec!["listPets".into(), "showPetByID".into(), "delete*".into()]));
    c.tools.insert("createPets".into(), Default::default());
    c.tools.insert("listPets".into(), named("same"));
    let problems = Catalog::load(&c, Duration::from_secs(1), &crate::config::TlsMaterial::default()).unwrap_err();
    let shown: Vec<(Place, String)> = problems.into_iter().map(|p| (p.place, p.message)).collect();
    assert!(shown.contains(&(Place::Operation(1), "unknown operation 'showPetByID' (did you mean 'showPetById'?)".into())), "{shown:?}");
    assert!(shown.contains(&(Place::Operation(2), "'delete*' matches no operation of the spec".into())), "{shown:?}");
    assert!(shown.contains(&(Place::Tool("createPets".into()), "operation 'createPets' is not among the chosen `operations`".into())), "{shown:?}");
    assert_eq!(shown.len(), 3, "{shown:?}");
}

fn named(n: &str) -> crate::config::ToolOverride {
    crate::config::ToolOverride { name: Some(n.into()), description: None }
}

#[test]
fn two_tools_with_one_name_are_refused() {
    let path = examples().join("petstore.yaml");
    let mut c = cfg(path.to_str().unwrap(), Operations::All);
    c.tools.insert("showPetById".into(), named("listPets"));
    let problems = Catalog::load(&c, Duration::from_secs(1), &crate::config::TlsMaterial::default()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].place, Place::Tool("showPetById".into()));
    assert!(problems[0].message.contains("two tools are named 'listPets'"), "{}", problems[0].message);
}

#[test]
fn validate_reports_spec_problems_at_their_lines() {
    let text = "\
servers:
  - name: pets
    backend:
      openapi:
        spec: petstore.yaml
        base_url: http://127.0.0.1:9
        operations:
          - listPets
          - nope
  - name: missing
    backend:
      openapi:
        spec: no-such-file.yaml
";
    let problems = Config::parse_in(text, Some(&examples())).unwrap_err();
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(shown.iter().any(|p| p == "line 9: servers[0].backend.openapi.operations[1]: unknown operation 'nope'"), "{shown:#?}");
    assert!(shown.iter().any(|p| p.starts_with("line 13: servers[1].backend.openapi.spec: cannot read ") && p.contains("no-such-file.yaml")), "{shown:#?}");
    assert_eq!(problems.len(), 2, "{shown:#?}");
    let ok = Config::parse_in(&text[..text.find("          - nope").unwrap()], Some(&examples())).unwrap();
    let BackendKind::OpenApi(o) = ok.servers[0].backend.kind() else { panic!("an openapi backend") };
    assert_eq!(o.loaded.get().expect("validation keeps the loaded catalog").tools.len(), 1);
}

#[test]
fn globs_and_names() {
    assert!(glob("create*", "createPets") && glob("*Pet?", "showPets") && glob("*", "") && !glob("list", "listPets"));
    assert_eq!(sanitize("find pet by id"), "find_pet_by_id");
    assert_eq!(sanitize("get_/a/{b}//c"), "get_a_b_c");
    assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
}

/// A 300-operation document with shared, nested components, as large APIs have.
fn big_spec(ops: usize) -> String {
    let mut s = String::from("openapi: 3.0.3\ninfo: { title: big, version: '1' }\nservers: [ { url: 'http://127.0.0.1:1' } ]\npaths:\n");
    for i in 0..ops / 3 {
        s.push_str(&format!("  /r{i}/{{id}}:\n    parameters: [ {{ name: id, in: path, required: true, schema: {{ type: string }} }} ]\n"));
        for m in ["get", "put", "delete"] {
            s.push_str(&format!("    {m}:\n      operationId: {m}R{i}\n      summary: {m} resource {i}\n      parameters: [ {{ name: q, in: query, schema: {{ type: array, items: {{ $ref: '#/components/schemas/Tag' }} }} }} ]\n      requestBody: {{ content: {{ application/json: {{ schema: {{ $ref: '#/components/schemas/Doc' }} }} }} }}\n      responses: {{ '200': {{ description: ok, content: {{ application/json: {{ schema: {{ $ref: '#/components/schemas/Doc' }} }} }} }} }}\n"));
        }
    }
    s.push_str("components:\n  schemas:\n    Tag: { type: string, enum: [a, b, c] }\n    Doc:\n      type: object\n      required: [name]\n      properties:\n        name: { type: string }\n        tags: { type: array, items: { $ref: '#/components/schemas/Tag' } }\n        owner: { $ref: '#/components/schemas/Person' }\n        parent: { $ref: '#/components/schemas/Doc' }\n    Person:\n      type: object\n      properties:\n        name: { type: string, nullable: true }\n        manager: { $ref: '#/components/schemas/Person' }\n        address: { type: object, properties: { street: { type: string }, city: { type: string } } }\n");
    s
}

#[test]
fn a_300_operation_spec_loads_in_well_under_a_second() {
    let text = big_spec(300);
    let start = std::time::Instant::now();
    let c = Catalog::from_text(&text, &cfg("inline", Operations::All)).unwrap_or_else(|p| panic!("{p:?}"));
    let took = start.elapsed();
    assert_eq!(c.tools.len(), 300);
    assert!(c.tool("putR99").unwrap().listing["inputSchema"]["$defs"]["Doc"].is_object());
    // Release builds take about 85 ms here (parse 26 ms, tools 59 ms); unoptimized ones about 300 ms.
    assert!(took < Duration::from_millis(if cfg!(debug_assertions) { 1_000 } else { 300 }), "took {took:?}");
}
