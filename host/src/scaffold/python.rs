//! The Python kit (`kits/python`): the template, the same blocklist as the Rust one, built with
//! componentize-py by `tollgate policy build`, with the same cases; and the helper library.

/// The helper library, `tollgate_policy`, copied into every Python project.
pub const HELPERS: &str = include_str!("../../../kits/python/tollgate_policy.py");

/// The policy: hides the tools its config names, from `tools/list` and `tools/call` alike.
pub const APP: &str = include_str!("../../../kits/python/app.py");

pub fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA Tollgate policy in Python. Build it (componentize-py: `pip install componentize-py==0.25.1`) with\n\n```sh\ntollgate policy build .\n```\n\n`tollgate_policy.py` is the kit's helper library (verdicts, the exchange as JSON, state, secrets,\noutbound HTTP, logging), versioned with the contract. Try the policy offline against the cases\nin `cases.yaml`:\n\n```sh\ntollgate policy test {name}.wasm --cases cases.yaml\n```\n\nthen bind it to a server in the gateway's config:\n\n```yaml\npolicies:\n  - policy: ./{name}/{name}.wasm\n    config:\n      blocked: [delete_everything]\n```\n\n`wit/policy.wit` is the contract of the gateway that wrote this project; `tollgate policy build`\nbuilds against the contract of the `tollgate` that runs it.\n"
    )
}
