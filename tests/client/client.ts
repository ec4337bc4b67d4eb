// A dashboard's calls, typed from the OpenAPI document (tests/test_typed_client.py generates ./api.ts
// with openapi-typescript and type-checks this file with tsc --strict). Not run: compiled only.
import type { components, paths } from "./api";

type Schemas = components["schemas"];
type ApiError = Schemas["Error"];

const BASE = "http://127.0.0.1:8080";

async function call<T>(method: string, path: string, token: string, body?: unknown,
                       headers: Record<string, string> = {}): Promise<{ status: number; etag: string | null; data: T }> {
  const r = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) {
    const err = (await r.json()) as ApiError;
    throw new Error(`${r.status} ${err.error.code}: ${err.error.message}`);
  }
  return { status: r.status, etag: r.headers.get("ETag"), data: (r.status === 204 ? null : await r.json()) as T };
}

// create a deployment (retry-safe with an Idempotency-Key)
type CreateBody = paths["/deployments"]["post"]["requestBody"]["content"]["application/json"];
type Created = paths["/deployments"]["post"]["responses"]["201"]["content"]["application/json"];
export async function createDeployment(token: string): Promise<string> {
  const body: CreateBody = { gcpProject: "acme-bots", zone: "us-central1-a", botName: "Ada", primaryModel: "openai/gpt-4.1" };
  const { data } = await call<Created>("POST", "/deployments", token, body, { "Idempotency-Key": crypto.randomUUID() });
  const status: "provisioning" | "running" | "stopped" | "error" = data.deployment.status;
  const fallbacks: string[] = data.deployment.fallbackModels; // always sent: not optional
  return `${data.deployment._id} ${status} ${fallbacks.length} ${data.job.action}`;
}

// list every deployment, page by page
type DeploymentPage = paths["/deployments"]["get"]["responses"]["200"]["content"]["application/json"];
type ListQuery = NonNullable<paths["/deployments"]["get"]["parameters"]["query"]>;
export async function allDeployments(token: string): Promise<Schemas["Deployment"][]> {
  const out: Schemas["Deployment"][] = [];
  let cursor: string | null = null;
  do {
    const q: ListQuery = { limit: 50, ...(cursor ? { cursor } : {}) };
    const qs = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)])).toString();
    const page: DeploymentPage = (await call<DeploymentPage>("GET", `/deployments?${qs}`, token)).data;
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return out;
}

// edit the profile without overwriting another tab's edit
type ProfilePatch = paths["/users/me"]["patch"]["requestBody"]["content"]["application/json"];
type Me = Schemas["User"];
export async function rename(token: string, name: string): Promise<string> {
  const read = await call<Me>("GET", "/users/me", token);
  const email: string = read.data.email; // always sent: a string, never undefined
  const patch: ProfilePatch = { name }; // the README's own call: only the field it changes
  try {
    const { data } = await call<Me>("PATCH", "/users/me", token, patch, read.etag ? { "If-Match": read.etag } : {});
    return `${email}: ${data.name}`;
  } catch (e) {
    return e instanceof Error && e.message.startsWith("412") ? "changed elsewhere: read again" : String(e);
  }
}
