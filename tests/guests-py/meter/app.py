"""The meter policy in Python, with the kit's helper library: the twin of tests/guests/meter
(Rust) and tests/guests-js/meter (JavaScript), held to the same cases."""

import json

from componentize_py_types import Err
from wit_world import exports

from tollgate_policy import (POLICY_FAILED, SUBJECT, StateError, config, deny, drop_message, hooks,
                             outcome, pass_message, proceed, rate_limited, respond, secret, state,
                             unauthorized)

# Module state, set by `init`: the export class may be instantiated for each call.
CONFIG: dict = {}


def who(ex) -> str:
    return ex.attribute(SUBJECT) or ex.client_ip() or "anonymous"


class Policy(exports.Policy):
    def init(self, text: str):
        cfg = config(text, ["blocked", "limit", "api_key_secret"])
        limit = cfg.get("limit", 3)
        if not isinstance(limit, int) or limit <= 0:
            raise Err("limit: must be positive")
        CONFIG.update(blocked=set(cfg.get("blocked", [])), limit=limit, secret=cfg.get("api_key_secret"))
        return hooks(request=True, response=True, visibility=True, message=True)

    def on_request(self, ex):
        name = CONFIG["secret"]
        if name is not None:
            key = ex.header("x-api-key")
            if key is None or key != secret(name):
                return unauthorized("a valid x-api-key is required", 'ApiKey realm="tollgate"')
        if ex.method() != "tools/call":
            return proceed()
        caller = who(ex)
        key = f"calls:{caller}"
        try:
            if ex.target() == "meter_status":
                calls = state.get(key) or "0"
                return respond({"content": [{"type": "text", "text": f"calls: {calls}"}]})
            n = state.incr(key, 1, 60_000)
        except StateError as e:
            return deny(POLICY_FAILED, f"state unavailable: {e}", 503)
        if n > CONFIG["limit"]:
            return rate_limited("call limit reached", 60)
        return proceed(attributes=[("meter.calls", str(n))],
                       client_headers=[("x-calls-left", str(CONFIG["limit"] - n))],
                       set_headers=[("x-caller", caller)])

    def on_response(self, ex):
        result, error = outcome(ex)
        calls = ex.attribute("meter.calls")
        if error is not None or result is None or calls is None:
            return proceed()
        result["_meta"] = {"meter.calls": calls}
        return proceed(params=result)

    def on_message(self, ex, message: str):
        msg = json.loads(message)
        method = msg.get("method")
        if method == "sampling/createMessage":
            return drop_message(-32003, "sampling is not allowed")
        if method == "notifications/message" and msg.get("params", {}).get("level") == "debug":
            return drop_message()
        return pass_message()

    def visible(self, ex, tool: str) -> bool:
        return tool not in CONFIG["blocked"]
