// The public API, called from the page itself with the signed-in key. The key lives in this tab's
// sessionStorage and in the Authorization header, nowhere else: never a URL, a cookie or a log line.

const KEY_NAME = "pullbridge.api_key";

/** The API's root: the directory the console page is served from (`/console` -> `/`). */
const API_ROOT = new URL(".", window.location.href);

export class ApiError extends Error {
  constructor(status, error) {
    super(error && error.message ? error.message : `the API answered ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.type = error && error.type ? error.type : "unknown";
    this.key = error && error.key ? error.key : null;
    this.data = error && error.data ? error.data : {};
  }
}

const unauthorizedListeners = [];

export const session = {
  key() {
    return sessionStorage.getItem(KEY_NAME);
  },
  signIn(key) {
    sessionStorage.setItem(KEY_NAME, key);
  },
  signOut() {
    sessionStorage.removeItem(KEY_NAME);
  },
  /** Called when a signed-in request is refused with 401 (the key was revoked). */
  onUnauthorized(listener) {
    unauthorizedListeners.push(listener);
  },
};

/** `api("GET", ["events", id])`: path segments are encoded; empty query values are left out. */
export async function api(method, segments, { query = {}, body, signal, key } = {}) {
  const apiKey = key ?? session.key();
  const path = (Array.isArray(segments) ? segments : [segments]).map((s) => encodeURIComponent(String(s))).join("/");
  const url = new URL(path, API_ROOT);
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { accept: "application/json", authorization: `Bearer ${apiKey ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { type: "network", message: "Cannot reach the API: check your connection and retry." });
  }
  const payload = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, payload && payload.error);
    if (response.status === 401 && key === undefined) unauthorizedListeners.forEach((listener) => listener(error));
    throw error;
  }
  return payload;
}

/** Every page of a list, up to `maxPages`, as one array. */
export async function listAll(segments, { query = {}, signal, maxPages = 10 } = {}) {
  const items = [];
  let cursor;
  for (let page = 0; page < maxPages; page += 1) {
    const result = await api("GET", segments, { query: { ...query, cursor }, signal });
    items.push(...result.data);
    if (!result.has_more) break;
    cursor = result.next_cursor;
  }
  return items;
}

export const PROVIDERS = ["stripe", "github", "shopify", "hubspot", "standard", "generic"];
export const SOURCES = ["webhook", "pull", "mutation"];

/** The credential each provider's pulls read (see docs/providers/). */
export const CREDENTIAL_NAMES = {
  stripe: "api_key",
  github: "token",
  shopify: "access_token",
  hubspot: "access_token",
  generic: "bearer_token",
  standard: "",
};
