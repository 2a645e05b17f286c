// The app: sign-in, hash routing (#/, #/sessions/<id>, #/snapshots/<id> and #/metrics), the collection switch,
// health polling, and wiring of the panels and views. Snapshot sessions (strands' SnapshotSessionManager on
// MongoDBStorage) are listed under the sessions when their collection exists, and open read-only with the backend password only. The collection read is the page's ?collection= parameter (absent: the backend's configured one).

import * as api from "./api.js";
import { createSessionDetail } from "./detail.js";
import { el, replaceChildren } from "./dom.js";
import { createFilterPanel } from "./filters.js";
import { createMetricsView } from "./metrics.js";
import { createResultsList, snapshotHref, snapshotLines } from "./results.js";

const HEALTH_INTERVAL_MS = 15000;
const NARROW = window.matchMedia("(max-width: 760px)");

const $ = (id) => document.getElementById(id);
const ui = {
  health: $("health"),
  healthText: $("health-text"),
  logout: $("logout"),
  loginView: $("login-view"),
  loginForm: $("login-form"),
  loginTitle: $("login-title"),
  loginIntro: $("login-intro"),
  loginLabel: $("login-label"),
  loginPassword: $("login-password"),
  loginError: $("login-error"),
  loginSubmit: $("login-submit"),
  loginMode: $("login-mode"),
  loginSwitch: $("login-switch"),
  workspace: $("workspace"),
  resultsCount: $("results-count"),
  collectionPicker: $("collection-picker"),
  collectionSelect: $("collection-select"),
  snapshots: $("snapshots"),
  snapshotsCount: $("snapshots-count"),
  viewNav: $("view-nav"),
  metricsView: $("metrics-view"),
};

const state = {
  searchReady: false, // metadata fields loaded and a first search run with the backend password
  query: { filters: {} },
  offset: 0,
  loginMode: "backend", // or "session"
  searchRequest: 0,
  sessionRequest: 0,
  openSessionId: null,
  snapshotRequest: 0,
  openSnapshotId: null,
  defaultCollection: null, // the backend's configured "<database>.<collection>", once listed
  fields: [], // the indexed metadata fields of the collection read (GET /api/v1/metadata-fields)
};

const filters = createFilterPanel($("filters"), {
  onSearch(query) {
    state.query = query;
    runSearch(0, { showResults: true });
  },
});
const results = createResultsList($("results"), { onPage: (offset) => runSearch(offset, { showResults: true }) });
const snapshotResults = createResultsList($("snapshot-results"), {
  onPage: (offset) => runSnapshotSearch(offset),
  href: snapshotHref,
  lines: snapshotLines,
  label: "Snapshot sessions",
  empty: "No snapshot sessions match.",
});
const detail = createSessionDetail($("detail"));
let metrics = null; // built when the Metrics view first opens: until then its form is not in the page

function metricsView() {
  if (!metrics) {
    metrics = createMetricsView($("metrics"), { onAuthError: () => backendPasswordRejected() });
    metrics.setFields(state.fields);
  }
  return metrics;
}

// ---- routing -------------------------------------------------------------------------------------------------

function currentRoute() {
  if (window.location.hash === "#/metrics") return { view: "metrics" };
  const match = /^#\/(sessions|snapshots)\/(.+)$/.exec(window.location.hash);
  if (!match) return { view: "search" };
  try {
    return { view: match[1] === "snapshots" ? "snapshot" : "session", sessionId: decodeURIComponent(match[2]) };
  } catch {
    return { view: "search" };
  }
}

async function route() {
  const target = currentRoute();
  if (api.getBackendPassword() && target.view === "metrics") {
    showMetrics();
    if (!state.searchReady) await startSearch();
    if (!api.getBackendPassword()) return; // refused while starting: the sign-in form is showing
    metricsView().load();
    return;
  }
  if (api.getBackendPassword()) {
    showWorkspace("search");
    if (!state.searchReady) await startSearch();
    if (!api.getBackendPassword()) return; // refused while starting: the sign-in form is showing
    if (target.view === "session") openSession(target.sessionId);
    else if (target.view === "snapshot") openSnapshot(target.sessionId);
    else closeSession();
    return;
  }
  if (target.view === "session" && api.getSessionPassword(target.sessionId)) {
    showWorkspace("session");
    openSession(target.sessionId);
    return;
  }
  showLogin(target.view === "session" ? "session" : "backend");
}

