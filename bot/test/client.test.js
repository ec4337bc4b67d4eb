// The client alone, against a small local server: retries on 429/503 (Retry-After, bounded attempts
// and time), errors, the token kept out of logs, errors and signed-URL uploads, and the manifest
// agreeing with what register() registers.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import plugin, { Backend, storeBytes } from "../index.js";

const TOKEN = "ocb_client-test-token-0123456789abcdef";
const dir = mkdtempSync(join(tmpdir(), "oc-plugin-"));
const tokenFile = join(dir, "token");
writeFileSync(tokenFile, TOKEN + "\n");

let server;
let base;
const seen = []; // every request: { method, url, auth }
let script = []; // queued answers: { status, headers, body }

before(async () => {
  server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body: Buffer.concat(chunks) });
      const next = script.shift() ?? { status: 200, body: { ok: true } };
      const body = typeof next.body === "string" ? next.body : JSON.stringify(next.body ?? {});
      res.writeHead(next.status, { "Content-Type": typeof next.body === "string" ? "text/plain" : "application/json", ...next.headers });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

function backend(extra = {}) {
  const lines = [];
  const logger = Object.fromEntries(["debug", "info", "warn", "error"].map((l) => [l, (m) => lines.push(String(m))]));
  const b = new Backend({ tokenFile, configFile: join(dir, "missing.json"), knowledgeUrl: `${base}/knowledge`,
    mediaUrl: `${base}/media`, costsUrl: `${base}/costs`, ...extra }, logger);
  return { b, lines };
}

function reset(answers) {
  seen.length = 0;
  script = answers;
}

test("the manifest declares exactly the tools register() registers, and its config schema takes the defaults", () => {
  const manifest = JSON.parse(readFileSync(new URL("../openclaw.plugin.json", import.meta.url)));
  const registered = [];
  plugin.register({ pluginConfig: {}, logger: console, registerTool: (t) => registered.push(t) });
  assert.deepEqual(registered.map((t) => t.name).sort(), [...manifest.contracts.tools].sort());
  assert.equal(manifest.id, plugin.id);
  for (const t of registered) {
    assert.equal(typeof t.execute, "function");
    assert.equal(t.parameters.type, "object");
  }
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url)));
  assert.equal(manifest.version, pkg.version);
  assert.deepEqual(pkg.openclaw.extensions, ["./index.js"]);
  for (const key of ["tokenFile", "configFile", "timeoutMs", "maxAttempts", "maxRetryMs"]) {
    assert.ok(manifest.configSchema.properties[key].default !== undefined, key);
  }
});

test("429 with Retry-After is retried after the time asked, with the credential", async () => {
  const { b, lines } = backend();
  reset([{ status: 429, headers: { "Retry-After": "1" } }, { status: 200, body: { items: [] } }]);
  const t0 = Date.now();
  const r = await b.request("GET", `${base}/media/`);
  assert.deepEqual(r, { items: [] });
  assert.ok(Date.now() - t0 >= 950, "waited for Retry-After");
  assert.equal(seen.length, 2);
  assert.ok(seen.every((s) => s.auth === `Bot ${TOKEN}`));
  assert.ok(lines.some((l) => l.includes("answered 429; retrying")));
});

test("503 without Retry-After backs off, and gives up after maxAttempts", async () => {
  const { b } = backend({ maxAttempts: 3 });
  reset([{ status: 503 }, { status: 503 }, { status: 503 }, { status: 200 }]);
  await assert.rejects(b.request("POST", `${base}/knowledge/search`, { json: { query: "x" } }),
    (err) => err.status === 503 && err.code === "unavailable" && /gave up after 3 attempts/.test(err.message));
  assert.equal(seen.length, 3);
});

test("a Retry-After beyond the retry budget fails at once instead of waiting", async () => {
  const { b } = backend({ maxRetryMs: 2000 });
  reset([{ status: 429, headers: { "Retry-After": "120" } }]);
  const t0 = Date.now();
  await assert.rejects(b.request("GET", `${base}/media/`), (err) => err.code === "rate_limited" && /retry budget/.test(err.message));
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(seen.length, 1);
});

test("an HTTP-date Retry-After is honoured", async () => {
  const { b } = backend();
  reset([{ status: 503, headers: { "Retry-After": new Date(Date.now() + 1000).toUTCString() } }, { status: 200, body: {} }]);
  await b.request("GET", `${base}/media/`);
  assert.equal(seen.length, 2);
});

test("other errors are not retried and read as the backend's JSON error", async () => {
  const { b } = backend();
  reset([{ status: 422, body: { error: { code: "invalid_request", message: "text: too short" } } }]);
  await assert.rejects(b.request("POST", `${base}/knowledge/`, { json: {} }),
    (err) => err.status === 422 && err.code === "invalid_request" && err.message.includes("text: too short"));
  assert.equal(seen.length, 1);
});

test("the token never appears in logs or errors, even when a server echoes it", async () => {
  const { b, lines } = backend({ maxAttempts: 2 });
  reset([{ status: 503, headers: { "Retry-After": "0" } },
         { status: 401, body: { error: { code: "unauthorized", message: `bad credential Bot ${TOKEN}` } } }]);
  const err = await b.request("GET", `${base}/media/`).catch((e) => e);
  assert.equal(err.status, 401);
  assert.ok(!err.message.includes(TOKEN) && err.message.includes("[redacted]"));
  assert.ok(!JSON.stringify(err).includes(TOKEN) && !String(err.stack).includes(TOKEN));
  b.log("error", `something mentioning ${TOKEN}`);
  assert.ok(lines.length >= 2);
  assert.ok(lines.every((l) => !l.includes(TOKEN)), lines.join("\n"));
});

test("bytes are PUT to the signed URL without the bot credential, then registered", async () => {
  const { b } = backend();
  reset([
    { status: 201, body: { uploadId: "u1", storageId: "media/u/u1", uploadUrl: `${base}/upload?X-Goog-Signature=abc`, method: "PUT",
                           headers: { "Content-Type": "image/png" }, expiresAt: 0 } },
    { status: 200, body: "" },
    { status: 201, body: { _id: "u1", type: "image", mimeType: "image/png" } },
  ]);
  const media = await storeBytes(b, { bytes: Buffer.from("png!"), type: "image", mimeType: "image/png", prompt: "p" });
  assert.equal(media._id, "u1");
  assert.deepEqual(seen.map((s) => [s.method, s.url.split("?")[0], s.auth]), [
    ["POST", "/media/uploads", `Bot ${TOKEN}`], ["PUT", "/upload", undefined], ["POST", "/media/", `Bot ${TOKEN}`]]);
  assert.equal(seen[1].body.toString(), "png!");
});

test("a missing credential or URL is a clear error before any request", async () => {
  reset([]);
  const noToken = new Backend({ tokenFile: join(dir, "nope"), knowledgeUrl: base });
  await assert.rejects(noToken.request("GET", `${base}/x`), (err) => err.code === "no_credential");
  const noUrl = new Backend({ tokenFile, configFile: join(dir, "missing.json") });
  assert.throws(() => noUrl.url("media"), (err) => err.code === "not_configured");
  writeFileSync(join(dir, "config.json"), JSON.stringify({ backend: { mediaUrl: `${base}/media/` } }));
  assert.equal(new Backend({ tokenFile, configFile: join(dir, "config.json") }).url("media"), `${base}/media`);
  assert.equal(seen.length, 0);
});
