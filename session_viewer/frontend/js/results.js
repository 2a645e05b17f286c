// Results list: one page of matching sessions, the total, and previous/next paging.

import { el, metadataValue, replaceChildren, timeEl, valueText } from "./dom.js";

export function sessionHref(sessionId) {
  return `#/sessions/${encodeURIComponent(sessionId)}`;
}

export function snapshotHref(sessionId) {
  return `#/snapshots/${encodeURIComponent(sessionId)}`;
}

const COUNT = new Intl.NumberFormat("en-US");

function plural(count, word) {
  return `${COUNT.format(count)} ${word}${count === 1 ? "" : "s"}`;
}

/** A total for people: "1,234", or "1,000+" when the backend stopped counting at its cap. */
export function totalText(total, capped) {
  return `${COUNT.format(total)}${capped ? "+" : ""}`;
}

/** One metadata entry: cut with an ellipsis when long, the whole entry in its title; date-times as dates. */
function metadataChip(key, value) {
  return el(
    "span",
    { class: "chip", title: `${key}: ${valueText(value)}` },
    el("span", { class: "chip-key", text: key }),
    metadataValue(value),
  );
}

function metadataChips(metadata) {
  if (!metadata || typeof metadata !== "object") return null;
  const entries = Object.entries(metadata).slice(0, 4);
  if (!entries.length) return null;
  return el(
    "span",
    { class: "chips" },
    entries.map(([key, value]) => metadataChip(key, value)),
  );
}

function feedbackSummary(counts) {
  if (!counts) return null;
  const up = counts.up || 0;
  const down = counts.down || 0;
  const neutral = counts.neutral || 0;
  if (!up && !down && !neutral) return null;
  return el(
    "span",
    { class: "feedback-counts", "aria-label": `Feedback: ${up} up, ${down} down, ${neutral} neutral` },
    up ? el("span", { class: "rating rating-up", text: `▲ ${up}` }) : null,
    down ? el("span", { class: "rating rating-down", text: `▼ ${down}` }) : null,
    neutral ? el("span", { class: "rating rating-neutral", text: `● ${neutral}` }) : null,
  );
}

/** The lines under a classic session's id: date, application, messages, agents; metadata and feedback. */
function sessionLines(session) {
  const agents = Array.isArray(session.agent_ids) ? session.agent_ids : [];
  const application = typeof session.application_name === "string" ? session.application_name : null;
  return [
    el(
      "span",
      { class: "result-line" },
      timeEl(session.created_at),
      application ? el("span", { class: "badge badge-application", title: "Application", text: application }) : null,
      el("span", { text: plural(session.message_count || 0, "message") }),
      agents.length ? el("span", { class: "result-agents", text: agents.join(", ") }) : null,
    ),
    el("span", { class: "result-line" }, metadataChips(session.metadata), feedbackSummary(session.feedback_counts)),
  ];
}

/** The line under a snapshot session's id: its agents and checkpoints (what its keys tell, no snapshot read). */
export function snapshotLines(session) {
  const agents = Array.isArray(session.agent_ids) ? session.agent_ids : [];
  return [
    el(
      "span",
      { class: "result-line" },
      el("span", { class: "badge badge-snapshot", text: "snapshot" }),
      agents.length ? el("span", { class: "result-agents", text: agents.join(", ") }) : null,
      el("span", { text: plural(session.checkpoint_count || 0, "checkpoint") }),
    ),
  ];
}

/**
 * Build the results list inside `root`. onPage(offset) asks for another page; href(id) and lines(session)
 * make each entry's link and description (classic sessions by default; snapshotHref/snapshotLines for snapshots).
 */
export function createResultsList(
  root,
  { onPage, href = sessionHref, lines = sessionLines, label = "Matching sessions", empty = "No sessions match." },
) {
  let selectedId = null;
  let page = null;

  const summary = el("p", { class: "summary", role: "status", "aria-live": "polite", text: "" });
  const list = el("ol", { class: "results-list", "aria-label": label });
  const previous = el("button", { type: "button", class: "secondary", text: "← Previous" });
  const next = el("button", { type: "button", class: "secondary", text: "Next →" });
  const position = el("span", { class: "pager-position" });
  const pager = el("nav", { class: "pager", "aria-label": "Result pages", hidden: true }, previous, position, next);
  replaceChildren(root, summary, list, pager);

  previous.addEventListener("click", () => page && onPage(Math.max(0, page.offset - page.limit)));
  next.addEventListener("click", () => page && onPage(page.offset + page.limit));

  function item(session) {
    const link = el(
      "a",
      {
        class: "result",
        href: href(session.session_id),
        "aria-current": session.session_id === selectedId ? "true" : null,
        dataset: { sessionId: session.session_id },
      },
      el("span", { class: "result-id", text: session.session_id }),
      lines(session),
    );
    return el("li", {}, link);
  }

  return {
    showLoading() {
      root.setAttribute("aria-busy", "true");
      summary.textContent = "Searching…";
    },
    /** Show one page: {total, total_capped, limit, offset, sessions}; a capped total reads "1,000+". */
    show(result) {
      root.removeAttribute("aria-busy");
      page = {
        total: Number(result?.total) || 0,
        capped: result?.total_capped === true,
        limit: Number(result?.limit) || 20,
        offset: Number(result?.offset) || 0,
      };
      const sessions = Array.isArray(result?.sessions) ? result.sessions : [];
      const total = totalText(page.total, page.capped);
      summary.textContent =
        page.total === 0 && !sessions.length ? empty : `${total} session${total === "1" ? "" : "s"} found`;
      replaceChildren(list, sessions.map(item));
      const first = sessions.length ? page.offset + 1 : 0;
      const last = page.offset + sessions.length;
      const range = first === last ? COUNT.format(last) : `${COUNT.format(first)}–${COUNT.format(last)}`;
      position.textContent = `${range} of ${total}`;
      previous.disabled = page.offset <= 0;
      // past a capped count, a full page may have a next one
      next.disabled = page.capped ? sessions.length < page.limit : last >= page.total;
      pager.hidden = !page.capped && page.total <= sessions.length && page.offset === 0;
    },
    showError(message) {
      root.removeAttribute("aria-busy");
      summary.textContent = message;
      replaceChildren(list);
      pager.hidden = true;
    },
    /** Highlight the open session. */
    setSelected(sessionId) {
      selectedId = sessionId;
      for (const link of list.querySelectorAll("a.result")) {
        if (link.dataset.sessionId === sessionId) link.setAttribute("aria-current", "true");
        else link.removeAttribute("aria-current");
      }
    },
    get total() {
      return page ? page.total : null;
    },
    /** The total as shown ("1,000+" when capped), or "" before a page. */
    get totalText() {
      return page ? totalText(page.total, page.capped) : "";
    },
  };
}
