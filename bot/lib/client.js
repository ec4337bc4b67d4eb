// The hosting backend as the bot sees it: the knowledge, media and costs functions, called with the
// deployment's bot credential (`Authorization: Bot <token>`).
//
// - The token is read from its file on every call: the VM re-reads it from Secret Manager every
//   2 minutes after a rotation (the old one stays valid 10 minutes), so the bot never restarts for it.
// - It is never logged and never part of an error: messages are built from the status and the
//   backend's JSON error only, and every line the plugin logs goes through `redact` anyway.
// - 429 and 503 are retried politely: Retry-After (seconds or an HTTP date) when given, else
//   exponential backoff with jitter; at most `maxAttempts` tries and `maxRetryMs` of waiting in all.
//   A wait that would overrun that budget is not started: the call fails at once, saying why.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export const DEFAULTS = {
  configFile: "/etc/openclaw/config.json",
  tokenFile: "/etc/openclaw/secrets/openclaw-bot-token",
  timeoutMs: 30_000,
  maxAttempts: 4,
  maxRetryMs: 60_000,
};
const RETRYABLE = new Set([429, 503]);
const BACKOFF_MS = 500;
const BACKOFF_CAP_MS = 30_000;

export class BackendError extends Error {
  constructor(message, status = 0, code = "backend_error") {
    super(message);
    this.name = "BackendError";
    this.status = status;
    this.code = code;
  }
}

/** Seconds or an HTTP date -> milliseconds to wait; null when absent or unreadable. */
export function retryAfterMs(value, now = Date.now()) {
  if (value == null || value === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    if (err.code === "ENOENT") return {};
    throw new BackendError(`cannot read ${path}: ${err.message}`, 0, "config_unreadable");
  }
}

export class Backend {
  /**
   * @param {object} config the plugin's config (plugins.entries.openclaw-hosting.config)
   * @param {object} [logger] OpenClaw's api.logger (info/warn/error)
   * @param {Function} [fetchImpl] for tests; global fetch otherwise
   */
  constructor(config = {}, logger = console, fetchImpl = globalThis.fetch) {
    this.config = { ...DEFAULTS, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v != null)) };
    this.logger = logger;
    this.fetch = fetchImpl;
    this.lastToken = "";
  }

  /** The function's base URL: the plugin config, else the VM's config file (`backend.<name>Url`). */
  url(name) {
    const key = `${name}Url`;
    const url = this.config[key] || readJson(this.config.configFile)?.backend?.[key];
    if (!url) {
      throw new BackendError(`no ${key}: set it in the plugin config or in ${this.config.configFile}`, 0,
        "not_configured");
    }
    return url.replace(/\/+$/, "");
  }

  token() {
    let token;
    try {
      token = readFileSync(this.config.tokenFile, "utf8").trim();
    } catch (err) {
      throw new BackendError(`no bot credential in ${this.config.tokenFile} (${err.code || err.message})`, 0,
        "no_credential");
    }
    if (!token) throw new BackendError(`the bot credential file ${this.config.tokenFile} is empty`, 0, "no_credential");
    this.lastToken = token;
    return token;
  }

  /** Any text with the current token masked (defence in depth: nothing should contain it). */
  redact(text) {
    const s = String(text);
    return this.lastToken ? s.split(this.lastToken).join("[redacted]") : s;
  }

  log(level, message) {
    (this.logger?.[level] ?? this.logger?.info ?? (() => {})).call(this.logger, this.redact(`[openclaw-hosting] ${message}`));
  }

  /** One backend call. `auth: false` for signed Cloud Storage URLs, which must never see the token. */
  async request(method, url, { json, body, headers = {}, auth = true, accept = "application/json" } = {}) {
    const { timeoutMs, maxAttempts, maxRetryMs } = this.config;
    const h = { Accept: accept, ...headers };
    if (auth) h.Authorization = `Bot ${this.token()}`;
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const what = `${method} ${new URL(url).pathname}`;
    const started = Date.now();
    for (let attempt = 1; ; attempt += 1) {
      let resp;
      try {
        resp = await this.fetch(url, { method, headers: h, body, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
      } catch (err) {
        const reason = err.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : `unreachable (${err.cause?.code || err.name})`;
        throw new BackendError(`${what}: ${reason}`, 0, "unreachable");
      }
      if (!RETRYABLE.has(resp.status)) return this.#result(what, resp);
      const asked = retryAfterMs(resp.headers.get("retry-after"));
      const wait = asked ?? Math.min(BACKOFF_CAP_MS, BACKOFF_MS * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      const spent = Date.now() - started;
      await resp.body?.cancel().catch(() => {});
      if (attempt >= maxAttempts || spent + wait > maxRetryMs) {
        const why = attempt >= maxAttempts ? `after ${attempt} attempts` : `asked to wait ${Math.round(wait)} ms, beyond the ${maxRetryMs} ms retry budget`;
        this.log("warn", `${what} answered ${resp.status}; giving up ${why}`);
        throw new BackendError(`${what}: the service is busy (${resp.status}); gave up ${why}, try again later`,
          resp.status, resp.status === 429 ? "rate_limited" : "unavailable");
      }
      this.log("info", `${what} answered ${resp.status}; retrying in ${Math.round(wait)} ms (attempt ${attempt + 1} of ${maxAttempts})`);
      await sleep(wait);
    }
  }

  async #result(what, resp) {
    const type = resp.headers.get("content-type") || "";
    const text = await resp.text();
    if (resp.ok) {
      if (!text) return null;
      return type.includes("json") ? JSON.parse(text) : text;
    }
    let code = "http_" + resp.status;
    let message = text.slice(0, 300);
    try {
      const err = JSON.parse(text).error;
      if (err?.message) {
        code = err.code || code;
        message = err.message;
      }
    } catch { /* not the backend's JSON error: keep the start of the text */ }
    throw new BackendError(this.redact(`${what}: ${resp.status} ${code}: ${message}`), resp.status, code);
  }
}
