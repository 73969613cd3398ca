#!/usr/bin/env node
// Interop checks with the TypeScript MCP SDK client against one MCP endpoint
// (server-everything, directly or through Tollgate).
//
// Usage:
//   node ts_client.mjs --transport streamable|sse --url URL [--expect-env KEY=VALUE]
//
// Prints one line per check: `ok NAME` or `FAIL NAME: reason`; lines starting
// with `#` are informational. Exits non-zero when any check failed.

import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

function parseArgs(argv) {
  const out = { transport: "streamable", url: null, expectEnv: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === "--transport") out.transport = next();
    else if (a === "--url") out.url = next();
    else if (a === "--expect-env") out.expectEnv = next();
    else throw new Error(`unknown argument: ${a}`);
  }
  if (!out.url) throw new Error("--url is required");
  if (!["streamable", "sse"].includes(out.transport)) {
    throw new Error(`--transport must be streamable or sse, got ${out.transport}`);
  }
  return out;
}

const CHECK_TIMEOUT_MS = Number(process.env.INTEROP_CHECK_TIMEOUT_MS || 20000);
const REQUEST_OPTS = { timeout: CHECK_TIMEOUT_MS };

let failures = 0;
let passes = 0;

function oneLine(s) {
  return String(s).replace(/\s+/g, " ").trim().slice(0, 400);
}

function errText(e) {
  if (e instanceof Error) return oneLine(`${e.constructor.name}: ${e.message}`);
  return oneLine(e);
}

