//! The Python template: the same blocklist as the Rust one, built with componentize-py by
//! `tollgate policy build`, and the same cases.

/// The helper library, `tollgate_policy`, copied into every Python project.
pub const HELPERS: &str = include_str!("../../../kits/python/tollgate_policy.py");

/// The policy: hides the tools its config names, from `tools/list` and `tools/call` alike.
pub const APP: &str = r#""""A Tollgate policy: the tools `config.blocked` names are neither listed nor callable.

Build it with `tollgate policy build .` (componentize-py), try it with
`tollgate policy test <dir>.wasm --cases cases.yaml`.
"""

from componentize_py_types import Err
from wit_world import exports

from tollgate_policy import Defaults, config, hooks, log

# The binding's config, set by `init`. Module state, not instance state: the export class
# may be instantiated for each call.
BLOCKED: set = set()


class Policy(Defaults, exports.Policy):
    def init(self, text: str):
        cfg = config(text, ["blocked"])
        blocked = cfg.get("blocked", [])
        if not isinstance(blocked, list) or any(not isinstance(t, str) or t == "" for t in blocked):
            raise Err("blocked: a list of tool names, none empty")
        BLOCKED.clear()
        BLOCKED.update(blocked)
        # Only the hooks implemented here: the gateway skips the others.
        return hooks(visibility=True)

    def visible(self, ex, tool: str) -> bool:
        blocked = tool in BLOCKED
        if blocked and ex.method() == "tools/call":
            log("info", f"refused a call of {tool}")
        return not blocked
"#;

pub fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA Tollgate policy in Python. Build it (componentize-py: `pip install componentize-py==0.25.1`) with\n\n```sh\ntollgate policy build .\n```\n\n`tollgate_policy.py` is the kit's helper library (verdicts, the exchange as JSON, state, secrets,\noutbound HTTP, logging), versioned with the contract. Try the policy offline against the cases\nin `cases.yaml`:\n\n```sh\ntollgate policy test {name}.wasm --cases cases.yaml\n```\n\nthen bind it to a server in the gateway's config:\n\n```yaml\npolicies:\n  - policy: ./{name}/{name}.wasm\n    config:\n      blocked: [delete_everything]\n```\n\n`wit/policy.wit` is the contract of the gateway that wrote this project; `tollgate policy build`\nbuilds against the contract of the `tollgate` that runs it.\n"
    )
}
