// Requests to the broker's own API, and the account key the user entered.
//
// The key lives in sessionStorage only: it is gone when the tab closes, and it is attached
// only to requests that need an account (`auth: true`), built from this page's own origin.
// The rental keys of rentals made in this tab are kept the same way, for their connect links.

const KEY_STORAGE = "gpubroker.apiKey";
const RENTAL_KEY_PREFIX = "gpubroker.rentalKey.";

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

// Forget the account key and every rental key.
export function clearKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  for (const name of Object.keys(sessionStorage)) {
    if (name.startsWith(RENTAL_KEY_PREFIX)) {
      sessionStorage.removeItem(name);
    }
  }
}

export function rememberRentalKey(rentalId, key) {
  if (key) {
    sessionStorage.setItem(RENTAL_KEY_PREFIX + rentalId, key);
  }
}

// A rental's connect URL, carrying its rental key when this tab knows it: the broker then sets
// the key as a cookie for that rental's connect path (an account key is never put in a URL).
export function connectHref(rental) {
  const key = sessionStorage.getItem(RENTAL_KEY_PREFIX + rental.id);
  return key ? `${rental.connect_url}?gpubroker_key=${encodeURIComponent(key)}` : rental.connect_url;
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
  return readResponse(() => fetch(url, { headers, credentials: "omit", cache: "no-store" }));
}

// Send a JSON body (or none) with the account key: POST, PUT or DELETE on an API path.
// An idempotency key, when given, makes a retried request return the first one's result.
export async function apiSend(method, path, body = null, { idempotencyKey = null } = {}) {
  if (!path.startsWith("/v1/")) {
    throw new Error(`not a broker API path: ${path}`);
  }
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) {
    headers.Authorization = `Bearer ${key}`;
  }
  if (body !== null) {
    headers["Content-Type"] = "application/json";
  }
  if (idempotencyKey) {
    headers["Idempotency-Key"] = idempotencyKey;
  }
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== null) {
    init.body = JSON.stringify(body);
  }
  return readResponse(() => fetch(new URL(path, window.location.origin), init));
}

async function readResponse(send) {
  let response;
  try {
    response = await send();
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
