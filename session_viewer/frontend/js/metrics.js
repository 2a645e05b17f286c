// The Metrics view (#/metrics): a date range and filters, a totals row and one panel per figure, from one
// GET /api/v1/metrics request. Days are UTC calendar days, as the API counts them.

import * as api from "./api.js";
import { barChart, formatNumber, horizontalBarChart, lineChart } from "./charts.js";
import { el, replaceChildren } from "./dom.js";
import { metadataControl } from "./filters.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_DAYS = 30;

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

/** A Date's UTC calendar day as YYYY-MM-DD. */
function utcDay(date) {
  return date.toISOString().slice(0, 10);
}

/** The default range: the last 30 UTC days, today included. */
export function defaultRange(now = new Date()) {
  return { start: utcDay(new Date(now.getTime() - (DEFAULT_DAYS - 1) * DAY_MS)), end: utcDay(now) };
}

const SHORT_DAY = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

/** "Nov 26" for "2026-11-26" (axis labels; the tables keep the full day). */
function shortDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? day : SHORT_DAY.format(date);
}

const ms = (value) => (typeof value === "number" ? `${formatNumber(value)} ms` : "—");
const percent = (value) => (typeof value === "number" ? `${formatNumber(value * 100)}%` : "—");

const TOTALS = [
  ["sessions", "Sessions"],
  ["messages", "Messages"],
  ["invocations", "Invocations"],
  ["input_tokens", "Input tokens"],
  ["output_tokens", "Output tokens"],
  ["cache_read_tokens", "Cache read tokens"],
  ["cache_write_tokens", "Cache write tokens"],
  ["latency_p50", "Latency p50", ms],
  ["latency_p95", "Latency p95", ms],
  ["ttfb_p50", "Time to first byte p50", ms],
  ["ttfb_p95", "Time to first byte p95", ms],
  ["feedback_up", "Feedback up"],
  ["feedback_down", "Feedback down"],
  ["feedback_none", "Feedback unrated"],
  ["feedback_ratio", "Up ratio", percent],
];

function totalsRow(totals) {
  return el(
    "dl",
    { class: "metric-totals", "aria-label": "Totals" },
    TOTALS.map(([key, label, format = formatNumber]) => {
      const value = totals?.[key];
      return el(
        "div",
        { class: "metric-total", dataset: { metric: key, value: value === null || value === undefined ? "" : value } },
        el("dt", { text: label }),
        el("dd", { text: format(value) }),
      );
    }),
  );
}

function panel(name, title, note, body) {
  const headingId = nextId("metric-panel");
  return el(
    "section",
    { class: "card metric-panel", dataset: { panel: name }, "aria-labelledby": headingId },
    el("h3", { id: headingId, class: "metric-panel-title", text: title }),
    note ? el("p", { class: "metric-note", text: note }) : null,
    body,
  );
}

function dayRows(days, keys) {
  return days.map((day) => ({
    label: day.day,
    values: Object.fromEntries(keys.map((key) => [key, day[key] ?? null])),
  }));
}

function isEmpty(data) {
  const totals = data.totals || {};
  return ["sessions", "messages", "invocations", "feedback_up", "feedback_down", "feedback_none"].every(
    (key) => !totals[key],
  );
}

function ratioNote(totals) {
  const up = totals.feedback_up || 0;
  const down = totals.feedback_down || 0;
  if (typeof totals.feedback_ratio !== "number") return "Up ratio: — (no rated feedback in this range).";
  return `Up ratio: ${percent(totals.feedback_ratio)} (${formatNumber(up)} up, ${formatNumber(down)} down).`;
}

