// Filter panel: session id, created-at date range and metadata filters added/removed at runtime.

import { el, replaceChildren, valueText } from "./dom.js";

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

/** Local midnight of a yyyy-mm-dd value as an ISO instant; endOfDay gives the last millisecond of that day. */
function dayToIso(value, endOfDay) {
  if (!value) return null;
  const [year, month, day] = value.split("-").map(Number);
  if (!year || !month || !day) return null;
  const date = endOfDay ? new Date(year, month - 1, day, 23, 59, 59, 999) : new Date(year, month - 1, day);
  return date.toISOString();
}

function describeType(field) {
  if (field.type === "enum") return `one of ${field.values?.length || 0} values`;
  return field.type;
}

/** The value control of a metadata field (select, number or text input) and how to read its value (undefined: none). */
export function metadataControl(field, id) {
  if (field.type === "enum" || field.type === "boolean") {
    const values = field.type === "boolean" ? [true, false] : Array.isArray(field.values) ? field.values : [];
    const select = el(
      "select",
      { id },
      values.map((value, index) => el("option", { value: String(index) }, valueText(value))),
    );
    return { control: select, read: () => (values.length ? values[Number(select.value)] : undefined) };
  }
  if (field.type === "number") {
    const input = el("input", { id, type: "number", step: "any", inputmode: "decimal" });
    return {
      control: input,
      read: () => (input.value.trim() === "" || !Number.isFinite(input.valueAsNumber) ? undefined : input.valueAsNumber),
    };
  }
  const input = el("input", {
    id,
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "exact value",
  });
  return { control: input, read: () => (input.value === "" ? undefined : input.value) };
}

/**
 * Build the filter panel inside `root`.
 * onSearch(query) is called with {sessionId, sessionIdMode ("prefix" | "contains"), application, createdAtStart, createdAtEnd,
 * filters} when the form is submitted.
 */
