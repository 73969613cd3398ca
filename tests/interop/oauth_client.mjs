#!/usr/bin/env node
// MCP authorization through Tollgate with the TypeScript SDK's own OAuth client
// (`OAuthClientProvider` and the transport's auth flow), against oauth_server.mjs:
//
//   401 + WWW-Authenticate resource_metadata -> the gateway's RFC 9728 metadata ->
//   RFC 8414 authorization server metadata -> dynamic client registration ->
//   authorization code + PKCE with `resource` (RFC 8707) -> token -> retry.
//
// Usage: node oauth_client.mjs --url GATEWAY_MCP_URL --issuer AS_URL --other-resource URL
//
// Prints `ok NAME` or `FAIL NAME: reason` per check; exits non-zero when any failed.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  UnauthorizedError,
  discoverAuthorizationServerMetadata,
  exchangeAuthorization,
  startAuthorization,
} from "@modelcontextprotocol/sdk/client/auth.js";

function parseArgs(argv) {
  const out = { url: null, issuer: null, otherResource: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === "--url") out.url = next();
    else if (a === "--issuer") out.issuer = next();
    else if (a === "--other-resource") out.otherResource = next();
    else throw new Error(`unknown argument: ${a}`);
  }
  for (const k of ["url", "issuer", "otherResource"]) if (!out[k]) throw new Error(`--${k} is required`);
  return out;
}

const CHECK_TIMEOUT_MS = Number(process.env.INTEROP_CHECK_TIMEOUT_MS || 20000);
let failures = 0;
let passes = 0;

const oneLine = (s) => String(s).replace(/\s+/g, " ").trim().slice(0, 400);
const errText = (e) => (e instanceof Error ? oneLine(`${e.constructor.name}: ${e.message}`) : oneLine(e));

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function check(name, fn) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([Promise.resolve().then(fn), limit]);
    passes++;
    console.log(`ok ${name}`);
    return true;
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${errText(e)}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The value of `name="..."` in a WWW-Authenticate challenge. */
function param(challenge, name) {
  const m = new RegExp(`${name}="([^"]*)"`).exec(challenge);
  return m ? m[1] : null;
}

function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}

/** An initialize request as a client without the SDK would send it. */
function initialize(url, headers = {}) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "tollgate-interop-oauth", version: "0.1.0" } },
    }),
    signal: AbortSignal.timeout(5000),
  });
}

/**
 * An in-memory OAuthClientProvider for a client that cannot open a browser: it records the
 * authorization URL the SDK hands it, and the test follows it as a user agent would.
 */
