#!/usr/bin/env python3
"""Interop checks with the Python MCP SDK (mcp 2.x) client against one MCP endpoint
(server-everything, directly or through Tollgate).

Usage:
    python py_client.py --transport streamable|sse --url URL [--expect-env KEY=VALUE]
                        [--mode auto|legacy]

Prints one line per check: ``ok NAME`` or ``FAIL NAME: reason``; lines starting
with ``#`` are informational. Exits non-zero when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import base64

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client, ClientRequestContext
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

CHECK_TIMEOUT = float(os.environ.get("INTEROP_CHECK_TIMEOUT_MS", "20000")) / 1000.0


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    async def run(self, name: str, fn: Callable[[], Awaitable[None]]) -> bool:
        try:
            with anyio.fail_after(CHECK_TIMEOUT + 2):
                await fn()
        except Exception as e:  # noqa: BLE001 - report every failure as a line
            self.failed += 1
            print(f"FAIL {name}: {err_text(e)}", flush=True)
            if os.environ.get("INTEROP_DEBUG"):
                traceback.print_exc()
            return False
        self.passed += 1
        print(f"ok {name}", flush=True)
        return True


def one_line(s: str) -> str:
    return " ".join(str(s).split())[:400]


def err_text(e: BaseException) -> str:
    # Unwrap exception groups from anyio task groups to the first real cause.
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    if isinstance(e, TimeoutError):
        return f"timed out after {CHECK_TIMEOUT + 2:.0f} s"
    return one_line(f"{type(e).__name__}: {e}")


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


class CheckFailed(Exception):
    pass


def require(cond: Any, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--transport", choices=["streamable", "sse"], default="streamable")
    p.add_argument("--url", required=True)
    p.add_argument("--expect-env", default=None, help="KEY=VALUE expected in the backend's environment")
    p.add_argument("--mode", default="auto", help="Client connect mode: auto (default) or legacy")
    return p.parse_args()


async def main() -> int:
    args = parse_args()
    checks = Checks()
    token = uuid.uuid4().hex[:8]
    sampling_answer = f"tollgate-sampling-answer-{token}"
    elicit_name = f"tollgate-elicit-{token}"
    root_uri = f"file:///tmp/tollgate-root-{token}"
    counters = {"sampling": 0, "elicit": 0, "roots": 0}

    async def on_sampling(
        _ctx: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        counters["sampling"] += 1
        prompt = " ".join(
            m.content.text for m in params.messages if isinstance(m.content, types.TextContent)
        )
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"{sampling_answer} (prompt was: {prompt})"),
            model="tollgate-interop-fake-model",
            stop_reason="endTurn",
        )

    async def on_elicit(_ctx: ClientRequestContext, _params: types.ElicitRequestParams) -> types.ElicitResult:
        counters["elicit"] += 1
        return types.ElicitResult(action="accept", content={"name": elicit_name, "check": True})

    async def on_list_roots(_ctx: ClientRequestContext) -> types.ListRootsResult:
        counters["roots"] += 1
        return types.ListRootsResult(roots=[types.Root(uri=root_uri, name=f"tollgate-root-{token}")])

    log_messages: list[Any] = []
    resource_updates: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        log_messages.append(params)

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            resource_updates.append(str(message.params.uri))

    # Observe the HTTP exchange to check session handling at the end.
    http_log: dict[str, Any] = {"session_id": None, "delete_status": None, "protocol_header": None}

    async def on_response(response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid:
            http_log["session_id"] = sid
        if response.request.method == "DELETE":
            http_log["delete_status"] = response.status_code

    async def on_request(request: httpx2.Request) -> None:
        pv = request.headers.get("mcp-protocol-version")
        if pv:
            http_log["protocol_header"] = pv

    if args.transport == "streamable":
        http_client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(30.0, read=300.0),
            event_hooks={"request": [on_request], "response": [on_response]},
        )
        transport = streamable_http_client(args.url, http_client=http_client, terminate_on_close=True)
    else:
        http_client = None
        transport = sse_client(args.url, timeout=10.0)

    client = Client(
        transport,
        mode=args.mode,
        sampling_callback=on_sampling,
        elicitation_callback=on_elicit,
        list_roots_callback=on_list_roots,
        logging_callback=on_log,
        message_handler=on_message,
        client_info=types.Implementation(name="tollgate-interop-py", version="0.1.0"),
        read_timeout_seconds=CHECK_TIMEOUT,
        cache=None,
    )

    entered = False
    closed_ok = False
    try:
        # One scope around the whole session: the client's task groups must be
        # entered and exited inside the same cancel scope. Each check inside
        # has its own bound as well.
        with anyio.fail_after(CHECK_TIMEOUT * 15):
            async with client:
                entered = True
                info = client.server_info
                print(f"# server {info.name if info else '?'} {info.version if info else ''}", flush=True)
                print(f"# protocol {client.protocol_version}", flush=True)
                era = "discover" if client.session.discover_result is not None else "initialize"
                print(f"# handshake {era}", flush=True)

                async def connected() -> None:
                    require(client.server_capabilities.tools is not None, "server capabilities lack tools")

                if await checks.run("connect", connected):
                    await run_checks(
                        client, checks, args, token, sampling_answer, elicit_name, root_uri, counters,
                        log_messages, resource_updates,
                    )
            closed_ok = True
    except Exception as e:  # noqa: BLE001 - report as a failed check line
        if not entered:
            checks.failed += 1
            print(f"FAIL connect: {err_text(e)}", flush=True)
        else:
            checks.failed += 1
            print(f"FAIL session: {err_text(e)}", flush=True)
    if entered and not closed_ok:
        print("# the session did not close cleanly", flush=True)

    if args.transport == "streamable" and entered:

        async def terminate() -> None:
            sid = http_log["session_id"]
            if sid is None and client_protocol_is_modern(http_log):
                # Sessionless (2026-07-28) connections have nothing to terminate.
                print("# no Mcp-Session-Id issued (sessionless protocol); nothing to terminate", flush=True)
                return
            require(sid, "no Mcp-Session-Id was issued")
            require(
                http_log["delete_status"] in (200, 202, 204),
                f"DELETE of the session answered {http_log['delete_status']}, wanted 2xx",
            )
            headers = {
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-session-id": sid,
            }
            if http_log["protocol_header"]:
                headers["mcp-protocol-version"] = http_log["protocol_header"]
            async with httpx2.AsyncClient(timeout=5.0) as raw:
                r = await raw.post(
                    args.url,
                    headers=headers,
                    content=json.dumps({"jsonrpc": "2.0", "id": 99, "method": "tools/list", "params": {}}),
                )
            require(
                r.status_code in (404, 400),
                f"request on the terminated session got HTTP {r.status_code}, wanted 404 (or 400)",
            )

        await checks.run("terminate-session", terminate)

    if http_client is not None:
        await http_client.aclose()

    print(f"# py client totals: ok={checks.passed} fail={checks.failed}", flush=True)
    return 1 if checks.failed else 0


def client_protocol_is_modern(http_log: dict[str, Any]) -> bool:
    pv = http_log.get("protocol_header") or ""
    return pv >= "2026"


async def run_checks(
    client: Client,
    checks: Checks,
    args: argparse.Namespace,
    token: str,
    sampling_answer: str,
    elicit_name: str,
    root_uri: str,
    counters: dict[str, int],
    log_messages: list[Any],
    resource_updates: list[str],
) -> None:
    wanted = [
        "echo",
        "trigger-long-running-operation",
        "trigger-sampling-request",
        "trigger-elicitation-request",
        "get-roots-list",
    ]

    async def list_tools() -> None:
        # server-everything registers capability-dependent tools right after
        # initialization; give them a bounded moment to appear.
        deadline = anyio.current_time() + 5
        while True:
            res = await client.list_tools()
            names = [t.name for t in res.tools]
            missing = [w for w in wanted if w not in names]
            if not missing:
                return
            if anyio.current_time() > deadline:
                raise CheckFailed(f"missing tools: {', '.join(missing)} (got {len(names)}: {', '.join(names)})")
            await anyio.sleep(0.2)

    await checks.run("list-tools", list_tools)

    async def call_echo() -> None:
        msg = f"hello from python {token} ✓"
        res = await client.call_tool("echo", {"message": msg})
        require(not res.is_error, f"tool returned is_error: {text_of(res)}")
        require(text_of(res) == f"Echo: {msg}", f"unexpected echo text: {text_of(res)!r}")

    await checks.run("call-echo", call_echo)

    async def call_echo_large() -> None:
        # 256 KiB of multi-byte text: crosses any single read or frame boundary.
        msg = f"{token}:" + "ü€😀abc" * (256 * 1024 // 16)
        res = await client.call_tool("echo", {"message": msg})
        require(not res.is_error, f"tool returned is_error: {text_of(res)[:200]}")
        text = text_of(res)
        require(text == f"Echo: {msg}", f"echo of {len(msg)} chars came back as {len(text)} chars, not equal")

    await checks.run("call-echo-large", call_echo_large)

    async def cancel() -> None:
        # Cancel a long call: the SDK sends notifications/cancelled; the call
        # must end promptly and the session must keep working.
        started = anyio.current_time()
        with anyio.move_on_after(0.3) as scope:
            await client.call_tool("trigger-long-running-operation", {"duration": 10, "steps": 10})
        require(scope.cancelled_caught, "the long call finished before it was cancelled")
        res = await client.call_tool("echo", {"message": "after-cancel"})
        require(text_of(res) == "Echo: after-cancel", f"echo after cancel: {text_of(res)}")
        require(anyio.current_time() - started < 5, "the session was slow to recover after the cancel")

    await checks.run("cancel", cancel)

    async def unknown_tool() -> None:
        try:
            res = await client.call_tool(f"no-such-tool-{token}", {})
        except Exception:  # noqa: BLE001 - a JSON-RPC error is a correct answer
            return
        require(res.is_error, f"expected an error for an unknown tool, got {res!r}"[:200])

    await checks.run("call-unknown-tool-errors", unknown_tool)

    resources: list[types.Resource] = []

    async def list_resources() -> None:
        res = await client.list_resources()
        resources.extend(res.resources)
        require(resources, "no resources listed")

    await checks.run("list-resources", list_resources)

    async def read_resource() -> None:
        require(resources, "no resource to read")
        target = next((r for r in resources if str(r.uri).endswith("instructions.md")), resources[0])
        res = await client.read_resource(str(target.uri))
        require(res.contents, "empty contents")
        c = res.contents[0]
        require(str(c.uri) == str(target.uri), f"content uri {c.uri} != {target.uri}")
        body = getattr(c, "text", None) or getattr(c, "blob", None)
        require(body, "content has no text or blob")

    await checks.run("read-resource", read_resource)

    async def list_prompts() -> None:
        res = await client.list_prompts()
        names = [p.name for p in res.prompts]
        require("args-prompt" in names, f"args-prompt missing (got {', '.join(names)})")

    await checks.run("list-prompts", list_prompts)

    async def get_prompt() -> None:
        city = f"Gotham-{token}"
        res = await client.get_prompt("args-prompt", {"city": city, "state": "NJ"})
        text = " ".join(
            m.content.text for m in res.messages if isinstance(m.content, types.TextContent)
        )
        require(f"{city}, NJ" in text, f"prompt text lacks the arguments: {text!r}")

    await checks.run("get-prompt", get_prompt)

    async def ping() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await client.session.send_ping()

    await checks.run("ping", ping)

    async def structured_content() -> None:
        res = await client.call_tool("get-structured-content", {"location": "Chicago"})
        require(not res.is_error, f"tool returned is_error: {text_of(res)}")
        want = {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}
        require(res.structured_content == want, f"structured_content {res.structured_content!r}")

    await checks.run("structured-content", structured_content)

    async def image_content() -> None:
        res = await client.call_tool("get-tiny-image", {})
        require(not res.is_error, f"tool returned is_error: {text_of(res)}")
        imgs = [c for c in res.content if isinstance(c, types.ImageContent)]
        require(imgs, f"no image content in {[c.type for c in res.content]}")
        require(imgs[0].mime_type == "image/png", f"mime_type {imgs[0].mime_type}")
        require(base64.b64decode(imgs[0].data)[:8] == b"\x89PNG\r\n\x1a\n", "data is not a PNG")

    await checks.run("image-content", image_content)

    async def resource_template() -> None:
        res = await client.list_resource_templates()
        templates = [t.uri_template for t in res.resource_templates]
        require(
            any(t.startswith("demo://resource/dynamic/text/") for t in templates), f"templates {templates}"
        )
        uri = "demo://resource/dynamic/text/7"
        read = await client.read_resource(uri)
        require(read.contents and str(read.contents[0].uri) == uri, f"read {read!r}"[:200])

    await checks.run("resource-template", resource_template)

    async def completion() -> None:
        res = await client.complete(
            types.PromptReference(type="ref/prompt", name="completable-prompt"),
            {"name": "department", "value": "Eng"},
        )
        require(res.completion.values == ["Engineering"], f"completion values {res.completion.values}")

    await checks.run("completion", completion)

    async def wait_for(pred: Callable[[], bool], seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            while not pred():
                await anyio.sleep(0.1)
        return pred()

    async def logging_check() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await client.session.set_logging_level("debug")
        before = len(log_messages)
        res = await client.call_tool("toggle-simulated-logging", {})
        try:
            require(not res.is_error, f"tool returned is_error: {text_of(res)}")
            arrived = await wait_for(lambda: len(log_messages) > before, 4)
            require(arrived, "no notifications/message arrived within 4 s")
        finally:
            await client.call_tool("toggle-simulated-logging", {})

    await checks.run("logging", logging_check)

    async def resource_subscription() -> None:
        require(resources, "no resource to subscribe to")
        uri = str(resources[0].uri)
        await client.subscribe_resource(uri)
        before = len(resource_updates)
        res = await client.call_tool("toggle-subscriber-updates", {})
        try:
            require(not res.is_error, f"tool returned is_error: {text_of(res)}")
            arrived = await wait_for(lambda: uri in resource_updates[before:], 4)
            require(
                arrived,
                f"no notifications/resources/updated for {uri} within 4 s (got {resource_updates[before:]})",
            )
        finally:
            await client.call_tool("toggle-subscriber-updates", {})
            await client.unsubscribe_resource(uri)

    await checks.run("resource-subscription", resource_subscription)

    async def progress() -> None:
        seen: list[tuple[float, float | None]] = []

        async def on_progress(p: float, total: float | None, _message: str | None) -> None:
            seen.append((p, total))

        res = await client.call_tool(
            "trigger-long-running-operation",
            {"duration": 1.5, "steps": 3},
            progress_callback=on_progress,
        )
        require(not res.is_error, f"tool returned is_error: {text_of(res)}")
        require("Long running operation completed" in text_of(res), f"unexpected result: {text_of(res)}")
        await anyio.sleep(0.05)
        require(len(seen) == 3, f"expected 3 progress notifications, got {len(seen)}: {seen}")
        require([p for p, _ in seen] == [1, 2, 3], f"progress values {seen}")
        require(all(t == 3 for _, t in seen), f"progress totals {seen}")

    await checks.run("progress", progress)

    async def sampling() -> None:
        before = counters["sampling"]
        res = await client.call_tool("trigger-sampling-request", {"prompt": f"question {token}", "maxTokens": 20})
        require(not res.is_error, f"tool returned is_error: {text_of(res)}")
        require(counters["sampling"] == before + 1, f"sampling handler ran {counters['sampling'] - before} times")
        text = text_of(res)
        require(sampling_answer in text, f"tool result lacks the sampling answer: {one_line(text)[:200]}")
        require(f"question {token}" in text, "the prompt did not reach the sampling handler intact")

    await checks.run("sampling", sampling)

    async def elicitation() -> None:
        before = counters["elicit"]
        res = await client.call_tool("trigger-elicitation-request", {})
        require(not res.is_error, f"tool returned is_error: {text_of(res)}")
        require(counters["elicit"] == before + 1, f"elicitation handler ran {counters['elicit'] - before} times")
        text = text_of(res)
        require(f"- Name: {elicit_name}" in text, f"tool result lacks the elicited name: {one_line(text)[:200]}")

    await checks.run("elicitation", elicitation)

    async def roots() -> None:
        res = await client.call_tool("get-roots-list", {})
        require(not res.is_error, f"tool returned is_error: {text_of(res)}")
        text = text_of(res)
        require(root_uri in text, f"tool result lacks the client's root: {one_line(text)[:200]}")

    await checks.run("roots", roots)

    if args.expect_env:
        key, _, value = args.expect_env.partition("=")

        async def backend_env() -> None:
            res = await client.call_tool("get-env", {})
            env = json.loads(text_of(res))
            require(env.get(key) == value, f"backend env {key}={env.get(key)!r}, wanted {value!r}")

        await checks.run("backend-env", backend_env)


if __name__ == "__main__":
    try:
        rc = anyio.run(main)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        print(f"FAIL client-error: {err_text(e)}", flush=True)
        rc = 2
    sys.exit(rc)
