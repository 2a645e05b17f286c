// Values as short text for the page: dates in the reader's zone, metadata values, tool calls.

const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;

export function formatDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function formatValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value === "string" && ISO_DATE.test(value)) return formatDate(value);
  return String(value);
}

export function formatToolCall(name, input) {
  if (input && typeof input === "object") {
    const args = Object.entries(input).map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
    return `${name}(${args.join(", ")})`;
  }
  return `${name}(${input ?? ""})`;
}