export function createFilterPanel(root, { onSearch }) {
  let fields = [];
  const rows = new Map(); // field name -> {row, read(), control}

  const sessionInput = el("input", {
    id: nextId("filter-session-id"),
    type: "search",
    name: "session_id",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "start of a session id",
  });
  // Off: the id starts with the text (an index range, fast). On: anywhere in the id, any case (reads every id).
  const containsInput = el("input", { id: nextId("filter-session-contains"), type: "checkbox", name: "session_id_mode" });
  const applicationInput = el("input", {
    id: nextId("filter-application"),
    type: "search",
    name: "application",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: "128",
    placeholder: "exact application name",
  });
  const fromInput = el("input", { id: nextId("filter-from"), type: "date", name: "created_from" });
  const toInput = el("input", { id: nextId("filter-to"), type: "date", name: "created_to" });
  const rowList = el("ul", { class: "filter-rows", "aria-label": "Active metadata filters" });
  const addSelect = el("select", { id: nextId("filter-add"), "aria-label": "Metadata field to filter by" });
  const addButton = el("button", { type: "button", class: "secondary", text: "Add filter" });
  const noFields = el("p", { class: "hint", text: "No indexed metadata fields to filter by." });
  const error = el("p", { class: "form-error", role: "alert", hidden: true });

  const form = el(
    "form",
    { class: "filters", role: "search", "aria-label": "Search sessions", novalidate: true },
    el(
      "div",
      { class: "field" },
      el("label", { for: sessionInput.id, text: "Session ID" }),
      sessionInput,
      el(
        "div",
        { class: "check" },
        containsInput,
        el("label", { for: containsInput.id, text: "Match anywhere in the id (slower)" }),
      ),
    ),
    el(
      "div",
      { class: "field" },
      el("label", { for: applicationInput.id, text: "Application" }),
      applicationInput,
    ),
    el(
      "fieldset",
      { class: "date-range" },
      el("legend", { text: "Created between" }),
      el("div", { class: "field" }, el("label", { for: fromInput.id, text: "From" }), fromInput),
      el("div", { class: "field" }, el("label", { for: toInput.id, text: "To" }), toInput),
    ),
    el(
      "fieldset",
      { class: "metadata-filters" },
      el("legend", { text: "Metadata" }),
      rowList,
      noFields,
      el("div", { class: "add-filter" }, addSelect, addButton),
    ),
    error,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "submit", class: "primary", text: "Search" }),
      el("button", { type: "reset", class: "secondary", text: "Clear" }),
    ),
  );
  replaceChildren(root, form);

  function refreshAddControl() {
    const available = fields.filter((field) => !rows.has(field.field));
    replaceChildren(
      addSelect,
      available.map((field) =>
        // A date field holds BSON dates: an exact-value filter (str/number/bool) can never match one.
        field.type === "date"
          ? el("option", { value: field.field, disabled: true }, `${field.field} (date: not filterable)`)
          : el("option", { value: field.field, title: describeType(field) }, field.field),
      ),
    );
    const none = !available.some((field) => field.type !== "date");
    addSelect.disabled = none;
    addButton.disabled = none;
    noFields.hidden = fields.length > 0;
    addSelect.parentElement.hidden = fields.length === 0;
  }

  function addFilter(name) {
    const field = fields.find((candidate) => candidate.field === name);
    if (!field || field.type === "date" || rows.has(name)) return null;
    const id = nextId("filter-meta");
    const { control, read } = metadataControl(field, id);
    const remove = el("button", {
      type: "button",
      class: "icon-button",
      "aria-label": `Remove filter ${name}`,
      title: `Remove filter ${name}`,
      text: "×",
    });
    const row = el(
      "li",
      { class: "filter-row", dataset: { field: name } },
      el("label", { for: id, text: name }),
      control,
      remove,
    );
    remove.addEventListener("click", () => {
      rows.delete(name);
      row.remove();
      refreshAddControl();
      addSelect.focus();
    });
    rows.set(name, { row, read, control });
    rowList.appendChild(row);
    refreshAddControl();
    return control;
  }

  addButton.addEventListener("click", () => {
    const control = addFilter(addSelect.value);
    control?.focus();
  });

  function readQuery() {
    const filters = {};
    for (const [name, { read }] of rows) {
      const value = read();
      if (value !== undefined) filters[name] = value;
    }
    const createdAtStart = dayToIso(fromInput.value, false);
    const createdAtEnd = dayToIso(toInput.value, true);
    if (createdAtStart && createdAtEnd && createdAtStart > createdAtEnd) {
      throw new Error("“From” must not be after “To”.");
    }
    return {
      sessionId: sessionInput.value.trim(),
      sessionIdMode: containsInput.checked ? "contains" : "prefix",
      application: applicationInput.value.trim(),
      createdAtStart,
      createdAtEnd,
      filters,
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let query;
    try {
      query = readQuery();
    } catch (problem) {
      showError(problem.message);
      return;
    }
    showError(null);
    onSearch(query);
  });

  form.addEventListener("reset", () => {
    // Let the browser clear the inputs first, then drop the metadata rows and search again.
    setTimeout(() => {
      for (const { row } of rows.values()) row.remove();
      rows.clear();
      refreshAddControl();
      showError(null);
      onSearch(readQuery());
    });
  });

  function showError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  refreshAddControl();

  return {
    /** Replace the metadata fields offered (from GET /api/v1/metadata-fields); keeps rows still valid. */
    setFields(newFields) {
      fields = Array.isArray(newFields) ? newFields.filter((field) => field && typeof field.field === "string") : [];
      for (const [name, { row }] of [...rows]) {
        if (!fields.some((field) => field.field === name)) {
          row.remove();
          rows.delete(name);
        }
      }
      refreshAddControl();
    },
    /** The current query (throws on an invalid date range). */
    readQuery,
    /** Show a message from the backend (e.g. a refused filter). */
    showError,
  };
}
