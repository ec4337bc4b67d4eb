// The tool handlers against the real backend (tests/test_bot_plugin.py starts the local stack, issues
// a bot credential for a deployment and runs this file). Skipped when run alone without that stack:
//   HOSTING_CONFIG_FILE  the VM's config file (its `backend` section names the functions' URLs)
//   HOSTING_TOKEN_FILE   the bot credential, as the VM keeps it
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import plugin from "../index.js";

const configFile = process.env.HOSTING_CONFIG_FILE;
const tokenFile = process.env.HOSTING_TOKEN_FILE;
const skip = !configFile || !tokenFile ? "needs the local stack (tests/test_bot_plugin.py)" : false;

// a 1x1 PNG
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");
const lines = [];
const logger = Object.fromEntries(["debug", "info", "warn", "error"].map((l) => [l, (m) => lines.push(`${l} ${m}`)]));
const tools = {};
let provider; // a stand-in image provider: the URL the media function fetches
let providerUrl;

before(async () => {
  if (skip) return;
  plugin.register({ pluginConfig: { configFile, tokenFile }, logger, registerTool: (t) => { tools[t.name] = t; } });
  provider = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "image/png", "Content-Length": PNG.length });
    res.end(PNG);
  });
  await new Promise((resolve) => provider.listen(0, "127.0.0.1", resolve));
  providerUrl = `http://127.0.0.1:${provider.address().port}/generated/cat.png`;
});
after(() => provider?.close());

const run = (name, params) => tools[name].execute(`call-${name}`, params);

test("knowledge_add then knowledge_search finds it, as the owner's", { skip }, async () => {
  const added = await run("knowledge_add", { text: "The owner's cat is called Miso and eats at seven.", source: "chat" });
  assert.equal(added.details.stored, 1);
  assert.match(added.content[0].text, /Remembered under "chat": 1 new/);
  const again = await run("knowledge_add", { text: "The owner's cat is called Miso and eats at seven.", source: "chat" });
  assert.equal(again.details.duplicates, 1);
  const found = await run("knowledge_search", { query: "what is the cat called", limit: 3 });
  assert.equal(found.details.items[0].text, "The owner's cat is called Miso and eats at seven.");
  assert.equal(found.details.items[0].userId, process.env.HOSTING_OWNER_ID);
  assert.match(found.content[0].text, /^1\. \[chat, score \d\.\d\d\] The owner's cat/);
});

test("media_store from base64 and from a provider's URL, then media_list shows both", { skip }, async () => {
  const fromBytes = await run("media_store", { type: "image", data: PNG.toString("base64"), mimeType: "image/png", prompt: "a dot" });
  assert.equal(fromBytes.details.mimeType, "image/png");
  assert.equal(fromBytes.details.userId, process.env.HOSTING_OWNER_ID);
  const fromDataUrl = await run("media_store", { type: "image", data: `data:image/png;base64,${PNG.toString("base64")}` });
  assert.equal(fromDataUrl.details.mimeType, "image/png");
  const fromUrl = await run("media_store", { type: "image", url: providerUrl, prompt: "a cat" });
  assert.equal(fromUrl.details.type, "image");
  assert.match(fromUrl.content[0].text, /^Saved image \S+ \(image\/png\)/);

  const listed = await run("media_list", { limit: 10 });
  const ids = listed.details.items.map((m) => m._id);
  for (const m of [fromBytes, fromDataUrl, fromUrl]) assert.ok(ids.includes(m.details._id), m.details._id);
  assert.match(listed.content[0].text, /image image\/png \d{4}-\d\d-\d\dT/);
  const videos = await run("media_list", { type: "video" });
  assert.deepEqual(videos.details.items, []);
  assert.equal(videos.content[0].text, "The media library is empty.");
});

test("media_store refuses what the backend refuses, with its reason", { skip }, async () => {
  await assert.rejects(run("media_store", { type: "video", data: PNG.toString("base64"), mimeType: "image/png" }),
    /not an video\/\* type/);
  await assert.rejects(run("media_store", { type: "image", data: "a".repeat(8000), mimeType: "image/png" }),
    (err) => err.status === 422 && /at most/.test(err.message));
});

test("cost_summary reads the owner's summary as text", { skip }, async () => {
  const r = await run("cost_summary", {});
  assert.match(r.content[0].text, /^Costs for \w+ \d{4} so far: \$/); // the short text form, not JSON
  const month = await run("cost_summary", { month: "2026-01" });
  assert.match(month.content[0].text, /^Costs for January 2026: /);
  assert.equal(month.details.month, "2026-01");
});

test("the token appears in no log line", { skip }, () => {
  const token = readFileSync(tokenFile, "utf8").trim();
  assert.ok(token.length > 20);
  assert.ok(lines.every((l) => !l.includes(token)), lines.join("\n"));
});
