// HTTP client of the Session Viewer API (see session_viewer/API.md). Every failure is a typed error.

const BACKEND_KEY = "sessionViewer.backendPassword";
const SESSION_KEY = "sessionViewer.sessionPasswords";

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}
/** 401: the password is missing or wrong. */
export class AuthError extends ApiError {
  constructor(message) {
    super(message, 401);
    this.name = "AuthError";
  }
}
/** 404: no such session. */
export class NotFoundError extends ApiError {
  constructor(message) {
    super(message, 404);
    this.name = "NotFoundError";
  }
}
/** 400/422: the query was refused (bad filter, bad date). */
export class BadRequestError extends ApiError {
  constructor(message, status = 400) {
    super(message, status);
    this.name = "BadRequestError";
  }
}
/** 5xx: the backend or its database failed. */
export class ServerError extends ApiError {
  constructor(message, status) {
    super(message, status);
    this.name = "ServerError";
  }
}
/** The backend could not be reached at all. */
export class NetworkError extends ApiError {
  constructor(message) {
    super(message, 0);
    this.name = "NetworkError";
  }
}

// The collection read, "<database>.<collection>"; null: the one the backend is configured with. It comes from
// the page's ?collection= parameter, so a link to a session in another collection opens it there.
let collection = new URLSearchParams(window.location.search).get("collection") || null;

export function getCollection() {
  return collection;
}

export function setCollection(namespace) {
  collection = namespace || null;
}

function collectionParams(params = new URLSearchParams()) {
  if (collection) params.set("collection", collection);
  return params;
}

function withCollection(path) {
  const params = collectionParams().toString();
  return params ? `${path}?${params}` : path;
}

// Passwords live in sessionStorage: gone when the tab closes, never in a URL.
function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function getBackendPassword() {
  return storage()?.getItem(BACKEND_KEY) || null;
}

export function setBackendPassword(password) {
  storage()?.setItem(BACKEND_KEY, password);
}

function sessionPasswords() {
  try {
    const parsed = JSON.parse(storage()?.getItem(SESSION_KEY) || "{}");
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

export function getSessionPassword(sessionId) {
  const passwords = sessionPasswords();
  return Object.prototype.hasOwnProperty.call(passwords, sessionId) ? passwords[sessionId] : null;
}

export function setSessionPassword(sessionId, password) {
  const passwords = sessionPasswords();
  if (password) passwords[sessionId] = password;
  else delete passwords[sessionId];
  storage()?.setItem(SESSION_KEY, JSON.stringify(passwords));
}

/** True when any password (backend or per-session) is remembered in this tab. */
export function hasStoredPasswords() {
  return Boolean(getBackendPassword()) || Object.keys(sessionPasswords()).length > 0;
}

/** Forget every password (log out). */
export function clearPasswords() {
  storage()?.removeItem(BACKEND_KEY);
  storage()?.removeItem(SESSION_KEY);
}

function detailMessage(body, fallback) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc: [...], msg: "..."}]
    return detail.map((item) => [item.loc?.slice(1).join("."), item.msg].filter(Boolean).join(": ")).join("; ");
  }
  return fallback;
}

async function request(path, { headers = {}, signal } = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json", ...headers }, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new NetworkError("The viewer backend cannot be reached.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok) return body;
  const message = detailMessage(body, `${response.status} ${response.statusText}`.trim());
  if (response.status === 401 || response.status === 403) throw new AuthError(message);
  if (response.status === 404) throw new NotFoundError(message);
  if (response.status === 400 || response.status === 422) throw new BadRequestError(message, response.status);
  if (response.status >= 500) throw new ServerError(message, response.status);
  throw new ApiError(message, response.status);
}

function backendHeaders(password = getBackendPassword()) {
  return password ? { Authorization: `Bearer ${password}` } : {};
}

/** GET /health (no auth). */
export function getHealth({ signal } = {}) {
  return request("/health", { signal });
}

/** Check a backend password; resolves to the collections listing (as getCollections) when it is right. */
export function checkBackendPassword(password) {
  return request("/api/v1/collections", { headers: backendHeaders(password) });
}

