//! `tollgate policy test`: a component run offline against a cases file. The template's cases
//! pass on the template; a standard policy passes its own; a case that expects the wrong
//! verdict fails with the difference named, and the exit status says so.

use std::process::Command;

use super::support::guest;
use tollgate_tests::gateway::TempDir;
use tollgate_tests::process::binary;

/// Runs `tollgate policy test COMPONENT --cases FILE`: exit status and stdout.
pub fn policy_test(component: &str, cases: &std::path::Path) -> (i32, String) {
    let out = Command::new(binary("tollgate")).args(["policy", "test", component, "--cases"]).arg(cases).output().expect("tollgate runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Runs `tollgate policy build PROJECT`, with `with` setting its environment; the component's
/// path, which it prints last.
pub fn policy_build(project: &std::path::Path, with: impl FnOnce(&mut Command)) -> String {
    let mut build = Command::new(binary("tollgate"));
    build.args(["policy", "build"]).arg(project);
    with(&mut build);
    let out = build.output().expect("tollgate runs");
    assert!(out.status.success(), "policy build {}: {}", project.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().expect("the component's path, last").to_owned()
}

/// As [`policy_build`], for a Python project.
pub fn python_build(project: &std::path::Path) -> String {
    policy_build(project, |c| {
        c.env("COMPONENTIZE_PY", super::support::componentize_py());
    })
}

/// As [`policy_build`], for a JavaScript project, with the kit's componentize-js
/// (`scripts/setup.sh` installs it in `kits/js`) as an author's `npm install` would give it.
pub fn js_build(project: &std::path::Path) -> String {
    policy_build(project, |c| {
        c.env("COMPONENTIZE_JS", super::support::componentize_js());
    })
}

#[test]
fn wrong_expectations_fail_with_the_difference_named() {
    let dir = TempDir::new();
    let cases = dir.0.join("cases.yaml");
    std::fs::write(
        &cases,
        r#"
config: { hidden: [secret-tool] }
cases:
  - name: hidden tools are refused
    request: { method: tools/call, params: { name: secret-tool } }
    expect: { verdict: deny, code: -32003 }
  - name: expects a refusal of a visible tool
    request: { method: tools/call, params: { name: echo } }
    expect: { verdict: deny }
  - name: expects the wrong code
    request: { method: tools/call, params: { name: secret-tool } }
    expect: { verdict: deny, code: -32001 }
  - name: expects the wrong list
    request: { method: tools/list }
    answer: { tools: [{ name: echo }, { name: secret-tool }] }
    expect: { verdict: continue, tools: [echo, secret-tool] }
"#,
    )
    .unwrap();
    let (code, out) = policy_test(&guest("gatekeeper"), &cases);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 passed, 3 failed"), "{out}");
    assert!(out.contains("FAILED expects a refusal of a visible tool: expected Deny, but the message was forwarded"), "{out}");
    assert!(out.contains("FAILED expects the wrong code: refused with status 200 and code -32003, expected code -32001"), "{out}");
    assert!(out.contains(r#"FAILED expects the wrong list: tools: expected ["echo", "secret-tool"], got ["echo"]"#), "{out}");
    assert!(!out.contains("FAILED hidden tools are refused"), "{out}");

    std::fs::write(&cases, "cases:\n  - name: x\n    request: { method: ping }\n    expect: { verdict: maybe }\n").unwrap();
    let (code, out) = policy_test(&guest("gatekeeper"), &cases);
    assert_eq!(code, 2, "a cases file that does not parse: {out}");
    assert!(out.contains("cases[0].expect.verdict") && out.contains("unknown variant `maybe`"), "{out}");
}

/// One policy in each kit (`meter`: config, hooks, secrets, state, attributes, headers both
/// ways, every verdict, the response and message phases), one cases file: the Rust crate, and
/// its Python and JavaScript twins with their kits' helper libraries, built by `tollgate policy
/// build` as an author would.
#[test]
fn the_same_cases_pass_for_every_kit_s_version_of_one_policy() {
    let dir = TempDir::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = dir.0.join("meter");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(root.join("guests-py/meter/app.py"), project.join("app.py")).unwrap();
    std::fs::copy(root.join("../kits/python/tollgate_policy.py"), project.join("tollgate_policy.py")).unwrap();
    let python = python_build(&project);
    assert_eq!(python, project.join("meter.wasm").display().to_string());
    let project = dir.0.join("js/meter");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(root.join("guests-js/meter/policy.js"), project.join("policy.js")).unwrap();
    std::fs::copy(root.join("../kits/js/tollgate.js"), project.join("tollgate.js")).unwrap();
    let js = js_build(&project);

    let cases = root.join("data/meter.cases.yaml");
    let expected = format!("{} passed, 0 failed", std::fs::read_to_string(&cases).unwrap().matches("  - name: ").count());
    for component in [guest("meter"), python, js] {
        let (code, out) = policy_test(&component, &cases);
        assert_eq!((code, out.trim()), (0, expected.as_str()), "{component}: {out}");
    }
}

#[test]
fn a_directory_that_is_no_policy_project_is_refused_with_why() {
    let dir = TempDir::new();
    let out = Command::new(binary("tollgate")).args(["policy", "build"]).arg(&dir.0).output().expect("tollgate runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a policy project: expected a Cargo.toml (Rust), an app.py (Python) or a policy.js (JavaScript)")
    );
}

/// A case gives the binding's state before it runs and checks it after.
#[test]
fn cases_give_the_state_before_and_check_it_after() {
    let dir = TempDir::new();
    let cases = dir.0.join("cases.yaml");
    std::fs::write(
        &cases,
        r#"
config: { visits: visits, max_visits: 3 }
cases:
  - name: a first visit starts the count
    request: { method: tools/call, params: { name: echo } }
    state: { after: { visits: "1", other: null } }
    expect: { verdict: continue }
  - name: each case starts from its own state, not the last case's
    request: { method: tools/call, params: { name: echo } }
    state: { before: { visits: "3" }, after: { visits: "4" } }
    expect: { verdict: deny, code: -32003 }
  - name: a wrong expectation of the state after
    request: { method: tools/call, params: { name: echo } }
    state: { before: { visits: "1" }, after: { visits: "7" } }
    expect: { verdict: continue }
"#,
    )
    .unwrap();
    let (code, out) = policy_test(&guest("gatekeeper"), &cases);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 passed, 1 failed"), "{out}");
    assert!(out.contains(r#"FAILED a wrong expectation of the state after: state visits: expected Some("7"), got Some("2")"#), "{out}");
}

/// A component built for another release series of the contract is refused with both
/// versions named; one built for a later patch of the same series runs.
#[test]
fn the_contract_series_decides_whether_a_component_loads() {
    let dir = TempDir::new();
    let cases = dir.0.join("cases.yaml");
    std::fs::write(&cases, "cases:\n  - name: loads\n    request: { method: ping }\n    expect: { verdict: continue }\n").unwrap();
    let (code, text) = policy_test(&gatekeeper_for_contract(&dir, "0.1.0"), &cases);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("was built for the policy contract tollgate:policy@0.1.0; this gateway speaks tollgate:policy@0.2.0"), "{text}");
    let (code, text) = policy_test(&gatekeeper_for_contract(&dir, "0.2.1"), &cases);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 passed, 0 failed"), "{text}");
}

/// The Python gatekeeper built against the contract renamed to `version`; its path.
fn gatekeeper_for_contract(dir: &TempDir, version: &str) -> String {
    let project = dir.0.join(format!("contract-{version}"));
    std::fs::create_dir_all(project.join("wit")).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("guests-py/gatekeeper/app.py"), project.join("app.py")).unwrap();
    let wit = std::fs::read_to_string(root.join("../wit/policy.wit")).unwrap();
    let ours = wit.lines().next().expect("the package line").to_owned();
    let wit = wit.replacen(&ours, &format!("package tollgate:policy@{version};"), 1);
    std::fs::write(project.join("wit/policy.wit"), wit).unwrap();
    let out = project.join("gatekeeper.wasm");
    let status = Command::new(super::support::componentize_py())
        .current_dir(&project)
        .args(["-d", "wit", "-w", "gateway-policy", "componentize", "app", "-o"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("componentize-py runs");
    assert!(status.success());
    out.display().to_string()
}

/// Streamed messages go through the message phase (passed, replaced, dropped with the answer
/// the backend's request gets), an error answer through the response phase, and a case that
/// expects the wrong message verdict fails naming it.
#[test]
fn cases_run_streamed_messages_and_error_answers() {
    let dir = TempDir::new();
    let cases = dir.0.join("cases.yaml");
    std::fs::write(
        &cases,
        r#"
config: { redact: secret, refuse_sampling: true, mark_answers: true }
cases:
  - name: progress is redacted, logging passes, sampling is dropped with -32003
    request: { method: tools/call, params: { name: echo } }
    messages:
      - { method: notifications/progress, params: { progressToken: 1, progress: 1, message: "the secret word" } }
      - { method: notifications/message, params: { level: info, data: "plain" } }
      - { id: 7, method: sampling/createMessage, params: { messages: [], maxTokens: 5 } }
    expect:
      verdict: continue
      messages:
        - { verdict: replace, message: { params: { message: "the [redacted] word" } } }
        - { verdict: pass }
        - { verdict: drop, code: -32003 }
  - name: an error answer reaches the client unmarked
    request: { method: tools/call, params: { name: echo } }
    answer_error: { code: -32602, message: "bad arguments" }
    expect: { verdict: continue, error: { code: -32602, message: "bad arguments" } }
  - name: a wrong message verdict fails
    request: { method: tools/call, params: { name: echo } }
    messages: [{ method: notifications/progress, params: { progressToken: 1, progress: 1, message: "a secret" } }]
    expect: { verdict: continue, messages: [{ verdict: pass }] }
"#,
    )
    .unwrap();
    let (code, out) = policy_test(&guest("gatekeeper"), &cases);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 passed, 1 failed"), "{out}");
    assert!(out.contains("FAILED a wrong message verdict fails: messages[0]: expected Pass, got Replace"), "{out}");
}

/// `policy test` compiles as the gateway does and keeps the compiled component in the user's
/// cache, so the next run of the cases loads it instead of compiling again.
#[test]
fn the_compiled_component_is_kept_for_the_next_run() {
    let dir = TempDir::new();
    let cache = dir.0.join("xdg");
    let cases = dir.0.join("cases.yaml");
    std::fs::write(&cases, "cases:\n  - name: loads\n    request: { method: ping }\n    expect: { verdict: continue }\n").unwrap();
    let component = guest("noop");
    let run = || {
        let out = Command::new(binary("tollgate")).env("XDG_CACHE_HOME", &cache).args(["policy", "test", &component, "--cases"]).arg(&cases).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    };
    let kept = || -> Vec<String> {
        let names = std::fs::read_dir(cache.join("tollgate/compiled")).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect());
        let mut names: Vec<String> = names.unwrap_or_default();
        names.sort();
        names
    };
    run();
    let first = kept();
    assert!(!first.is_empty() && first.iter().all(|n| n.ends_with(".cwasm")), "compiled artifacts kept: {first:?}");
    run();
    assert_eq!(kept(), first, "the second run compiles nothing new");
}
