// The DOM helper both apps use (Session Viewer and chat playground), served by each at /static/common/dom.js.
// Builds nodes with createElement and textContent only: stored data and model output never become markup.

/**
 * Create an element.
 * attrs: {class, text, dataset: {...}, on: {event: handler}, hidden: bool, <attribute>: value}
 *   - class may be a string or an array (falsy entries skipped);
 *   - a value of false/null/undefined leaves the attribute out, true sets it empty.
 * children: nodes, strings (become text nodes), arrays of those, null/undefined/false (skipped).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (name === "text") node.textContent = String(value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (name === "value" && "value" in node) node.value = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

/** Append children (nodes, strings, nested arrays); strings are always text nodes. */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
  return parent;
}