/**
 * GET /api/v1/collections -> {default: "db.coll", collections: ["db.coll", ...], snapshots: "db.coll" | null}
 * (the default first; snapshots: the snapshot storage collection, when it exists).
 */
export async function getCollections() {
  const body = await request("/api/v1/collections", { headers: backendHeaders() });
  const collections = Array.isArray(body?.collections) ? body.collections.filter((n) => typeof n === "string") : [];
  return {
    default: typeof body?.default === "string" ? body.default : collections[0] || "",
    collections,
    snapshots: typeof body?.snapshots === "string" ? body.snapshots : null,
  };
}

/** GET /api/v1/metadata-fields -> [{field, path, type, values}] of the collection read. */
export async function getMetadataFields() {
  const body = await request(withCollection("/api/v1/metadata-fields"), { headers: backendHeaders() });
  return Array.isArray(body?.fields) ? body.fields : [];
}

/**
 * GET /api/v1/sessions/search.
 * query: {sessionId, sessionIdMode ("prefix" | "contains"), application, createdAtStart, createdAtEnd (ISO strings),
 *        filters: {field: value}, limit, offset}
 */
export function searchSessions(query, { signal } = {}) {
  const params = collectionParams();
  if (query.sessionId) params.set("session_id", query.sessionId);
  if (query.sessionId && query.sessionIdMode === "contains") params.set("session_id_mode", "contains");
  if (query.application) params.set("application", query.application);
  if (query.createdAtStart) params.set("created_at_start", query.createdAtStart);
  if (query.createdAtEnd) params.set("created_at_end", query.createdAtEnd);
  if (query.filters && Object.keys(query.filters).length) params.set("filters", JSON.stringify(query.filters));
  if (query.limit) params.set("limit", String(query.limit));
  params.set("offset", String(query.offset || 0));
  return request(`/api/v1/sessions/search?${params}`, { headers: backendHeaders(), signal });
}

/** GET /api/v1/sessions/{id}: with the backend password, or else that session's viewer password. */
export function getSession(sessionId, { signal } = {}) {
  const headers = backendHeaders();
  if (!headers.Authorization) {
    const sessionPassword = getSessionPassword(sessionId);
    if (sessionPassword) headers["X-Session-Password"] = sessionPassword;
  }
  return request(withCollection(`/api/v1/sessions/${encodeURIComponent(sessionId)}`), { headers, signal });
}

/**
 * GET /api/v1/snapshots/search (backend password only): snapshot sessions, in id order.
 * query: {sessionId, offset} -> {available, collection, total, limit, offset, sessions: [{session_id, agent_ids, checkpoint_count}]}
 */
export function searchSnapshotSessions(query, { signal } = {}) {
  const params = new URLSearchParams();
  if (query.sessionId) params.set("session_id", query.sessionId);
  params.set("offset", String(query.offset || 0));
  return request(`/api/v1/snapshots/search?${params}`, { headers: backendHeaders(), signal });
}

/** GET /api/v1/snapshots/{id}: the latest snapshot of a snapshot session, read-only (backend password only). */
export function getSnapshotSession(sessionId, { signal } = {}) {
  return request(`/api/v1/snapshots/${encodeURIComponent(sessionId)}`, { headers: backendHeaders(), signal });
}

/**
 * GET /api/v1/metrics (backend auth only): the dashboard's figures of the collection read.
 * query: {start, end (YYYY-MM-DD, UTC, inclusive), application, agent, model, filters: {field: value}}
 * -> {start, end, days: [...one row per day...], totals: {...}, tools: [...], models: [...]}
 */
export function getMetrics(query, { signal } = {}) {
  const params = collectionParams();
  params.set("start", query.start);
  params.set("end", query.end);
  if (query.application) params.set("application", query.application);
  if (query.agent) params.set("agent", query.agent);
  if (query.model) params.set("model", query.model);
  if (query.filters && Object.keys(query.filters).length) params.set("filters", JSON.stringify(query.filters));
  return request(`/api/v1/metrics?${params}`, { headers: backendHeaders(), signal });
}
