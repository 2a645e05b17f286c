// Builds DOM nodes with createElement and textContent only: stored data never becomes markup.

import { append, el } from "/static/common/dom.js";

// el() and append() are shared with the chat playground (web_common/static/dom.js); the rest is the viewer's.
export { append, el };

/** Replace all children of a node. */
export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A human date-time in the viewer's local zone; the ISO value stays in the datetime attribute. */
export function timeEl(iso, attrs = {}) {
  if (!iso) return el("span", { class: "muted", text: "—" });
  return el("time", { datetime: iso, title: iso, ...attrs }, formatDateTime(iso));
}

export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** Whether a value is an ISO 8601 date-time (how the API sends a stored BSON date, and how apps often store times). */
export function isDateTimeText(value) {
  return typeof value === "string" && ISO_DATE_TIME.test(value) && !Number.isNaN(new Date(value).getTime());
}

const ENCRYPTED_STATES = new Set(["no_key", "key_erased"]);

/** Whether a value is the API's marker of an encrypted value the viewer could not decrypt: {encrypted, label}. */
export function isEncryptedMarker(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value) &&
    Object.keys(value).length === 2 &&
    ENCRYPTED_STATES.has(value.encrypted) &&
    typeof value.label === "string"
  );
}

/** An encrypted value the viewer could not decrypt: its label ("encrypted, no key" or "key erased"). */
export function encryptedEl(marker) {
  return el("span", { class: "encrypted-value", dataset: { encrypted: marker.encrypted }, text: marker.label });
}

/** A metadata value to read: a date-time as the page shows dates (its ISO value in the title), anything else as text. */
export function metadataValue(value) {
  if (isEncryptedMarker(value)) return encryptedEl(value);
  return isDateTimeText(value) ? timeEl(value) : valueText(value);
}

export function formatBytes(size) {
  if (typeof size !== "number" || !Number.isFinite(size)) return "size unknown";
  if (size < 1024) return `${size} B`;
  const units = ["KB", "MB", "GB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Pretty JSON as text (for <pre>): never parsed as markup. */
export function jsonText(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** Display any metadata value as a short string. */
export function valueText(value) {
  if (value === null || value === undefined) return "null";
  if (isEncryptedMarker(value)) return value.label;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