window.addEventListener("hashchange", route);

// ---- views ---------------------------------------------------------------------------------------------------

function showWorkspace(mode) {
  ui.loginView.hidden = true;
  ui.metricsView.hidden = true;
  showViewNav(mode === "search" ? "search" : null);
  ui.workspace.hidden = false;
  ui.workspace.dataset.mode = mode;
  ui.logout.hidden = false;
  if (mode === "session") setPanel("detail");
}

/** The metrics view (#/metrics), backend password only; the header's collection applies to it too. */
function showMetrics() {
  ui.loginView.hidden = true;
  ui.workspace.hidden = true;
  ui.metricsView.hidden = false;
  ui.logout.hidden = false;
  showViewNav("metrics");
  document.title = "Metrics · Session Viewer";
}

/** Show the Sessions/Metrics links (backend password only), the current one marked; null: hide them. */
function showViewNav(current) {
  ui.viewNav.hidden = !current;
  for (const link of ui.viewNav.querySelectorAll("a")) {
    if (link.dataset.view === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current === "search" && document.title.startsWith("Metrics")) document.title = "Session Viewer";
}

function showLogin(mode, message = null) {
  const target = currentRoute();
  state.loginMode = mode;
  ui.workspace.hidden = true;
  ui.metricsView.hidden = true;
  showViewNav(null);
  ui.loginView.hidden = false;
  ui.logout.hidden = !api.hasStoredPasswords();
  if (mode === "session") {
    ui.loginTitle.textContent = "Open a shared session";
    ui.loginIntro.textContent = `Enter the viewer password of session “${target.sessionId}”.`;
    ui.loginLabel.textContent = "Session password";
    ui.loginSubmit.textContent = "Open session";
    ui.loginMode.textContent = "Use the backend password instead";
    ui.loginSwitch.hidden = false;
  } else {
    ui.loginTitle.textContent = "Sign in";
    ui.loginIntro.textContent =
      target.view === "session"
        ? `Enter the backend password to open “${target.sessionId}” and search all sessions.`
        : target.view === "snapshot"
          ? `Enter the backend password to open snapshot session “${target.sessionId}” (snapshot sessions have no session password).`
          : target.view === "metrics"
            ? "Enter the backend password to see the metrics."
            : "Enter the backend password to search sessions.";
    ui.loginLabel.textContent = "Backend password";
    ui.loginSubmit.textContent = "Sign in";
    ui.loginMode.textContent = "Use this session's password instead";
    ui.loginSwitch.hidden = target.view !== "session";
  }
  ui.loginPassword.value = "";
  setLoginError(message);
  ui.loginPassword.focus();
}

function setLoginError(message) {
  ui.loginError.textContent = message || "";
  ui.loginError.hidden = !message;
  if (message) ui.loginPassword.setAttribute("aria-invalid", "true");
  else ui.loginPassword.removeAttribute("aria-invalid");
}

ui.loginMode.addEventListener("click", () => showLogin(state.loginMode === "session" ? "backend" : "session"));

ui.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = ui.loginPassword.value;
  if (!password) {
    setLoginError("Enter a password.");
    return;
  }
  ui.loginSubmit.disabled = true;
  try {
    if (state.loginMode === "session") {
      const target = currentRoute();
      if (target.view !== "session") return showLogin("backend");
      api.setSessionPassword(target.sessionId, password);
      const session = await api.getSession(target.sessionId);
      showWorkspace("session");
      showSession(target.sessionId, session);
    } else {
      await api.checkBackendPassword(password);
      api.setBackendPassword(password);
      await route();
    }
  } catch (error) {
    if (state.loginMode === "session") api.setSessionPassword(currentRoute().sessionId, null);
    if (error instanceof api.AuthError) setLoginError("That password is not right.");
    else if (error instanceof api.NotFoundError) setLoginError("This session does not exist.");
    else setLoginError(error.message || "Signing in failed.");
    ui.loginPassword.select();
  } finally {
    ui.loginSubmit.disabled = false;
  }
});

ui.logout.addEventListener("click", () => {
  api.clearPasswords();
  state.searchReady = false;
  ui.collectionPicker.hidden = true;
  ui.snapshots.hidden = true;
  state.openSessionId = null;
  state.openSnapshotId = null;
  detail.showEmpty();
  showLogin(currentRoute().view === "session" ? "session" : "backend");
});

