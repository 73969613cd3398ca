"""Checks the gateway against a server of protocol 2026-07-28, with the official Python SDK.

Usage: modern_client.py --url http://GATEWAY/NAME/mcp

Prints `ok NAME` or `FAIL NAME: reason` per check; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import sys
import traceback

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

MODERN = "2026-07-28"
failures = 0


def report(name: str, error: BaseException | None) -> None:
    global failures
    if error is None:
        print(f"ok {name}", flush=True)
    else:
        failures += 1
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        print(f"FAIL {name}: {reason}", flush=True)


async def check(name: str, fn) -> None:
    try:
        with anyio.fail_after(30):
            await fn()
        report(name, None)
    except BaseException as e:  # noqa: BLE001 - every failure is a failed check
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        traceback.print_exc(file=sys.stderr)
        report(name, e)


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    url = p.parse_args().url
    seen: list[httpx2.Request] = []

    async def on_request(r: httpx2.Request) -> None:
        seen.append(r)

    async def stateless_client() -> None:
        hc = httpx2.AsyncClient(event_hooks={"request": [on_request]}, timeout=30)
        progress: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        async with Client(streamable_http_client(url, http_client=hc), cache=None) as c:
            require(c.session.discover_result is not None, "the client fell back to initialize; expected server/discover to succeed")
            require(c.protocol_version == MODERN, f"negotiated {c.protocol_version}, expected {MODERN}")
            tools = await c.list_tools()
            require({"echo", "count"} <= {t.name for t in tools.tools}, f"tools: {[t.name for t in tools.tools]}")
            r = await c.call_tool("echo", {"text": "through the gateway"})
            require(r.content[0].text == "Echo: through the gateway", f"echo answered {r.content[0].text!r}")
            r = await c.call_tool("count", {"n": 3}, progress_callback=on_progress)
            require(r.content[0].text == "counted 3", f"count answered {r.content[0].text!r}")
            require(progress == [1, 2, 3], f"progress seen: {progress}")
        require(all("mcp-session-id" not in r.headers for r in seen), "a stateless client was given a session id")
        require(all(r.headers.get("mcp-method") for r in seen if r.method == "POST"), "requests carried no Mcp-Method")

    async def session_client() -> None:
        async with Client(streamable_http_client(url), mode="legacy", cache=None) as c:
            require(c.protocol_version != MODERN, f"a legacy-mode client negotiated {c.protocol_version}")
            r = await c.call_tool("echo", {"text": "in a session"})
            require(r.content[0].text == "Echo: in a session", f"echo answered {r.content[0].text!r}")

    def body(method: str, params: dict) -> dict:
        params = {**params, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                                      "io.modelcontextprotocol/clientCapabilities": {}}}
        return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}

    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}

    async def header_mismatch() -> None:
        async with httpx2.AsyncClient(timeout=10) as hc:
            r = await hc.post(url, json=body("tools/call", {"name": "echo", "arguments": {"text": "x"}}),
                              headers={**headers, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "count"})
            require(r.status_code == 400, f"status {r.status_code}")
            require(r.json()["error"]["code"] == -32020, f"body {r.text}")

    async def unsupported_version() -> None:
        async with httpx2.AsyncClient(timeout=10) as hc:
            b = body("tools/list", {})
            b["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01"
            r = await hc.post(url, json=b, headers={**headers, "mcp-protocol-version": "2099-01-01", "mcp-method": "tools/list"})
            require(r.status_code == 400, f"status {r.status_code}")
            err = r.json()["error"]
            require(err["code"] == -32022 and MODERN in err["data"]["supported"], f"body {r.text}")

    await check("modern-stateless-client", stateless_client)
    await check("modern-session-client", session_client)
    await check("modern-header-mismatch", header_mismatch)
    await check("modern-unsupported-version", unsupported_version)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
