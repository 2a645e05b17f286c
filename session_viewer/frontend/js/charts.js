// Small charts drawn as inline SVG (no library): vertical bars (grouped or stacked), lines and horizontal bars.
// Each chart is a <figure> holding an SVG (role="img", <title> and <desc>) and the same numbers as a table, so
// screen readers and tests read the data. Every bar and point carries data-series, data-label and data-value.
// Colours come from CSS classes (tone-*), never from inline styles: the page's CSP allows same-origin CSS only.

import { el } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 420;
const HEIGHT = 210;
const MARGIN = { top: 10, right: 8, bottom: 24, left: 46 };
const ROW_HEIGHT = 24;
const LABEL_WIDTH = 120;
const MAX_X_LABELS = 6;
const Y_TICKS = 4;

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

const NUMBER = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

/** A number for people: grouped digits, at most one decimal; null or absent: "—". */
export function formatNumber(value) {
  return typeof value === "number" && Number.isFinite(value) ? NUMBER.format(value) : "—";
}

/** A compact axis label: 950, 1.2k, 3.4M. */
function formatCompact(value) {
  const size = Math.abs(value);
  if (size >= 1e9) return `${trim(value / 1e9)}G`;
  if (size >= 1e6) return `${trim(value / 1e6)}M`;
  if (size >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value) {
  return String(Number(value.toFixed(2)));
}

/** Create an SVG element; attributes as in dom.el (false/null/undefined are left out). */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (name === "text") node.textContent = String(value);
    else if (name === "dataset") for (const [key, data] of Object.entries(value)) node.dataset[key] = String(data);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) node.appendChild(child);
  return node;
}

/** Round a coordinate to 0.01: shorter markup, same picture. */
const r = (value) => Math.round(value * 100) / 100;

/** The top of the value axis and its tick step: a 1, 2, 2.5 or 5 step times a power of ten (whole for counts). */
function scaleFor(max, whole) {
  if (!(max > 0)) return { top: Y_TICKS, step: 1 };
  const rough = max / Y_TICKS;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough) ?? 10 * power;
  const wholeStep = whole ? Math.max(1, Math.ceil(step)) : step;
  return { top: wholeStep * Math.ceil(max / wholeStep), step: wholeStep };
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** The sum of a row's values over the series (a stacked bar's height). */
function rowTotal(row, series) {
  return series.reduce((sum, item) => sum + (isNumber(row.values[item.key]) ? row.values[item.key] : 0), 0);
}

/** The legend: one swatch per series, coloured by its tone class. */
function legend(series) {
  return el(
    "ul",
    { class: "chart-legend", "aria-hidden": "true" },
    series.map((item) => el("li", {}, el("span", { class: ["swatch", toneClass(item)] }), item.label)),
  );
}

function toneClass(item) {
  return `tone-${item.tone || "accent"}`;
}

/**
 * The data table behind a chart (collapsed; screen readers and tests read it).
 * columns: [{label, value(row) -> text, data(row) -> raw value for data-value}]
 */
function dataTable(title, labelHeading, rows, columns) {
  return el(
    "details",
    { class: "chart-data" },
    el("summary", { text: "Data table" }),
    el(
      "div",
      { class: "table-scroll" },
      el(
        "table",
        { class: "chart-table" },
        el("caption", { text: title }),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", { scope: "col", text: labelHeading }),
            columns.map((column) => el("th", { scope: "col", text: column.label })),
          ),
        ),
        el(
          "tbody",
          {},
          rows.map((row) =>
            el(
              "tr",
              { dataset: { label: row.label } },
              el("th", { scope: "row", text: row.display ?? row.label }),
              columns.map((column) => {
                const raw = column.data ? column.data(row) : undefined;
                const value = raw === undefined || raw === null ? "" : String(raw);
                return el("td", { dataset: { key: column.key ?? "", value } }, column.value(row));
              }),
            ),
          ),
        ),
      ),
    ),
  );
}

function seriesColumns(series, format) {
  return series.map((item) => ({
    key: item.key,
    label: item.label,
    value: (row) => format(row.values[item.key]),
    data: (row) => row.values[item.key],
  }));
}

/** A one-sentence summary for the SVG's <desc>: the total (or range) of each series. */
function summary(rows, series, format, { totals }) {
  if (!rows.length) return "No data.";
  return series
    .map((item) => {
      const values = rows.map((row) => row.values[item.key]).filter(isNumber);
      if (!values.length) return `${item.label}: no values`;
      if (totals) return `${item.label}: ${format(values.reduce((a, b) => a + b, 0))} in total`;
      return `${item.label}: from ${format(Math.min(...values))} to ${format(Math.max(...values))}`;
    })
    .join("; ");
}

