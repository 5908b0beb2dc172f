// api.js: every call to /api/v1. Owns the credentials (an Authorization
// header value in sessionStorage only), JSON decoding, ApiError, and what a
// 401 or a read-only answer sets off.

const STORAGE_KEY = 'berth.authorization';

let unauthorizedHandler = () => {};
let readOnlyHandler = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || fallbackMessage(status));
    this.status = status;
    this.code = body?.error ?? 'unknown';
    this.retryAfter = body?.retry_after ?? null;
    this.until = body?.until ?? null;
  }
}

function fallbackMessage(status) {
  if (status === 0) return 'The Berth server could not be reached. Check the connection and try again.';
  return `The Berth server answered with status ${status} and no explanation.`;
}

// Called after a 401 from any call made with redirectOn401 (the default).
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

// Called after any 503 read_only answer.
export function onReadOnly(handler) {
  readOnlyHandler = handler;
}

export function storedAuthorization() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeAuthorization(value) {
  sessionStorage.setItem(STORAGE_KEY, value);
}

export function clearAuthorization() {
  sessionStorage.removeItem(STORAGE_KEY);
}

// "Basic " + base64 of the UTF-8 bytes of "user:password".
export function basicAuthorization(user, password) {
  const utf8 = new TextEncoder().encode(`${user}:${password}`);
  let binary = '';
  for (const byte of utf8) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

// Fetches path and answers its JSON body, or throws ApiError (status 0 when
// the server was not reached). An aborted signal throws the AbortError.
export async function request(path, options = {}) {
  const { method = 'GET', signal, authorization = storedAuthorization(), redirectOn401 = true } = options;
  const headers = { Accept: 'application/json' };
  if (authorization) headers.Authorization = authorization;
  let response;
  try {
    response = await fetch(path, { method, headers, signal, cache: 'no-store' });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, null);
  }
  const body = await readJson(response);
  if (response.ok && body !== null) return body;
  const error = response.ok
    ? new ApiError(502, { error: 'registry_unreachable', message: 'The Berth server answered something that is not JSON.' })
    : new ApiError(response.status, body);
  if (error.status === 401 && redirectOn401) {
    clearAuthorization();
    unauthorizedHandler();
  }
  if (error.code === 'read_only') readOnlyHandler();
  throw error;
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

// For a stream of requests where each new one makes the one before stale:
// next() aborts the previous signal and answers a fresh one. All of them
// abort with parent (the page's signal).
export function latestOnly(parent) {
  let controller = null;
  parent.addEventListener('abort', () => controller?.abort(), { once: true });
  return () => {
    controller?.abort();
    controller = new AbortController();
    if (parent.aborted) controller.abort();
    return controller.signal;
  };
}