function panels(data) {
  const days = Array.isArray(data.days) ? data.days : [];
  const tools = Array.isArray(data.tools) ? data.tools : [];
  const models = Array.isArray(data.models) ? data.models : [];
  const totals = data.totals || {};
  const common = { shortLabel: shortDay };
  return [
    panel(
      "activity",
      "Sessions and messages per day",
      "Sessions by creation day; messages (user and assistant) by the day they were written.",
      barChart({
        ...common,
        title: "Sessions and messages per day",
        rows: dayRows(days, ["sessions", "messages"]),
        series: [
          { key: "sessions", label: "Sessions", tone: "accent" },
          { key: "messages", label: "Messages", tone: "assistant" },
        ],
      }),
    ),
    panel(
      "tokens",
      "Tokens per day",
      "Input and output tokens of the invocations closed that day.",
      barChart({
        ...common,
        title: "Input and output tokens per day",
        stacked: true,
        rows: dayRows(days, ["input_tokens", "output_tokens"]),
        series: [
          { key: "input_tokens", label: "Input tokens", tone: "accent" },
          { key: "output_tokens", label: "Output tokens", tone: "assistant" },
        ],
      }),
    ),
    panel(
      "latency",
      "Latency per day",
      "Per invocation, in milliseconds: median (p50) and 95th percentile.",
      lineChart({
        ...common,
        title: "Latency p50 and p95 per day (ms)",
        rows: dayRows(days, ["latency_p50", "latency_p95"]),
        format: ms,
        series: [
          { key: "latency_p50", label: "p50", tone: "accent" },
          { key: "latency_p95", label: "p95", tone: "warn" },
        ],
      }),
    ),
    panel(
      "ttfb",
      "Time to first byte per day",
      "First model call of each invocation, in milliseconds: p50 and p95.",
      lineChart({
        ...common,
        title: "Time to first byte p50 and p95 per day (ms)",
        rows: dayRows(days, ["ttfb_p50", "ttfb_p95"]),
        format: ms,
        series: [
          { key: "ttfb_p50", label: "p50", tone: "accent" },
          { key: "ttfb_p95", label: "p95", tone: "warn" },
        ],
      }),
    ),
    panel(
      "feedback",
      "Feedback per day",
      ratioNote(totals),
      barChart({
        ...common,
        title: "Feedback per day: up, down and unrated",
        stacked: true,
        rows: dayRows(days, ["feedback_up", "feedback_down", "feedback_none"]),
        series: [
          { key: "feedback_up", label: "Up", tone: "ok" },
          { key: "feedback_down", label: "Down", tone: "bad" },
          { key: "feedback_none", label: "Unrated", tone: "muted" },
        ],
      }),
    ),
    panel(
      "tools",
      "Top tools",
      "Calls per tool (top 10), succeeded and failed.",
      tools.length
        ? horizontalBarChart({
            title: "Top tools by calls",
            labelHeading: "Tool",
            rows: tools.map((tool) => ({
              label: String(tool.tool),
              values: { succeeded: Math.max((tool.calls || 0) - (tool.errors || 0), 0), errors: tool.errors || 0 },
              calls: tool.calls,
              errorRate: tool.error_rate,
            })),
            series: [
              { key: "succeeded", label: "Succeeded", tone: "ok" },
              { key: "errors", label: "Errors", tone: "bad" },
            ],
            extraColumns: [
              { key: "calls", label: "Calls", value: (row) => formatNumber(row.calls), data: (row) => row.calls },
              {
                key: "error_rate",
                label: "Error rate",
                value: (row) => percent(row.errorRate),
                data: (row) => row.errorRate,
              },
            ],
          })
        : el("p", { class: "placeholder", text: "No tool calls in this range." }),
    ),
    panel(
      "models",
      "Tokens by model",
      "Input and output tokens per model (top 10 by total tokens).",
      models.length
        ? horizontalBarChart({
            title: "Tokens by model",
            labelHeading: "Model",
            rows: models.map((model) => ({
              label: model.model ?? "",
              display: model.model ?? "(model unknown)",
              values: { input_tokens: model.input_tokens ?? 0, output_tokens: model.output_tokens ?? 0 },
              invocations: model.invocations,
            })),
            series: [
              { key: "input_tokens", label: "Input tokens", tone: "accent" },
              { key: "output_tokens", label: "Output tokens", tone: "assistant" },
            ],
            extraColumns: [
              {
                key: "invocations",
                label: "Invocations",
                value: (row) => formatNumber(row.invocations),
                data: (row) => row.invocations,
              },
            ],
          })
        : el("p", { class: "placeholder", text: "No model usage in this range." }),
    ),
  ];
}

/**
 * Build the Metrics view inside `root`.
 * onAuthError() is called when the backend refuses the password.
 */