function frame(kind, { title, description, width, height }, ...content) {
  const titleId = nextId("chart-title");
  const descId = nextId("chart-desc");
  return svg(
    "svg",
    {
      class: ["chart-svg", `chart-${kind}`],
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": `${titleId} ${descId}`,
      preserveAspectRatio: "xMidYMid meet",
    },
    svg("title", { id: titleId, text: title }),
    svg("desc", { id: descId, text: description }),
    ...content,
  );
}

/** Horizontal grid lines and value labels of a vertical chart. */
function valueAxis(scale, plot, format) {
  const lines = [];
  for (let value = 0; value <= scale.top + scale.step / 2; value += scale.step) {
    const y = r(plot.bottom - (value / scale.top) * (plot.bottom - plot.top));
    lines.push(svg("line", { class: value === 0 ? "axis" : "grid", x1: plot.left, x2: plot.right, y1: y, y2: y }));
    const label = format(value);
    lines.push(svg("text", { class: "tick", x: plot.left - 4, y: r(y + 3.5), "text-anchor": "end", text: label }));
  }
  return svg("g", { class: "value-axis", "aria-hidden": "true" }, lines);
}

/** Day labels under a vertical chart: every day of a week, else MAX_X_LABELS evenly spread, first and last included. */
function categoryAxis(rows, plot, band, shortLabel) {
  const count = rows.length <= MAX_X_LABELS + 1 ? rows.length : MAX_X_LABELS;
  const indexes = new Set();
  for (let k = 0; k < count; k += 1) indexes.add(count === 1 ? 0 : Math.round((k * (rows.length - 1)) / (count - 1)));
  const labels = [...indexes].map((index) =>
    svg("text", {
      class: "tick",
      x: r(plot.left + band * (index + 0.5)),
      y: plot.bottom + 15,
      "text-anchor": "middle",
      text: shortLabel(rows[index].label),
    }),
  );
  return svg("g", { class: "category-axis", "aria-hidden": "true" }, labels);
}

function plotArea(width, height) {
  return { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: height - MARGIN.bottom };
}

/**
 * A vertical bar chart, one group (or stack) per row.
 *
 * options: {title, rows: [{label, display?, values: {key: number}}], series: [{key, label, tone}],
 *           stacked (default false), whole (counts: whole-number ticks, default true), format, labelHeading,
 *           shortLabel(label) -> axis text, extraColumns: [{label, value(row)}]}
 */
export function barChart({
  title,
  rows,
  series,
  stacked = false,
  whole = true,
  format = formatNumber,
  labelHeading = "Day",
  shortLabel = (label) => label,
  extraColumns = [],
}) {
  const plot = plotArea(WIDTH, HEIGHT);
  const highest = (row) => Math.max(0, ...series.map((item) => (isNumber(row.values[item.key]) ? row.values[item.key] : 0)));
  const max = Math.max(0, ...rows.map((row) => (stacked ? rowTotal(row, series) : highest(row))));
  const scale = scaleFor(max, whole);
  const band = (plot.right - plot.left) / Math.max(rows.length, 1);
  const inner = band * (rows.length > 60 ? 1 : 0.8);
  const height = (value) => (value / scale.top) * (plot.bottom - plot.top);

  const bars = [];
  rows.forEach((row, index) => {
    const start = plot.left + band * index + (band - inner) / 2;
    let base = plot.bottom;
    series.forEach((item, position) => {
      const value = row.values[item.key];
      if (!isNumber(value)) return;
      const h = height(Math.max(value, 0));
      const width = stacked ? inner : inner / series.length;
      const x = stacked ? start : start + width * position;
      const y = stacked ? base - h : plot.bottom - h;
      if (stacked) base -= h;
      bars.push(
        svg(
          "rect",
          {
            class: ["bar", toneClass(item)],
            x: r(x),
            y: r(y),
            width: r(Math.max(width, 0.5)),
            height: r(h),
            dataset: { series: item.key, label: row.label, value },
          },
          svg("title", { text: `${row.display ?? row.label} · ${item.label}: ${format(value)}` }),
        ),
      );
    });
  });

  const description = summary(rows, series, format, { totals: true });
  return el(
    "figure",
    { class: "chart" },
    legend(series),
    frame(
      "bars",
      { title, description, width: WIDTH, height: HEIGHT },
      valueAxis(scale, plot, formatCompact),
      svg("g", { class: "bars" }, bars),
      categoryAxis(rows, plot, band, shortLabel),
    ),
    dataTable(title, labelHeading, rows, [...seriesColumns(series, format), ...extraColumns]),
  );
}

