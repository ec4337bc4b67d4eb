// The agent tools: what each sends to the backend and how its answer reads to the model.
// Parameters are plain JSON Schema (OpenClaw accepts it as TypeBox produces it), so the
// package has no runtime dependency.
import { BackendError } from "./client.js";

const MEDIA_TYPES = ["image", "video"];
const MIME = /^(image|video)\/[a-z0-9][a-z0-9.+-]{0,99}$/;

function result(text, details) {
  return { content: [{ type: "text", text }], details };
}

/** base64 (or a data: URL) -> { bytes, mimeType? }; refuses what is not base64. */
export function decodeData(data) {
  let mimeType;
  let b64 = String(data).trim();
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(b64);
  if (m) [, mimeType, b64] = m;
  b64 = b64.replace(/\s+/g, "");
  if (!b64 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(b64)) {
    throw new BackendError("data is not base64", 0, "invalid_input");
  }
  return { bytes: Buffer.from(b64, b64.includes("-") || b64.includes("_") ? "base64url" : "base64"), mimeType };
}

function checkMedia(type, mimeType) {
  if (!MEDIA_TYPES.includes(type)) throw new BackendError("type must be image or video", 0, "invalid_input");
  if (mimeType !== undefined && (!MIME.test(mimeType) || !mimeType.startsWith(type + "/"))) {
    throw new BackendError(`mimeType ${mimeType} is not an ${type}/* type`, 0, "invalid_input");
  }
}

/** Store bytes the bot made: a signed upload URL, the PUT (without the bot token), then register. */
export async function storeBytes(backend, { bytes, type, mimeType, prompt = "" }) {
  checkMedia(type, mimeType);
  if (!mimeType) throw new BackendError("mimeType is required with data", 0, "invalid_input");
  if (!bytes?.length) throw new BackendError("data is empty", 0, "invalid_input");
  const media = backend.url("media");
  const upload = await backend.request("POST", `${media}/uploads`, { json: { type, mimeType, size: bytes.length } });
  await backend.request(upload.method || "PUT", upload.uploadUrl, { body: bytes, headers: upload.headers, auth: false, accept: "*/*" });
  return backend.request("POST", `${media}/`, { json: { storageId: upload.storageId, type, mimeType, prompt } });
}

/** Store what a provider's URL points to: the media function fetches it server-side. */
export async function storeFromUrl(backend, { url, type, mimeType, prompt }) {
  checkMedia(type, mimeType);
  const body = { url, type, ...(mimeType ? { mimeType } : {}), ...(prompt ? { prompt } : {}) };
  return backend.request("POST", `${backend.url("media")}/from-url`, { json: body });
}

function describeMedia(m) {
  const when = new Date(m.createdAt).toISOString().replace(/\.\d+Z$/, "Z");
  return `${m._id} ${m.type} ${m.mimeType} ${when}${m.prompt ? ` "${m.prompt.slice(0, 80)}"` : ""}`;
}

export function tools(backend) {
  return [
    {
      name: "knowledge_search",
      description: "Search the owner's knowledge base (what the owner or this bot stored earlier) for passages about a question. Use it before answering questions about the owner's own facts, notes or preferences.",
      parameters: {
        type: "object", additionalProperties: false, required: ["query"],
        properties: {
          query: { type: "string", minLength: 1, maxLength: 8000, description: "what to look for, in words" },
          limit: { type: "integer", minimum: 1, maximum: 20, default: 5, description: "passages to return" },
        },
      },
      async execute(_id, { query, limit = 5 }) {
        const found = await backend.request("POST", `${backend.url("knowledge")}/search`, { json: { query, limit } });
        const items = found.items || [];
        if (!items.length) return result("Nothing in the knowledge base matches.", { items });
        const text = items.map((h, i) => `${i + 1}. [${h.source}, score ${h.score.toFixed(2)}] ${h.text}`).join("\n\n");
        return result(text, { items });
      },
    },
    {
      name: "knowledge_add",
      description: "Remember a text in the owner's knowledge base (facts, notes, preferences the owner taught you), under a source name. Near-duplicates of what is already stored are skipped.",
      parameters: {
        type: "object", additionalProperties: false, required: ["text"],
        properties: {
          text: { type: "string", minLength: 1, description: "what to remember" },
          source: { type: "string", minLength: 1, maxLength: 500, default: "bot", description: "where it came from (a topic, a file name, 'chat')" },
        },
      },
      async execute(_id, { text, source = "bot" }) {
        const r = await backend.request("POST", `${backend.url("knowledge")}/`, { json: { text, source } });
        return result(`Remembered under "${r.source}": ${r.stored} new passage(s), ${r.duplicates} already known.`, r);
      },
    },
    {
      name: "media_store",
      description: "Save a generated image or video to the owner's media library, either from base64 data or from the URL an image/video provider returned (the URL is fetched by the service).",
      parameters: {
        type: "object", additionalProperties: false, required: ["type"],
        properties: {
          type: { type: "string", enum: MEDIA_TYPES },
          data: { type: "string", description: "the file as base64 or a data: URL (give data or url)" },
          url: { type: "string", description: "an https URL the provider returned (give data or url)" },
          mimeType: { type: "string", description: "e.g. image/png, video/mp4 (required with plain base64)" },
          prompt: { type: "string", maxLength: 8000, description: "the prompt that made it" },
        },
      },
      async execute(_id, { type, data, url, mimeType, prompt = "" }) {
        if ((data === undefined) === (url === undefined)) {
          throw new BackendError("give exactly one of data or url", 0, "invalid_input");
        }
        let media;
        if (data !== undefined) {
          const decoded = decodeData(data);
          media = await storeBytes(backend, { bytes: decoded.bytes, type, mimeType: mimeType || decoded.mimeType, prompt });
        } else {
          media = await storeFromUrl(backend, { url, type, mimeType, prompt });
        }
        return result(`Saved ${media.type} ${media._id} (${media.mimeType}) to the owner's media library.`, media);
      },
    },
    {
      name: "media_list",
      description: "List the newest images and videos in the owner's media library.",
      parameters: {
        type: "object", additionalProperties: false,
        properties: {
          type: { type: "string", enum: MEDIA_TYPES, description: "only images or only videos" },
          limit: { type: "integer", minimum: 1, maximum: 100, default: 10 },
        },
      },
      async execute(_id, { type, limit = 10 } = {}) {
        const q = new URLSearchParams({ limit: String(limit), ...(type ? { type } : {}) });
        const page = await backend.request("GET", `${backend.url("media")}/?${q}`);
        const items = page.items || [];
        const text = items.length ? items.map(describeMedia).join("\n") : "The media library is empty.";
        return result(text, { items, nextCursor: page.nextCursor ?? null });
      },
    },
    {
      name: "cost_summary",
      description: "The owner's spend this month (or a given month) by source (OpenRouter, OpenAI, Google Cloud) and the change against the month before.",
      parameters: {
        type: "object", additionalProperties: false,
        properties: { month: { type: "string", pattern: "^\\d{4}-(0[1-9]|1[0-2])$", description: "YYYY-MM; default: this month" } },
      },
      async execute(_id, { month } = {}) {
        const q = new URLSearchParams({ format: "text", ...(month ? { month } : {}) });
        const text = await backend.request("GET", `${backend.url("costs")}/summary?${q}`, { accept: "text/plain" });
        return result(typeof text === "string" ? text.trim() : JSON.stringify(text), { month: month ?? null });
      },
    },
  ];
}