async function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms (${what})`)), ms);
  });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

async function check(name, fn) {
  try {
    await withTimeout(Promise.resolve().then(fn), CHECK_TIMEOUT_MS + 2000, name);
    passes++;
    console.log(`ok ${name}`);
    return true;
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${errText(e)}`);
    return false;
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function textOf(result) {
  return (result?.content ?? [])
    .filter((c) => c && c.type === "text")
    .map((c) => c.text)
    .join("\n");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const url = new URL(args.url);
  const token = randomUUID().slice(0, 8);
  const samplingAnswer = `tollgate-sampling-answer-${token}`;
  const elicitName = `tollgate-elicit-${token}`;
  const rootUri = `file:///tmp/tollgate-root-${token}`;

  const client = new Client(
    { name: "tollgate-interop-ts", version: "0.1.0" },
    {
      capabilities: {
        sampling: {},
        elicitation: { form: {} },
        roots: { listChanged: true },
      },
    },
  );

  let samplingSeen = 0;
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    samplingSeen++;
    const prompt = req.params.messages
      .map((m) => (m.content && m.content.type === "text" ? m.content.text : ""))
      .join(" ");
    return {
      role: "assistant",
      model: "tollgate-interop-fake-model",
      stopReason: "endTurn",
      content: { type: "text", text: `${samplingAnswer} (prompt was: ${prompt})` },
    };
  });

  let elicitSeen = 0;
  client.setRequestHandler(ElicitRequestSchema, async () => {
    elicitSeen++;
    return { action: "accept", content: { name: elicitName, check: true } };
  });

  client.setRequestHandler(ListRootsRequestSchema, async () => ({
    roots: [{ uri: rootUri, name: `tollgate-root-${token}` }],
  }));

  // The TS SDK dispatches notifications one microtask later than responses, so
  // a progress notification that shares a read with the final result reaches
  // the client after the request has completed and is reported via onerror as
  // "unknown token". It did arrive on the wire in order; count it as late.
  const lateProgress = [];
  client.onerror = (e) => {
    const m = /Received a progress notification for an unknown token: (.*)$/s.exec(e?.message ?? "");
    if (m) {
      try {
        lateProgress.push(JSON.parse(m[1]).params);
      } catch {
        /* ignore */
      }
    }
  };

  const logMessages = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
    logMessages.push(n.params);
  });
  const resourceUpdates = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => {
    resourceUpdates.push(n.params.uri);
  });

  let toolsChanged = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    toolsChanged++;
  });

  const transport =
    args.transport === "sse"
      ? new SSEClientTransport(url)
      : new StreamableHTTPClientTransport(url);

  const connected = await check("connect", async () => {
    await client.connect(transport, REQUEST_OPTS);
    const info = client.getServerVersion();
    assert(info && info.name, "no serverInfo in initialize result");
    const caps = client.getServerCapabilities();
    assert(caps && caps.tools, "server capabilities lack tools");
    console.log(`# server ${info.name} ${info.version ?? ""}`);
    if (transport.protocolVersion) console.log(`# protocol ${transport.protocolVersion}`);
    if (transport.sessionId) console.log(`# session ${transport.sessionId}`);
  });
  if (!connected) {
    await client.close().catch(() => {});
    return finish();
  }

  // server-everything registers its capability-dependent tools (sampling,
  // elicitation, roots) right after `notifications/initialized` and announces
  // them with tools/list_changed; give them a bounded moment to appear.
  let tools = [];
  await check("list-tools", async () => {
    const wanted = [
      "echo",
      "trigger-long-running-operation",
      "trigger-sampling-request",
      "trigger-elicitation-request",
      "get-roots-list",
    ];
    const deadline = Date.now() + 5000;
    for (;;) {
      const res = await client.listTools(undefined, REQUEST_OPTS);
      tools = res.tools.map((t) => t.name);
      const missing = wanted.filter((w) => !tools.includes(w));
      if (missing.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`missing tools: ${missing.join(", ")} (got ${tools.length}: ${tools.join(", ")})`);
      }
      await sleep(200);
    }
  });

  await check("call-echo", async () => {
    const msg = `hello from ts ${token} ✓`;
    const res = await client.callTool({ name: "echo", arguments: { message: msg } }, undefined, REQUEST_OPTS);
    assert(!res.isError, `tool returned isError: ${textOf(res)}`);
    const text = textOf(res);
    assert(text === `Echo: ${msg}`, `unexpected echo text: ${JSON.stringify(text)}`);
  });

  await check("call-echo-large", async () => {
    // 256 KiB of multi-byte text: crosses any single read or frame boundary.
    const msg = `${token}:` + "ü€😀abc".repeat(256 * 1024 / 16);
    const res = await client.callTool({ name: "echo", arguments: { message: msg } }, undefined, REQUEST_OPTS);
    assert(!res.isError, `tool returned isError: ${textOf(res).slice(0, 200)}`);
    const text = textOf(res);
    assert(text === `Echo: ${msg}`, `echo of ${msg.length} chars came back as ${text.length} chars, not equal`);
  });

  await check("cancel", async () => {
    // Abort a long call: the SDK sends notifications/cancelled; the call must
    // end promptly and the session must keep working.
    const ac = new AbortController();
    const started = Date.now();
    const p = client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 10, steps: 10 } },
      undefined,
      { ...REQUEST_OPTS, signal: ac.signal },
    );
    setTimeout(() => ac.abort("interop cancel"), 300);
    let rejected = false;
    try {
      await p;
    } catch {
      rejected = true;
    }
    assert(rejected, "the aborted call resolved instead of rejecting");
    assert(Date.now() - started < 5000, `the aborted call took ${Date.now() - started} ms to end`);
    const res = await client.callTool({ name: "echo", arguments: { message: "after-cancel" } }, undefined, REQUEST_OPTS);
    assert(textOf(res) === "Echo: after-cancel", `echo after cancel: ${textOf(res)}`);
  });

  await check("call-unknown-tool-errors", async () => {
    let res;
    try {
      res = await client.callTool({ name: `no-such-tool-${token}`, arguments: {} }, undefined, REQUEST_OPTS);
    } catch (e) {
      return; // a JSON-RPC error is a correct answer
    }
    assert(res.isError === true, `expected an error for an unknown tool, got ${JSON.stringify(res).slice(0, 200)}`);
  });

  let resources = [];
  await check("list-resources", async () => {
    const res = await client.listResources(undefined, REQUEST_OPTS);
    resources = res.resources;
    assert(resources.length > 0, "no resources listed");
  });

  await check("read-resource", async () => {
    const target =
      resources.find((r) => r.uri.endsWith("instructions.md")) ?? resources[0];
    assert(target, "no resource to read");
    const res = await client.readResource({ uri: target.uri }, REQUEST_OPTS);
    assert(res.contents.length > 0, "empty contents");
    const c = res.contents[0];
    assert(c.uri === target.uri, `content uri ${c.uri} != ${target.uri}`);
    assert((c.text && c.text.length > 0) || (c.blob && c.blob.length > 0), "content has no text or blob");
  });

  await check("list-prompts", async () => {
    const res = await client.listPrompts(undefined, REQUEST_OPTS);
    const names = res.prompts.map((p) => p.name);
    assert(names.includes("args-prompt"), `args-prompt missing (got ${names.join(", ")})`);
  });

  await check("get-prompt", async () => {
    const city = `Gotham-${token}`;
    const res = await client.getPrompt({ name: "args-prompt", arguments: { city, state: "NJ" } }, REQUEST_OPTS);
    const text = res.messages.map((m) => m.content?.text ?? "").join(" ");
    assert(text.includes(`${city}, NJ`), `prompt text lacks the arguments: ${JSON.stringify(text)}`);
  });

  await check("ping", async () => {
    const res = await client.ping(REQUEST_OPTS);
    assert(res && typeof res === "object", `unexpected ping result ${JSON.stringify(res)}`);
  });

  await check("structured-content", async () => {
    const res = await client.callTool(
      { name: "get-structured-content", arguments: { location: "Chicago" } },
      undefined,
      REQUEST_OPTS,
    );
    assert(!res.isError, `tool returned isError: ${textOf(res)}`);
    const want = { temperature: 36, conditions: "Light rain / drizzle", humidity: 82 };
    // JSON objects are unordered: compare by value, not by serialisation.
    assert(isDeepStrictEqual(res.structuredContent, want), `structuredContent ${JSON.stringify(res.structuredContent)}`);
  });

  await check("image-content", async () => {
    const res = await client.callTool({ name: "get-tiny-image", arguments: {} }, undefined, REQUEST_OPTS);
    assert(!res.isError, `tool returned isError: ${textOf(res)}`);
    const img = (res.content ?? []).find((c) => c.type === "image");
    assert(img, `no image content in ${JSON.stringify(res.content?.map((c) => c.type))}`);
    assert(img.mimeType === "image/png", `mimeType ${img.mimeType}`);
    const bytes = Buffer.from(img.data, "base64");
    assert(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "data is not a PNG");
  });

  await check("resource-template", async () => {
    const res = await client.listResourceTemplates(undefined, REQUEST_OPTS);
    const templates = res.resourceTemplates.map((t) => t.uriTemplate);
    assert(templates.some((t) => t.startsWith("demo://resource/dynamic/text/")), `templates ${templates.join(", ")}`);
    const uri = "demo://resource/dynamic/text/7";
    const read = await client.readResource({ uri }, REQUEST_OPTS);
    assert(read.contents.length > 0 && read.contents[0].uri === uri, `read ${JSON.stringify(read).slice(0, 200)}`);
  });

  await check("completion", async () => {
    const res = await client.complete(
      { ref: { type: "ref/prompt", name: "completable-prompt" }, argument: { name: "department", value: "Eng" } },
      REQUEST_OPTS,
    );
    const values = res.completion.values;
    assert(JSON.stringify(values) === JSON.stringify(["Engineering"]), `completion values ${JSON.stringify(values)}`);
  });

  await check("logging", async () => {
    await client.setLoggingLevel("debug", REQUEST_OPTS);
    const before = logMessages.length;
    const res = await client.callTool({ name: "toggle-simulated-logging", arguments: {} }, undefined, REQUEST_OPTS);
    try {
      assert(!res.isError, `tool returned isError: ${textOf(res)}`);
      const deadline = Date.now() + 4000;
      while (logMessages.length === before && Date.now() < deadline) await sleep(100);
      assert(logMessages.length > before, "no notifications/message arrived within 4 s");
    } finally {
      await client.callTool({ name: "toggle-simulated-logging", arguments: {} }, undefined, REQUEST_OPTS);
    }
  });

  await check("resource-subscription", async () => {
    const uri = resources[0]?.uri;
    assert(uri, "no resource to subscribe to");
    await client.subscribeResource({ uri }, REQUEST_OPTS);
    const before = resourceUpdates.length;
    const res = await client.callTool({ name: "toggle-subscriber-updates", arguments: {} }, undefined, REQUEST_OPTS);
    try {
      assert(!res.isError, `tool returned isError: ${textOf(res)}`);
      const deadline = Date.now() + 4000;
      while (!resourceUpdates.slice(before).includes(uri) && Date.now() < deadline) await sleep(100);
      assert(
        resourceUpdates.slice(before).includes(uri),
        `no notifications/resources/updated for ${uri} within 4 s (got ${JSON.stringify(resourceUpdates.slice(before))})`,
      );
    } finally {
      await client.callTool({ name: "toggle-subscriber-updates", arguments: {} }, undefined, REQUEST_OPTS);
      await client.unsubscribeResource({ uri }, REQUEST_OPTS);
    }
  });

  await check("progress", async () => {
    const seen = [];
    const lateBefore = lateProgress.length;
    const res = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 1.5, steps: 3 } },
      undefined,
      { ...REQUEST_OPTS, onprogress: (p) => seen.push(p) },
    );
    assert(!res.isError, `tool returned isError: ${textOf(res)}`);
    await sleep(50);
    for (const p of lateProgress.slice(lateBefore)) {
      seen.push({ progress: p.progress, total: p.total });
    }
    assert(textOf(res).includes("Long running operation completed"), `unexpected result: ${textOf(res)}`);
    assert(seen.length === 3, `expected 3 progress notifications, got ${seen.length}: ${JSON.stringify(seen)}`);
    const values = seen.map((p) => p.progress);
    assert(JSON.stringify(values) === "[1,2,3]", `progress values ${JSON.stringify(values)}`);
    assert(seen.every((p) => p.total === 3), `progress totals ${JSON.stringify(seen.map((p) => p.total))}`);
  });

  await check("sampling", async () => {
    const before = samplingSeen;
    const res = await client.callTool(
      { name: "trigger-sampling-request", arguments: { prompt: `question ${token}`, maxTokens: 20 } },
      undefined,
      REQUEST_OPTS,
    );
    assert(!res.isError, `tool returned isError: ${textOf(res)}`);
    assert(samplingSeen === before + 1, `sampling handler ran ${samplingSeen - before} times`);
    const text = textOf(res);
    assert(text.includes(samplingAnswer), `tool result lacks the sampling answer: ${oneLine(text).slice(0, 200)}`);
    assert(text.includes(`question ${token}`), "the prompt did not reach the sampling handler intact");
  });

  await check("elicitation", async () => {
    const before = elicitSeen;
    const res = await client.callTool({ name: "trigger-elicitation-request", arguments: {} }, undefined, REQUEST_OPTS);
    assert(!res.isError, `tool returned isError: ${textOf(res)}`);
    assert(elicitSeen === before + 1, `elicitation handler ran ${elicitSeen - before} times`);
    const text = textOf(res);
    assert(text.includes(`- Name: ${elicitName}`), `tool result lacks the elicited name: ${oneLine(text).slice(0, 200)}`);
  });

  await check("roots", async () => {
    const res = await client.callTool({ name: "get-roots-list", arguments: {} }, undefined, REQUEST_OPTS);
    assert(!res.isError, `tool returned isError: ${textOf(res)}`);
    const text = textOf(res);
    assert(text.includes(rootUri), `tool result lacks the client's root: ${oneLine(text).slice(0, 200)}`);
  });

  if (args.expectEnv) {
    const eq = args.expectEnv.indexOf("=");
    const key = args.expectEnv.slice(0, eq);
    const value = args.expectEnv.slice(eq + 1);
    await check("backend-env", async () => {
      const res = await client.callTool({ name: "get-env", arguments: {} }, undefined, REQUEST_OPTS);
      const env = JSON.parse(textOf(res));
      assert(env[key] === value, `backend env ${key}=${JSON.stringify(env[key])}, wanted ${JSON.stringify(value)}`);
    });
  }

  if (args.transport === "streamable") {
    await check("terminate-session", async () => {
      const sid = transport.sessionId;
      assert(sid, "no Mcp-Session-Id was issued");
      const pv = transport.protocolVersion;
      await transport.terminateSession();
      assert(transport.sessionId === undefined, "client still holds the session id");
      // The terminated session must be gone: a request with the old id is refused.
      const headers = {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sid,
      };
      if (pv) headers["mcp-protocol-version"] = pv;
      const r = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/list", params: {} }),
        signal: AbortSignal.timeout(5000),
      });
      await r.text().catch(() => "");
      assert(r.status === 404 || r.status === 400, `request on the terminated session got HTTP ${r.status}, wanted 404 (or 400)`);
    });
  }

  console.log(`# tools/list_changed notifications seen: ${toolsChanged}`);
  await withTimeout(client.close(), 5000, "close").catch(() => {});
  return finish();
}

function finish() {
  console.log(`# ts client totals: ok=${passes} fail=${failures}`);
  process.exit(failures > 0 ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL client-error: ${errText(e)}`);
  process.exit(2);
});
