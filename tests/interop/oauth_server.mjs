#!/usr/bin/env node
// A small OAuth 2.1 authorization server for the MCP authorization checks: what an MCP
// client needs to authenticate through the gateway, and nothing else.
//
//   GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (also at the OIDC path)
//   POST /register                                 RFC 7591 dynamic client registration
//   GET  /authorize                                consents at once: redirects with a code
//   POST /token                                    authorization_code + PKCE (S256) only
//   GET  /jwks                                     the public signing key
//
// Tokens are RS256 JWTs signed with a key made at start; their audience is the `resource`
// the client asked for (RFC 8707), which the authorization request must carry. Every
// refusal is a JSON error as RFC 6749 words it, so a client that gets something wrong says why.
//
// Usage: node oauth_server.mjs PORT   (listens on 127.0.0.1:PORT; issuer http://127.0.0.1:PORT)

import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign } from "node:crypto";
import { createServer } from "node:http";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node oauth_server.mjs PORT");
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const SCOPES = ["mcp"];
const TOKEN_TTL_S = 600;

const kid = `interop-${randomUUID().slice(0, 8)}`;
const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };

/** client_id -> registered metadata. */
const clients = new Map();
/** code -> what the authorization request bound it to; a code is used once. */
const codes = new Map();

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function jwt(claims) {
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign("sha256", Buffer.from(`${head}.${body}`), privateKey);
  return `${head}.${body}.${b64url(sig)}`;
}

function metadata() {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    registration_endpoint: `${issuer}/register`,
    jwks_uri: `${issuer}/jwks`,
    scopes_supported: SCOPES,
    response_types_supported: ["code"],
    grant_types_supported: ["authorization_code"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["none"],
  };
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

const oauthError = (res, status, error, description) => send(res, status, { error, error_description: description });

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 65536) reject(new Error("body too large"));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Whether `resource` is an absolute URL without a fragment (RFC 8707 section 2). */
function validResource(resource) {
  try {
    const u = new URL(resource);
    return (u.protocol === "http:" || u.protocol === "https:") && !resource.includes("#");
  } catch {
    return false;
  }
}

function register(res, raw) {
  let meta;
  try {
    meta = JSON.parse(raw);
  } catch {
    return oauthError(res, 400, "invalid_client_metadata", "the body is not JSON");
  }
  const uris = meta?.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || !uris.every((u) => typeof u === "string" && URL.canParse(u))) {
    return oauthError(res, 400, "invalid_redirect_uri", "redirect_uris must be a non-empty list of URLs");
  }
  const method = meta.token_endpoint_auth_method ?? "none";
  if (method !== "none") {
    return oauthError(res, 400, "invalid_client_metadata", `token_endpoint_auth_method ${method} is not supported (public clients only)`);
  }
  const client = { ...meta, token_endpoint_auth_method: "none", client_id: randomUUID(), client_id_issued_at: Math.floor(Date.now() / 1000) };
  clients.set(client.client_id, client);
  send(res, 201, client);
}

function authorize(res, q) {
  const client = clients.get(q.get("client_id") ?? "");
  const redirect = q.get("redirect_uri");
  // Without a known client and one of its redirect URIs there is nowhere safe to send an error.
  if (!client) return oauthError(res, 400, "invalid_client", "unknown client_id");
  if (!redirect || !client.redirect_uris.includes(redirect)) {
    return oauthError(res, 400, "invalid_request", "redirect_uri is not one the client registered");
  }
  const back = (params) => {
    const u = new URL(redirect);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    if (q.get("state") !== null) u.searchParams.set("state", q.get("state"));
    res.writeHead(302, { location: u.href, "cache-control": "no-store" });
    res.end();
  };
  if (q.get("response_type") !== "code") return back({ error: "unsupported_response_type" });
  if (!q.get("code_challenge") || q.get("code_challenge_method") !== "S256") {
    return back({ error: "invalid_request", error_description: "PKCE with S256 is required" });
  }
  const resource = q.get("resource");
  if (!resource || !validResource(resource)) {
    return back({ error: "invalid_target", error_description: "a resource indicator (RFC 8707) is required" });
  }
  const asked = (q.get("scope") ?? "").split(" ").filter(Boolean);
  const unknown = asked.filter((s) => !SCOPES.includes(s));
  if (unknown.length) return back({ error: "invalid_scope", error_description: `unknown scopes: ${unknown.join(" ")}` });
  const code = b64url(randomBytes(24));
  codes.set(code, {
    clientId: client.client_id,
    redirect,
    challenge: q.get("code_challenge"),
    resource,
    scope: (asked.length ? asked : SCOPES).join(" "),
  });
  back({ code });
}

function token(res, raw) {
  const f = new URLSearchParams(raw);
  if (f.get("grant_type") !== "authorization_code") {
    return oauthError(res, 400, "unsupported_grant_type", "only authorization_code is supported");
  }
  const grant = codes.get(f.get("code") ?? "");
  codes.delete(f.get("code") ?? "");
  if (!grant) return oauthError(res, 400, "invalid_grant", "unknown or used authorization code");
  if (f.get("client_id") !== grant.clientId) return oauthError(res, 400, "invalid_grant", "the code was issued to another client");
  if (f.get("redirect_uri") !== grant.redirect) return oauthError(res, 400, "invalid_grant", "redirect_uri differs from the authorization request");
  const verifier = f.get("code_verifier") ?? "";
  if (b64url(createHash("sha256").update(verifier).digest()) !== grant.challenge) {
    return oauthError(res, 400, "invalid_grant", "code_verifier does not match the code_challenge");
  }
  // RFC 8707: the token request may repeat the resource, and then it must be the same one.
  const resource = f.get("resource");
  if (resource !== null && resource !== grant.resource) {
    return oauthError(res, 400, "invalid_target", "resource differs from the authorization request");
  }
  const now = Math.floor(Date.now() / 1000);
  const accessToken = jwt({
    iss: issuer,
    sub: `user-of-${grant.clientId.slice(0, 8)}`,
    aud: grant.resource,
    client_id: grant.clientId,
    scope: grant.scope,
    iat: now,
    exp: now + TOKEN_TTL_S,
    jti: randomUUID(),
  });
  send(res, 200, { access_token: accessToken, token_type: "Bearer", expires_in: TOKEN_TTL_S, scope: grant.scope });
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  const route = `${req.method} ${url.pathname}`;
  try {
    switch (route) {
      case "GET /.well-known/oauth-authorization-server":
      case "GET /.well-known/openid-configuration":
        return send(res, 200, metadata());
      case "GET /jwks":
        return send(res, 200, { keys: [jwk] });
      case "POST /register":
        return register(res, await readBody(req));
      case "GET /authorize":
        return authorize(res, url.searchParams);
      case "POST /token":
        return token(res, await readBody(req));
      default:
        return send(res, 404, { error: "not_found", error_description: `no ${route} here` });
    }
  } catch (e) {
    return oauthError(res, 400, "invalid_request", String(e?.message ?? e));
  } finally {
    console.log(`${route} -> ${res.statusCode}`);
  }
});

server.listen(port, "127.0.0.1", () => console.log(`# authorization server at ${issuer}`));