/** The backend password stopped working (changed on the server): ask again. */
function backendPasswordRejected() {
  api.clearPasswords();
  state.searchReady = false;
  ui.collectionPicker.hidden = true;
  ui.snapshots.hidden = true;
  showLogin("backend", "The backend refused the password. Please sign in again.");
}

// ---- panels (one at a time on a phone) --------------------------------------------------------------------------

function setPanel(name, { focus = false } = {}) {
  ui.workspace.dataset.panel = name;
  for (const button of ui.workspace.querySelectorAll(".panel-switcher button")) {
    button.setAttribute("aria-pressed", String(button.dataset.panel === name));
  }
  if (focus && NARROW.matches) $(`panel-${name}`).querySelector(".panel-title")?.focus();
}

for (const button of ui.workspace.querySelectorAll(".panel-switcher button")) {
  button.addEventListener("click", () => setPanel(button.dataset.panel, { focus: true }));
}

// ---- which collection ----------------------------------------------------------------------------------------

/** Keep the chosen collection in the page URL (?collection=), so that a reload or a shared link reads it too. */
function rememberCollection() {
  const url = new URL(window.location.href);
  if (api.getCollection()) url.searchParams.set("collection", api.getCollection());
  else url.searchParams.delete("collection");
  window.history.replaceState(window.history.state, "", url);
}

/** Show the collections that hold sessions in the header, the one read selected. */
async function loadCollections() {
  const listing = await api.getCollections();
  state.defaultCollection = listing.default;
  if (api.getCollection() && !listing.collections.includes(api.getCollection())) {
    api.setCollection(null); // a stale link: read the configured collection
    rememberCollection();
  }
  const current = api.getCollection() || listing.default;
  replaceChildren(
    ui.collectionSelect,
    listing.collections.map((name) =>
      el("option", { value: name, text: name, selected: name === current }),
    ),
  );
  ui.collectionSelect.value = current;
  ui.collectionSelect.title = `Reading ${current}`;
  ui.collectionPicker.hidden = false;
}

ui.collectionSelect.addEventListener("change", async () => {
  const chosen = ui.collectionSelect.value;
  api.setCollection(chosen === state.defaultCollection ? null : chosen);
  rememberCollection();
  ui.collectionSelect.title = `Reading ${chosen}`;
  const view = currentRoute().view;
  if (view === "session" || view === "snapshot") window.location.hash = "#/";
  else closeSession();
  filters.showError(null);
  await loadFields();
  try {
    state.query = filters.readQuery();
  } catch {
    state.query = { filters: {} };
  }
  if (view === "metrics") metricsView().load();
  await runSearch(0, { showResults: view !== "metrics" });
});

// ---- search ----------------------------------------------------------------------------------------------------

async function loadFields() {
  try {
    state.fields = await api.getMetadataFields();
    filters.setFields(state.fields);
    metrics?.setFields(state.fields);
  } catch (error) {
    if (error instanceof api.AuthError) return backendPasswordRejected();
    filters.showError(`Metadata fields could not be loaded: ${error.message}`);
  }
}

async function startSearch() {
  try {
    await loadCollections();
  } catch (error) {
    if (error instanceof api.AuthError) return backendPasswordRejected();
    filters.showError(`The collections could not be listed: ${error.message}`);
  }
  await loadFields();
  if (!api.getBackendPassword()) return;
  state.searchReady = true;
  await runSearch(0);
}

async function runSearch(offset, { showResults = false } = {}) {
  if (offset === 0) runSnapshotSearch(0); // a new search: the snapshot sessions with the same id part too
  const request = ++state.searchRequest;
  state.offset = offset;
  results.showLoading();
  if (showResults) setPanel("results", { focus: true });
  try {
    // No limit: the backend's DEFAULT_PAGE_SIZE decides, and paging follows the limit it reports.
    const page = await api.searchSessions({ ...state.query, offset });
    if (request !== state.searchRequest) return;
    results.show(page);
    results.setSelected(state.openSessionId);
    ui.resultsCount.textContent = `(${results.totalText})`;
  } catch (error) {
    if (request !== state.searchRequest) return;
    if (error instanceof api.AuthError) return backendPasswordRejected();
    results.showError(error instanceof api.BadRequestError ? `Search refused: ${error.message}` : error.message);
    ui.resultsCount.textContent = "";
  }
}

