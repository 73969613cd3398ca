"""Helpers for Tollgate policies in Python, over the bindings componentize-py generates from the
policy contract (tollgate:policy@0.2.0; this module is versioned with it).

The bindings are complete but raw: a verdict is ``types.Verdict_Continue(types.Mutation(None,
[], [], [], []))``. These helpers build the common ones, read the exchange as JSON, and turn
the host's results into values and exceptions::

    from tollgate_policy import Defaults, forbidden, proceed

    class Policy(Defaults, exports.Policy):
        def on_request(self, ex):
            return forbidden("not today") if ex.target() == "rm" else proceed()
"""

import json
from typing import Any, Iterable, Optional, Tuple

from componentize_py_types import Err
from wit_world.imports import clock, crypto, log as _log, outbound, secrets, state as _state, types
from wit_world.imports.exchange import Exchange

__version__ = "0.2.0"

# The contract's error codes and attribute names (vocabulary/ in the gateway's sources).
UNAUTHORIZED = -32001
FORBIDDEN = -32003
POLICY_FAILED = -32007
RATE_LIMITED = -32009
QUOTA_EXCEEDED = -32010
INVALID_PARAMS = -32602
SUBJECT = "auth.sub"
ISSUER = "auth.iss"
SCOPES = "auth.scopes"
SUBSCRIPTION = "subscription"
PRODUCT = "product"

Headers = Iterable[Tuple[str, str]]


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


# ---- verdicts ---------------------------------------------------------------------------

def proceed(params: Any = None, set_headers: Headers = (), remove_headers: Iterable[str] = (),
            attributes: Headers = (), client_headers: Headers = ()) -> types.Verdict:
    """Go on; with new params (request phase) or result (response phase), backend headers to
    set or leave out, attributes for later policies, and headers for the client's response."""
    mutation = types.Mutation(None if params is None else _json(params), list(set_headers),
                              list(remove_headers), list(attributes), list(client_headers))
    return types.Verdict_Continue(mutation)


def deny(code: int, message: str, status: Optional[int] = None, headers: Headers = (),
         data: Any = None) -> types.Verdict:
    """Stop and answer with this JSON-RPC error, HTTP status and response headers."""
    error = types.RpcError(code, message, None if data is None else _json(data))
    return types.Verdict_Deny(types.Rejection(error, status, list(headers)))


def unauthorized(message: str, challenge: Optional[str] = None) -> types.Verdict:
    """401; `challenge` is the `WWW-Authenticate` value that tells the client how to sign in."""
    return deny(UNAUTHORIZED, message, 401, [("www-authenticate", challenge)] if challenge else [])


def forbidden(message: str) -> types.Verdict:
    """403: the caller is known and may not do this."""
    return deny(FORBIDDEN, message, 403)


def rate_limited(message: str, retry_after_s: int) -> types.Verdict:
    """429 with `Retry-After` in seconds."""
    return deny(RATE_LIMITED, message, 429, [("retry-after", str(retry_after_s))])


def invalid_params(message: str) -> types.Verdict:
    """-32602: the params are not acceptable."""
    return deny(INVALID_PARAMS, message)


def respond(result: Any) -> types.Verdict:
    """Answer with this result without calling the backend."""
    return types.Verdict_Respond(_json(result))


def pass_message() -> types.MessageVerdict:
    """Deliver the backend's message unchanged."""
    return types.MessageVerdict_Pass()


def replace_message(message: Any) -> types.MessageVerdict:
    """Deliver this message instead; it keeps the original's kind, method and id."""
    return types.MessageVerdict_Replace(_json(message))


def drop_message(code: Optional[int] = None, message: str = "") -> types.MessageVerdict:
    """Do not deliver it; a backend request is answered with this error (none: a generic one)."""
    return types.MessageVerdict_Drop(None if code is None else types.RpcError(code, message, None))


def hooks(request: bool = False, response: bool = False, visibility: bool = False,
          message: bool = False) -> types.Hooks:
    """The hooks `init` asks for; the gateway skips the others and their instances."""
    chosen = types.Hooks(0)
    for wanted, flag in ((request, types.Hooks.REQUEST), (response, types.Hooks.RESPONSE),
                         (visibility, types.Hooks.VISIBILITY), (message, types.Hooks.MESSAGE)):
        if wanted:
            chosen |= flag
    return chosen


