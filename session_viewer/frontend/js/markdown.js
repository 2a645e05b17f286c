// Builds DOM from the server's markdown AST (API.md) with a whitelist of node types.
// Only createElement/textContent: raw HTML in a message arrives as a text node and stays text.

import { el } from "./dom.js";

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const ALIGNMENTS = new Set(["left", "center", "right"]);

// node type -> element tag (children rendered inside)
const CONTAINERS = {
  paragraph: "p",
  blockquote: "blockquote",
  bullet_list: "ul",
  list_item: "li",
  strong: "strong",
  em: "em",
  thead: "thead",
  tbody: "tbody",
  tr: "tr",
};

/** The href if it is an absolute http, https or mailto URL, else null. */
export function safeHref(href) {
  if (typeof href !== "string" || !href) return null;
  try {
    const url = new URL(href);
    return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function textOf(node) {
  if (!node || typeof node !== "object") return "";
  if (typeof node.text === "string") return node.text;
  return Array.isArray(node.children) ? node.children.map(textOf).join("") : "";
}

function renderChildren(node, depth) {
  const children = Array.isArray(node?.children) ? node.children : [];
  return children.map((child) => renderNode(child, depth + 1));
}

function renderNode(node, depth = 0) {
  if (node === null || node === undefined) return null;
  if (typeof node === "string") return document.createTextNode(node);
  if (typeof node !== "object" || depth > 64) return document.createTextNode(textOf(node));
  const type = node.type;

  if (type === "text") return document.createTextNode(typeof node.text === "string" ? node.text : "");
  if (type === "softbreak") return document.createTextNode("\n");
  if (type === "hardbreak") return el("br");
  if (type === "hr") return el("hr");
  if (type === "document") {
    const fragment = document.createDocumentFragment();
    for (const child of renderChildren(node, depth)) if (child) fragment.appendChild(child);
    return fragment;
  }
  if (type === "heading") {
    // Message headings sit below the page's own headings (h1 site, h2 panels).
    const level = Math.min(6, Math.max(1, Number.parseInt(node.level, 10) || 1) + 2);
    return el(`h${level}`, { class: "md-heading" }, renderChildren(node, depth));
  }
  if (type === "ordered_list") {
    const start = Number.parseInt(node.start, 10);
    return el("ol", { start: Number.isFinite(start) && start !== 1 ? start : null }, renderChildren(node, depth));
  }
  if (type === "code_block") {
    const info = typeof node.info === "string" ? node.info.trim().split(/\s+/)[0] : "";
    return el(
      "pre",
      { class: "md-code", dataset: info ? { lang: info } : {} },
      el("code", { text: typeof node.text === "string" ? node.text : textOf(node) }),
    );
  }
  if (type === "inline_code") return el("code", { text: typeof node.text === "string" ? node.text : textOf(node) });
  if (type === "link") {
    const href = safeHref(node.href);
    const children = renderChildren(node, depth);
    if (!href) return el("span", {}, children);
    return el("a", { href, rel: "noopener noreferrer", target: "_blank" }, children);
  }
  if (type === "image") {
    const alt = typeof node.alt === "string" ? node.alt : textOf(node);
    return el("span", { class: "md-image", text: `[image: ${alt}]` });
  }
  if (type === "table") {
    // Wide tables scroll inside the message instead of widening the page.
    return el("div", { class: "md-table" }, el("table", {}, renderChildren(node, depth)));
  }
  if (type === "th" || type === "td") {
    const align = ALIGNMENTS.has(node.align) ? `align-${node.align}` : null;
    return el(type, { class: align }, renderChildren(node, depth));
  }
  if (Object.prototype.hasOwnProperty.call(CONTAINERS, type)) {
    return el(CONTAINERS[type], {}, renderChildren(node, depth));
  }
  // Unknown node type: keep its text, drop its structure.
  return document.createTextNode(textOf(node));
}

/** Render one markdown AST (a "document" node) into a <div class="markdown">. */
export function renderMarkdown(ast) {
  const container = el("div", { class: "markdown" });
  const rendered = renderNode(ast);
  if (rendered) container.appendChild(rendered);
  return container;
}