class MemoryProvider {
  constructor() {
    this.redirectUrl = "http://127.0.0.1:1/oauth/callback";
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.authorizationUrl = undefined;
    this.registrations = 0;
  }
  get clientMetadata() {
    return {
      client_name: "tollgate-interop-oauth",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    return "interop-state-1";
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.registrations++;
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrl = new URL(url);
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error("no code verifier saved");
    return this.verifier;
  }
}

/** Follows an authorization URL like a browser whose user consents; returns the code. */
async function consent(authorizationUrl, redirectUrl, state) {
  const r = await fetch(authorizationUrl, { redirect: "manual", signal: AbortSignal.timeout(5000) });
  assert(r.status === 302, `the authorize endpoint answered HTTP ${r.status}: ${oneLine(await r.text())}`);
  const back = new URL(r.headers.get("location"));
  assert(back.href.startsWith(redirectUrl), `redirected to ${back.href}, not the registered ${redirectUrl}`);
  assert(!back.searchParams.get("error"), `authorization refused: ${back.searchParams.get("error")} ${back.searchParams.get("error_description") ?? ""}`);
  assert(back.searchParams.get("state") === state, `state came back as ${back.searchParams.get("state")}`);
  const code = back.searchParams.get("code");
  assert(code, "no code in the redirect");
  return code;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const url = new URL(args.url);
  const canonical = url.href.replace(/\/$/, "");
  const provider = new MemoryProvider();
  let metadataUrl = null;

  await check("oauth-unauthenticated-401", async () => {
    const r = await initialize(url);
    const body = await r.text();
    assert(r.status === 401, `HTTP ${r.status}, wanted 401: ${oneLine(body)}`);
    const challenge = r.headers.get("www-authenticate") ?? "";
    assert(/^Bearer\b/i.test(challenge), `WWW-Authenticate is ${JSON.stringify(challenge)}, wanted a Bearer challenge`);
    metadataUrl = param(challenge, "resource_metadata");
    assert(metadataUrl, `no resource_metadata in ${JSON.stringify(challenge)}`);
    assert(new URL(metadataUrl).origin === url.origin, `resource_metadata ${metadataUrl} is not on the gateway`);
  });

  await check("oauth-protected-resource-metadata", async () => {
    assert(metadataUrl, "no resource_metadata URL from the 401");
    const r = await fetch(metadataUrl, { signal: AbortSignal.timeout(5000) });
    assert(r.status === 200, `GET ${metadataUrl}: HTTP ${r.status}`);
    const doc = await r.json();
    assert(doc.resource === canonical, `resource is ${doc.resource}, wanted ${canonical}`);
    assert((doc.authorization_servers ?? []).includes(args.issuer), `authorization_servers ${JSON.stringify(doc.authorization_servers)} lack ${args.issuer}`);
  });

  // The SDK's own flow: the first connect discovers, registers and hands us the
  // authorization URL (then throws UnauthorizedError, as it does for an interactive login).
  await check("oauth-sdk-discovers-and-registers", async () => {
    const client = new Client({ name: "tollgate-interop-oauth", version: "0.1.0" });
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    let thrown = null;
    try {
      await client.connect(transport);
    } catch (e) {
      thrown = e;
    }
    await client.close().catch(() => {});
    assert(thrown instanceof UnauthorizedError, `connect without a token ended with ${thrown ? errText(thrown) : "success"}, wanted UnauthorizedError`);
    assert(provider.registrations === 1 && provider.client?.client_id, "the SDK did not register a client dynamically");
    const a = provider.authorizationUrl;
    assert(a, "the SDK never asked to open an authorization URL");
    assert(a.href.startsWith(`${args.issuer}/authorize`), `authorization URL ${a.href} is not the server's authorize endpoint`);
    assert(a.searchParams.get("resource") === canonical, `resource=${a.searchParams.get("resource")}, wanted ${canonical}`);
    assert(a.searchParams.get("code_challenge_method") === "S256", "no S256 PKCE challenge");
  });

  let token = null;
  await check("oauth-code-exchange", async () => {
    assert(provider.authorizationUrl, "no authorization URL to follow");
    const code = await consent(provider.authorizationUrl, provider.redirectUrl, provider.state());
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await transport.finishAuth(code);
    token = provider.tokens()?.access_token;
    assert(token, "no access token saved");
    const claims = claimsOf(token);
    assert(claims.aud === canonical, `the token's audience is ${JSON.stringify(claims.aud)}, wanted ${canonical}`);
    assert(claims.iss === args.issuer, `the token's issuer is ${claims.iss}`);
  });

  await check("oauth-authenticated-tool-call", async () => {
    assert(token, "no token");
    const client = new Client({ name: "tollgate-interop-oauth", version: "0.1.0" });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    try {
      const tools = await client.listTools();
      assert(tools.tools.some((t) => t.name === "echo"), "tools/list has no echo tool");
      const r = await client.callTool({ name: "echo", arguments: { message: "through the gate" } });
      const text = (r.content ?? []).map((c) => c.text ?? "").join(" ");
      assert(text.includes("through the gate"), `echo answered ${JSON.stringify(r)}`);
    } finally {
      await client.close().catch(() => {});
    }
  });

  // A token the same authorization server issued, for another resource: the gateway must
  // refuse it, since its audience is not this server's canonical URL (RFC 8707).
  await check("oauth-other-audience-refused", async () => {
    assert(provider.client, "no registered client");
    const other = new URL(args.otherResource);
    const metadata = await discoverAuthorizationServerMetadata(args.issuer);
    const { authorizationUrl, codeVerifier } = await startAuthorization(args.issuer, {
      metadata,
      clientInformation: provider.client,
      redirectUrl: provider.redirectUrl,
      scope: "mcp",
      state: "interop-state-2",
      resource: other,
    });
    const code = await consent(authorizationUrl, provider.redirectUrl, "interop-state-2");
    const tokens = await exchangeAuthorization(args.issuer, {
      metadata,
      clientInformation: provider.client,
      authorizationCode: code,
      codeVerifier,
      redirectUri: provider.redirectUrl,
      resource: other,
    });
    assert(claimsOf(tokens.access_token).aud === other.href, `the other token's audience is ${claimsOf(tokens.access_token).aud}`);
    const r = await initialize(url, { authorization: `Bearer ${tokens.access_token}` });
    const body = await r.text();
    assert(r.status === 401, `a token for ${other.href} got HTTP ${r.status}, wanted 401: ${oneLine(body)}`);
    const challenge = r.headers.get("www-authenticate") ?? "";
    assert(param(challenge, "error") === "invalid_token", `challenge ${JSON.stringify(challenge)} lacks error="invalid_token"`);
    // The right token still works on the same raw path, so the refusal was the audience.
    const ok = await initialize(url, { authorization: `Bearer ${token}` });
    await ok.text();
    assert(ok.status === 200, `the token for this server got HTTP ${ok.status}`);
  });

  console.log(`# oauth client totals: ok=${passes} fail=${failures}`);
  process.exit(failures > 0 ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL client-error: ${errText(e)}`);
  process.exit(2);
});
