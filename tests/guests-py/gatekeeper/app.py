"""The Python twin of tests/guests/gatekeeper's API-key check: requests need `x-api-key`
with the configured value, and are refused with 401 and `WWW-Authenticate` otherwise."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types
from wit_world.imports.exchange import Exchange

UNAUTHORIZED = -32001

# The binding's config, set by `init`. Module state, not instance state: the export class
# may be instantiated for each call.
CONFIG: dict = {}


class Policy(exports.Policy):
    def init(self, config: str) -> types.Hooks:
        cfg = json.loads(config)
        unknown = set(cfg) - {"api_key"}
        if unknown:
            raise Err(f"invalid config: unknown field `{sorted(unknown)[0]}`")
        key = cfg.get("api_key")
        if key is not None and (not isinstance(key, str) or key == ""):
            raise Err("api_key must not be empty")
        CONFIG["api_key"] = key
        return types.Hooks.REQUEST

    def on_request(self, ex: Exchange) -> types.Verdict:
        key = CONFIG.get("api_key")
        if key is not None and ex.header("x-api-key") != key:
            error = types.RpcError(UNAUTHORIZED, "Unauthorized: a valid x-api-key is required", None)
            return types.Verdict_Deny(types.Rejection(error, 401, [("www-authenticate", 'ApiKey realm="tollgate"')]))
        return types.Verdict_Continue(types.Mutation(None, [], [], [], []))

    def on_response(self, ex: Exchange) -> types.Verdict:
        return types.Verdict_Continue(types.Mutation(None, [], [], [], []))

    def on_message(self, ex: Exchange, message: str) -> types.MessageVerdict:
        return types.MessageVerdict_Pass()

    def visible(self, ex: Exchange, tool: str) -> bool:
        return True