/**
 * A line chart with one point per row; a null value leaves a gap in its line.
 *
 * options: as barChart, without stacked; values may be null.
 */
export function lineChart({
  title,
  rows,
  series,
  whole = false,
  format = formatNumber,
  labelHeading = "Day",
  shortLabel = (label) => label,
}) {
  const plot = plotArea(WIDTH, HEIGHT);
  const values = rows.flatMap((row) => series.map((item) => row.values[item.key])).filter(isNumber);
  const scale = scaleFor(Math.max(0, ...values), whole);
  const band = (plot.right - plot.left) / Math.max(rows.length, 1);
  const x = (index) => r(plot.left + band * (index + 0.5));
  const y = (value) => r(plot.bottom - (Math.max(value, 0) / scale.top) * (plot.bottom - plot.top));

  const lines = series.map((item) => {
    let path = "";
    let open = false;
    const points = [];
    rows.forEach((row, index) => {
      const value = row.values[item.key];
      if (!isNumber(value)) {
        open = false;
        return;
      }
      path += `${open ? "L" : "M"}${x(index)} ${y(value)} `;
      open = true;
      points.push(
        svg(
          "circle",
          {
            class: ["point", toneClass(item)],
            cx: x(index),
            cy: y(value),
            r: 2.6,
            dataset: { series: item.key, label: row.label, value },
          },
          svg("title", { text: `${row.display ?? row.label} · ${item.label}: ${format(value)}` }),
        ),
      );
    });
    return svg(
      "g",
      { class: ["line-series", toneClass(item)], dataset: { series: item.key } },
      path ? svg("path", { class: "line", d: path.trim() }) : null,
      points,
    );
  });

  const description = summary(rows, series, format, { totals: false });
  return el(
    "figure",
    { class: "chart" },
    legend(series),
    frame(
      "lines",
      { title, description, width: WIDTH, height: HEIGHT },
      valueAxis(scale, plot, formatCompact),
      svg("g", { class: "lines" }, lines),
      categoryAxis(rows, plot, band, shortLabel),
    ),
    dataTable(title, labelHeading, rows, seriesColumns(series, format)),
  );
}

/**
 * A horizontal bar chart, one stacked bar per row (tools, models): the label on the left, the total on the right.
 *
 * options: {title, rows, series, format, labelHeading, extraColumns}
 */
export function horizontalBarChart({
  title,
  rows,
  series,
  format = formatNumber,
  labelHeading = "Name",
  extraColumns = [],
}) {
  const height = MARGIN.top + rows.length * ROW_HEIGHT + 6;
  const left = LABEL_WIDTH;
  const right = WIDTH - 56;
  const max = Math.max(1, ...rows.map((row) => rowTotal(row, series)));

  const groups = rows.map((row, index) => {
    const top = MARGIN.top + index * ROW_HEIGHT;
    let start = left;
    const bars = series.map((item) => {
      const value = row.values[item.key];
      if (!isNumber(value)) return null;
      const width = (Math.max(value, 0) / max) * (right - left);
      const bar = svg(
        "rect",
        {
          class: ["bar", toneClass(item)],
          x: r(start),
          y: top + 3,
          width: r(width),
          height: ROW_HEIGHT - 8,
          dataset: { series: item.key, label: row.label, value },
        },
        svg("title", { text: `${row.display ?? row.label} · ${item.label}: ${format(value)}` }),
      );
      start += width;
      return bar;
    });
    const name = row.display ?? row.label;
    return svg(
      "g",
      { class: "row" },
      svg("text", {
        class: "row-label",
        x: left - 6,
        y: top + ROW_HEIGHT / 2 + 3,
        "text-anchor": "end",
        text: name.length > 16 ? `${name.slice(0, 15)}…` : name,
      }),
      bars,
      svg("text", { class: "tick", x: r(start + 4), y: top + ROW_HEIGHT / 2 + 3, text: formatCompact(rowTotal(row, series)) }),
    );
  });

  const description = summary(rows, series, format, { totals: true });
  return el(
    "figure",
    { class: "chart" },
    legend(series),
    frame("hbars", { title, description, width: WIDTH, height }, svg("g", { class: "bars" }, groups)),
    dataTable(title, labelHeading, rows, [...seriesColumns(series, format), ...extraColumns]),
  );
}