class Defaults:
    """The hooks a policy does not implement: go on, pass, visible. Put it before
    `exports.Policy` in the bases so only the hooks that matter need writing."""

    def on_request(self, ex: Exchange) -> types.Verdict:
        return proceed()

    def on_response(self, ex: Exchange) -> types.Verdict:
        return proceed()

    def on_message(self, ex: Exchange, message: str) -> types.MessageVerdict:
        return pass_message()

    def visible(self, ex: Exchange, tool: str) -> bool:
        return True


# ---- the exchange -----------------------------------------------------------------------

def config(text: str, fields: Iterable[str]) -> dict:
    """The binding's config as a dict, refusing fields other than `fields` so a typo fails
    `tollgate validate` (raise the `Err` from `init`)."""
    cfg = json.loads(text) if text else {}
    if not isinstance(cfg, dict):
        raise Err("config: expected a mapping")
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        raise Err(f"invalid config: unknown field `{unknown[0]}`")
    return cfg


def params(ex: Exchange) -> Any:
    """The request's params as JSON values (None when it has none)."""
    text = ex.params()
    return None if text is None else json.loads(text)


def outcome(ex: Exchange) -> Tuple[Any, Optional[types.RpcError]]:
    """Response phase: (result, None) for an answer, (None, error) for an error."""
    got = ex.outcome()
    if got is None:
        return None, None
    if isinstance(got, Err):
        return None, got.value
    return json.loads(got.value), None


# ---- host capabilities ------------------------------------------------------------------

class StateError(Exception):
    """The binding's state store is unavailable; refuse (fail closed) or go on, as the policy
    decides. `deny(POLICY_FAILED, ..., 503)` is what the standard policies answer."""


def _state_call(fn, *args):
    try:
        return fn(*args)
    except Err as e:
        raise StateError(str(e.value)) from None


class state:
    """The binding's own keys, shared by its instances, across requests and reloads."""

    @staticmethod
    def get(key: str) -> Optional[str]:
        value = _state_call(_state.get, key)
        return None if value is None else bytes(value).decode()

    @staticmethod
    def set(key: str, value: str, ttl_ms: Optional[int] = None) -> None:
        _state_call(_state.set, key, value.encode(), ttl_ms)

    @staticmethod
    def incr(key: str, delta: int = 1, ttl_ms: Optional[int] = None) -> int:
        """Adds `delta` and returns the new value; the TTL starts when the key is created."""
        return _state_call(_state.incr, key, delta, ttl_ms)

    @staticmethod
    def cas(key: str, expected: Optional[str], new: str, ttl_ms: Optional[int] = None) -> bool:
        """Writes `new` only if the value is `expected` (None: only if absent)."""
        return _state_call(_state.cas, key, None if expected is None else expected.encode(),
                           new.encode(), ttl_ms)

    @staticmethod
    def delete(key: str) -> None:
        _state_call(_state.delete, key)


def secret(name: str) -> Optional[str]:
    """A secret granted to the binding by name."""
    return secrets.get(name)


class FetchError(Exception):
    """An outbound request that was denied (host not allowed), timed out or failed."""


def fetch(url: str, method: str = "GET", headers: Headers = (), body: Optional[bytes] = None,
          timeout_ms: Optional[int] = None) -> outbound.Response:
    """HTTP to a host the binding's `allow_hosts` lists; the whole response."""
    try:
        return outbound.fetch(outbound.Request(method, url, list(headers), body, timeout_ms))
    except Err as e:
        raise FetchError(repr(e.value)) from None


def log(level: str, message: str) -> None:
    """A line in the gateway's log under the policy's name: trace, debug, info, warn, error."""
    _log.log(getattr(_log.Level, level.upper()), message)


def now_ms() -> int:
    """Wall clock, milliseconds since the Unix epoch."""
    return clock.now_ms()


def verify_signature(alg: str, key_jwk: str, message: bytes, signature: str) -> bool:
    """A JWS signature check done natively by the gateway."""
    try:
        return crypto.verify_signature(alg, key_jwk, message, signature)
    except Err as e:
        raise ValueError(str(e.value)) from None
