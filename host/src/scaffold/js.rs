//! The JavaScript kit (`kits/js`): the template, the same blocklist as the Rust and Python
//! ones, built with componentize-js by `tollgate policy build`, with the same cases; and the
//! helper library, `tollgate.js`.

/// The helper library, copied into every JavaScript project.
pub const HELPERS: &str = include_str!("../../../kits/js/tollgate.js");

/// The policy: hides the tools its config names, from `tools/list` and `tools/call` alike.
pub const POLICY: &str = include_str!("../../../kits/js/policy.js");

/// The kit's manifest: componentize-js pinned to the version the kit is tested with.
const MANIFEST: &str = include_str!("../../../kits/js/package.json");

/// The versions of componentize-js and what it needs, as the kit is tested with them.
const LOCK: &str = include_str!("../../../kits/js/package-lock.json");

/// The project's `package.json`: the kit's, under the project's name.
pub fn manifest(name: &str) -> String {
    renamed(MANIFEST, name)
}

/// The project's `package-lock.json`, so `npm install` gets the tested versions.
pub fn lock(name: &str) -> String {
    renamed(LOCK, name)
}

fn renamed(text: &str, name: &str) -> String {
    text.replace("\"name\": \"tollgate-policy-kit\"", &format!("\"name\": \"{name}\""))
}

pub fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA Tollgate policy in JavaScript. Install its build tool (componentize-js, pinned in `package.json`) and build it:\n\n```sh\nnpm install\ntollgate policy build .\n```\n\n`tollgate.js` is the kit's helper library (verdicts, the exchange as JSON, state, secrets,\noutbound HTTP, logging), versioned with the contract. Try the policy offline against the cases\nin `cases.yaml`:\n\n```sh\ntollgate policy test {name}.wasm --cases cases.yaml\n```\n\nthen bind it to a server in the gateway's config:\n\n```yaml\npolicies:\n  - policy: ./{name}/{name}.wasm\n    config:\n      blocked: [delete_everything]\n```\n\n`wit/policy.wit` is the contract of the gateway that wrote this project; `tollgate policy build`\nbuilds against the contract of the `tollgate` that runs it.\n"
    )
}
