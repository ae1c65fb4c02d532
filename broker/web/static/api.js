// Requests to the broker's own API, and the account key the user entered.
//
// The key lives in sessionStorage only: it is gone when the tab closes, and it is attached
// only to requests that need an account (`auth: true`), built from this page's own origin.

const KEY_STORAGE = "gpubroker.apiKey";

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

// GET an API path ("/v1/...") with query parameters given as [name, value] pairs.
// Resolves to {ok, status, body}; never rejects for an HTTP error status.
export async function apiGet(path, params = [], { auth = false } = {}) {
  if (!path.startsWith("/v1/")) {
    throw new Error(`not a broker API path: ${path}`);
  }
  const url = new URL(path, window.location.origin);
  for (const [name, value] of params) {
    url.searchParams.append(name, value);
  }
  const headers = { Accept: "application/json" };
  const key = auth ? getKey() : null;
  if (key) {
    headers.Authorization = `Bearer ${key}`;
  }
  let response;
  try {
    response = await fetch(url, { headers, credentials: "omit", cache: "no-store" });
  } catch (error) {
    return { ok: false, status: 0, body: null, network: String(error) };
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { ok: response.ok, status: response.status, body };
}

// A sentence for a failed request, from the API's error shape when it has one.
export function errorMessage(result) {
  if (result.status === 0) {
    return "the broker cannot be reached";
  }
  const error = result.body && result.body.error;
  if (error && typeof error.message === "string") {
    return error.message;
  }
  return `request failed (HTTP ${result.status})`;
}