/** List the snapshot sessions matching the session id part; the section shows only when their collection exists. */
async function runSnapshotSearch(offset) {
  const request = ++state.snapshotRequest;
  snapshotResults.showLoading();
  try {
    const page = await api.searchSnapshotSessions({ sessionId: state.query.sessionId, offset });
    if (request !== state.snapshotRequest) return;
    ui.snapshots.hidden = !page.available;
    ui.snapshots.title = page.collection ? `Read-only, from ${page.collection}` : "";
    snapshotResults.show(page);
    snapshotResults.setSelected(state.openSnapshotId);
    ui.snapshotsCount.textContent = `(${page.total})`;
  } catch (error) {
    if (request !== state.snapshotRequest) return;
    if (error instanceof api.AuthError) return backendPasswordRejected();
    snapshotResults.showError(error.message);
    ui.snapshotsCount.textContent = "";
  }
}

// ---- session detail --------------------------------------------------------------------------------------------

function closeSession() {
  state.openSessionId = null;
  state.openSnapshotId = null;
  state.sessionRequest += 1;
  results.setSelected(null);
  snapshotResults.setSelected(null);
  detail.showEmpty();
  if (ui.workspace.dataset.panel === "detail") setPanel("results");
}

function showSession(sessionId, session) {
  state.openSessionId = sessionId;
  state.openSnapshotId = null;
  detail.show(session);
  results.setSelected(sessionId);
  snapshotResults.setSelected(null);
  document.title = `${sessionId} · Session Viewer`;
}

async function openSession(sessionId) {
  const request = ++state.sessionRequest;
  state.openSessionId = sessionId;
  state.openSnapshotId = null;
  results.setSelected(sessionId);
  snapshotResults.setSelected(null);
  detail.showLoading(sessionId);
  setPanel("detail", { focus: true });
  try {
    const session = await api.getSession(sessionId);
    if (request !== state.sessionRequest) return;
    showSession(sessionId, session);
  } catch (error) {
    if (request !== state.sessionRequest) return;
    if (error instanceof api.AuthError) {
      if (api.getBackendPassword()) return backendPasswordRejected();
      api.setSessionPassword(sessionId, null);
      return showLogin("session", "That password is not right for this session.");
    }
    detail.showError(error instanceof api.NotFoundError ? `Session “${sessionId}” was not found.` : error.message);
  }
}

async function openSnapshot(sessionId) {
  const request = ++state.sessionRequest;
  state.openSessionId = null;
  state.openSnapshotId = sessionId;
  results.setSelected(null);
  snapshotResults.setSelected(sessionId);
  detail.showLoading(sessionId);
  setPanel("detail", { focus: true });
  try {
    const session = await api.getSnapshotSession(sessionId);
    if (request !== state.sessionRequest) return;
    detail.showSnapshot(session);
    document.title = `${sessionId} (snapshot) · Session Viewer`;
  } catch (error) {
    if (request !== state.sessionRequest) return;
    if (error instanceof api.AuthError) return backendPasswordRejected();
    detail.showError(
      error instanceof api.NotFoundError ? `Snapshot session “${sessionId}” was not found.` : error.message,
    );
  }
}

// ---- health ----------------------------------------------------------------------------------------------------

const HEALTH_TEXT = {
  ok: "Backend OK",
  degraded: "Database unavailable",
  down: "Backend unreachable",
};

async function checkHealth() {
  let status = "down";
  let detailText = "The viewer backend cannot be reached.";
  try {
    const health = await api.getHealth();
    status = health?.status === "ok" ? "ok" : "degraded";
    detailText = `status: ${health?.status ?? "?"}, database: ${health?.database ?? "?"}`;
  } catch (error) {
    if (!(error instanceof api.NetworkError)) detailText = error.message;
  }
  ui.health.dataset.status = status;
  ui.healthText.textContent = HEALTH_TEXT[status];
  ui.health.title = `Backend health — ${detailText} (checked ${new Date().toLocaleTimeString()})`;
}

checkHealth();
setInterval(() => {
  if (!document.hidden) checkHealth();
}, HEALTH_INTERVAL_MS);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) checkHealth();
});

detail.showEmpty();
route();
