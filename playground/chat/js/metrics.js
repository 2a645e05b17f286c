// An answer's metrics (the event_loop_metrics stored with it): latency, time to first byte, tokens.

import { el } from "/static/common/dom.js";

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** One line: "812 ms model latency · first byte after 95 ms · 40 in / 12 out / 52 tokens" ("" without tokens). */
export function formatMetrics(metrics) {
  if (!metrics || !isNumber(metrics.totalTokens)) return "";
  const parts = [];
  if (isNumber(metrics.latencyMs)) parts.push(`${metrics.latencyMs} ms model latency`);
  if (isNumber(metrics.timeToFirstByteMs)) parts.push(`first byte after ${metrics.timeToFirstByteMs} ms`);
  parts.push(`${metrics.inputTokens} in / ${metrics.outputTokens} out / ${metrics.totalTokens} tokens`);
  return parts.join(" · ");
}

/** The line under an answer's bubble, or null when there are no metrics to show. */
export function metricsNote(metrics) {
  const summary = formatMetrics(metrics);
  return summary ? el("div", { class: "msg-meta", text: summary }) : null;
}