export function createMetricsView(root, { onAuthError }) {
  let fields = [];
  let request = 0;
  const rows = new Map(); // metadata field -> {row, read()}

  const range = defaultRange();
  const dateInput = (name, value) => el("input", { id: nextId(`metrics-${name}`), type: "date", name, value, required: true });
  const fromInput = dateInput("start", range.start);
  const toInput = dateInput("end", range.end);
  const textInput = (name, placeholder) =>
    el("input", { id: nextId(`metrics-${name}`), type: "text", name, autocomplete: "off", spellcheck: "false", placeholder });
  const applicationInput = textInput("application", "any application");
  const agentInput = textInput("agent", "any agent id");
  const modelInput = textInput("model", "any model");
  const rowList = el("ul", { class: "filter-rows", "aria-label": "Active metadata filters" });
  const addSelect = el("select", { id: nextId("metrics-add"), "aria-label": "Metadata field to filter metrics by" });
  const addButton = el("button", { type: "button", class: "secondary", text: "Add filter" });
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const status = el("p", { class: "metrics-status muted", role: "status" });
  const content = el("div", { class: "metrics-content" });

  const field = (label, input) => el("div", { class: "field" }, el("label", { for: input.id, text: label }), input);
  const form = el(
    "form",
    { class: "metrics-filters card", "aria-label": "Metrics range and filters", novalidate: true },
    el(
      "div",
      { class: "metrics-fields" },
      field("First day (UTC)", fromInput),
      field("Last day (UTC)", toInput),
      field("Application", applicationInput),
      field("Agent", agentInput),
      field("Model", modelInput),
    ),
    el(
      "fieldset",
      { class: "metadata-filters" },
      el("legend", { text: "Metadata" }),
      rowList,
      el("div", { class: "add-filter" }, addSelect, addButton),
    ),
    error,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "submit", class: "primary", text: "Apply" }),
      el("button", { type: "button", class: "secondary", text: "Last 30 days", on: { click: resetRange } }),
    ),
  );
  replaceChildren(root, form, status, content);

  function refreshAddControl() {
    const available = fields.filter((item) => !rows.has(item.field) && item.type !== "date");
    replaceChildren(
      addSelect,
      available.map((item) => el("option", { value: item.field }, item.field)),
    );
    addSelect.disabled = available.length === 0;
    addButton.disabled = available.length === 0;
    addSelect.closest("fieldset").hidden = fields.every((item) => item.type === "date");
  }

  function addFilter(name) {
    const described = fields.find((item) => item.field === name);
    if (!described || described.type === "date" || rows.has(name)) return null;
    const id = nextId("metrics-meta");
    const { control, read } = metadataControl(described, id);
    const remove = el("button", {
      type: "button",
      class: "icon-button",
      "aria-label": `Remove metrics filter ${name}`,
      title: `Remove filter ${name}`,
      text: "×",
    });
    const label = el("label", { for: id, text: name });
    const row = el("li", { class: "filter-row", dataset: { field: name } }, label, control, remove);
    remove.addEventListener("click", () => {
      rows.delete(name);
      row.remove();
      refreshAddControl();
      addSelect.focus();
    });
    rows.set(name, { row, read });
    rowList.appendChild(row);
    refreshAddControl();
    return control;
  }

  addButton.addEventListener("click", () => addFilter(addSelect.value)?.focus());

  function readQuery() {
    const start = fromInput.value;
    const end = toInput.value;
    if (!start || !end) throw new Error("Choose both days of the range.");
    if (start > end) throw new Error("The first day must not be after the last day.");
    const filters = {};
    for (const [name, { read }] of rows) {
      const value = read();
      if (value !== undefined) filters[name] = value;
    }
    return {
      start,
      end,
      application: applicationInput.value.trim(),
      agent: agentInput.value.trim(),
      model: modelInput.value.trim(),
      filters,
    };
  }

  function showError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  function resetRange() {
    const fresh = defaultRange();
    fromInput.value = fresh.start;
    toInput.value = fresh.end;
    load();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });

  function setState(state, message) {
    root.dataset.state = state;
    if (state === "loading") root.setAttribute("aria-busy", "true");
    else root.removeAttribute("aria-busy");
    status.textContent = message;
  }

  async function load() {
    let query;
    try {
      query = readQuery();
    } catch (problem) {
      showError(problem.message);
      return;
    }
    showError(null);
    const current = ++request;
    setState("loading", "Loading metrics…");
    replaceChildren(content, el("p", { class: "placeholder", text: "Loading metrics…" }));
    try {
      const data = await api.getMetrics(query);
      if (current !== request) return;
      const days = Array.isArray(data?.days) ? data.days.length : 0;
      const period = `${data.start} to ${data.end} (UTC), ${days} ${days === 1 ? "day" : "days"}`;
      if (isEmpty(data)) {
        setState("empty", period);
        replaceChildren(content, el("p", { class: "placeholder metrics-empty", text: "No data in this range" }));
        return;
      }
      setState("ready", period);
      replaceChildren(content, totalsRow(data.totals), el("div", { class: "metric-panels" }, panels(data)));
    } catch (problem) {
      if (current !== request) return;
      if (problem instanceof api.AuthError) {
        onAuthError();
        return;
      }
      setState("error", "");
      replaceChildren(content);
      showError(problem instanceof api.BadRequestError ? `Refused: ${problem.message}` : problem.message);
    }
  }

  refreshAddControl();

  return {
    /** Replace the metadata fields offered (GET /api/v1/metadata-fields); keeps the rows still valid. */
    setFields(newFields) {
      fields = Array.isArray(newFields) ? newFields.filter((item) => item && typeof item.field === "string") : [];
      for (const [name, { row }] of [...rows]) {
        if (!fields.some((item) => item.field === name && item.type !== "date")) {
          row.remove();
          rows.delete(name);
        }
      }
      refreshAddControl();
    },
    /** Load the figures of the current range and filters. */
    load,
  };
}
