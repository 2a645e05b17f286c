// Session detail: facts, metadata, agents and the timeline of messages and feedback.

import { el, encryptedEl, formatBytes, isEncryptedMarker, jsonText, metadataValue, replaceChildren, timeEl } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

const RATING_LABELS = { up: "▲ Positive", down: "▼ Negative" };

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function factList(entries) {
  return el(
    "dl",
    { class: "facts" },
    entries.map(([term, value]) => el("div", {}, el("dt", { text: term }), el("dd", {}, value))),
  );
}

function metadataSection(metadata) {
  const entries = metadata && typeof metadata === "object" ? Object.entries(metadata) : [];
  return el(
    "details",
    { class: "section", open: true },
    el("summary", { text: `Metadata (${entries.length})` }),
    entries.length
      ? el(
          "dl",
          { class: "kv" },
          entries.map(([key, value]) =>
            el(
              "div",
              {},
              el("dt", { text: key }),
              el(
                "dd",
                {},
                typeof value === "object" && value !== null && !isEncryptedMarker(value)
                  ? el("pre", { text: jsonText(value) })
                  : metadataValue(value),
              ),
            ),
          ),
        )
      : el("p", { class: "muted", text: "No metadata." }),
  );
}

function agentsSection(agents) {
  const list = Array.isArray(agents) ? agents : [];
  return el(
    "details",
    { class: "section" },
    el("summary", { text: `Agents (${list.length})` }),
    el(
      "ul",
      { class: "agents" },
      list.map((agent) =>
        el(
          "li",
          {},
          el("span", { class: "agent-name", text: agent.agent_id }),
          el("span", { class: "muted", text: ` · ${agent.model || "model unknown"} · ${plural(agent.message_count || 0, "message")}` }),
          agent.system_prompt
            ? el(
                "details",
                { class: "system-prompt" },
                el("summary", { text: "System prompt" }),
                isEncryptedMarker(agent.system_prompt)
                  ? encryptedEl(agent.system_prompt)
                  : el("pre", { class: "wrap", text: agent.system_prompt }),
              )
            : null,
        ),
      ),
    ),
  );
}

const ENCRYPTION_BADGES = {
  decrypted: "encrypted · decrypted by the viewer",
  no_key: "encrypted, no key",
  key_erased: "key erased",
};

/** What the viewer could do with an encrypted session, as a badge; nothing for a session written in clear. */
function encryptionBadge(state) {
  const text = ENCRYPTION_BADGES[state];
  return text ? el("span", { class: ["badge", "badge-encryption", `encryption-${state}`], text }) : null;
}

function toolResultContent(content) {
  const items = Array.isArray(content) ? content : [];
  if (!items.length) return el("p", { class: "muted", text: "(empty result)" });
  return items.map((item) => {
    if (item?.kind === "text") return el("pre", { class: "wrap", text: item.text ?? "" });
    if (item?.kind === "json") return el("pre", { text: jsonText(item.json) });
    return el("pre", { text: jsonText(item) });
  });
}

function renderBlock(block, toolNames) {
  switch (block?.kind) {
    case "text":
      return renderMarkdown(block.markdown);
    case "tool_use":
      toolNames.set(block.tool_use_id, block.name);
      return el(
        "details",
        { class: "tool tool-use" },
        el(
          "summary",
          {},
          el("span", { class: "tool-kind", text: "Tool call" }),
          el("code", { text: block.name || "?" }),
          block.tool_use_id ? el("span", { class: "muted tool-id", text: block.tool_use_id }) : null,
        ),
        el("pre", { text: jsonText(block.input ?? {}) }),
      );
    case "tool_result": {
      const name = toolNames.get(block.tool_use_id);
      const status = block.status === "error" ? "error" : "success";
      return el(
        "details",
        { class: ["tool", "tool-result", `status-${status}`] },
        el(
          "summary",
          {},
          el("span", { class: "tool-kind", text: "Tool result" }),
          name ? el("code", { text: name }) : null,
          el("span", { class: `badge badge-${status}`, text: status }),
          block.tool_use_id ? el("span", { class: "muted tool-id", text: block.tool_use_id }) : null,
        ),
        toolResultContent(block.content),
      );
    }
    case "attachment": {
      const parts = [block.format, formatBytes(block.size_bytes)].filter(Boolean);
      return el(
        "span",
        { class: "attachment", title: block.name || "" },
        el("span", { class: "attachment-type", text: block.attachment_type || "file" }),
        block.name ? el("span", { class: "attachment-name", text: block.name }) : null,
        el("span", { class: "muted", text: parts.join(" · ") }),
      );
    }
    case "encrypted":
      return el("p", { class: "encrypted-block" }, encryptedEl(block));
    case "reasoning":
      return el(
        "details",
        { class: "tool reasoning" },
        el("summary", {}, el("span", { class: "tool-kind", text: "Reasoning" })),
        el("pre", { class: "wrap", text: block.text ?? "" }),
      );
    default:
      return el(
        "details",
        { class: "tool other" },
        el("summary", {}, el("span", { class: "tool-kind", text: `Other content${block?.kind && block.kind !== "other" ? ` (${block.kind})` : ""}` })),
        el("pre", { text: jsonText(block?.json ?? block) }),
      );
  }
}

const known = (value) => value !== undefined && value !== null;

/** A duration in seconds for people: "14 ms" under a second, "1.25 s" above. */
function seconds(value) {
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${Number(value.toFixed(2))} s`;
}

/** One figure of the metrics line; data-figure and data-value carry it for tests and scripts. */
function figure(name, value, text) {
  return el("span", { class: "figure", dataset: { figure: name, value: String(value) } }, text);
}

/** The invocation's figures on the message that closed it: latency, first byte, tokens, cache, cycles, tools. */
function metricsLine(metrics) {
  if (!metrics) return null;
  const parts = [];
  if (known(metrics.latencyMs)) parts.push(figure("latency", metrics.latencyMs, `latency ${metrics.latencyMs} ms`));
  if (known(metrics.timeToFirstByteMs)) {
    parts.push(figure("ttfb", metrics.timeToFirstByteMs, `first byte ${metrics.timeToFirstByteMs} ms`));
  }
  const tokens = [
    ["in", metrics.inputTokens],
    ["out", metrics.outputTokens],
    ["total", metrics.totalTokens],
  ].filter(([, value]) => known(value));
  if (tokens.length) {
    const text = `tokens ${tokens.map(([label, value]) => `${value} ${label}`).join(" / ")}`;
    parts.push(figure("tokens", tokens.map(([, value]) => value).join("/"), text));
  }
  const cache = [
    ["cache-read", "read", metrics.cacheReadInputTokens],
    ["cache-write", "write", metrics.cacheWriteInputTokens],
  ].filter(([, , value]) => known(value));
  if (cache.length) {
    parts.push(
      el(
        "span",
        { class: "figure-group" },
        "cache ",
        cache.map(([name, label, value], index) => [index ? " / " : "", figure(name, value, `${value} ${label}`)]),
      ),
    );
  }
  if (known(metrics.cycleCount)) {
    const duration = known(metrics.cycleDurationSeconds) ? ` (${seconds(metrics.cycleDurationSeconds)})` : "";
    parts.push(figure("cycles", metrics.cycleCount, `${plural(metrics.cycleCount, "cycle")}${duration}`));
  }
  const tools = Array.isArray(metrics.toolUsage) ? metrics.toolUsage : [];
  if (!parts.length && !tools.length) return null;
  return el(
    "div",
    { class: "metrics" },
    parts.length ? el("p", {}, parts.map((part, index) => [index ? " · " : "", part])) : null,
    tools.length
      ? el(
          "ul",
          { class: "tool-usage", "aria-label": "Tool usage" },
          tools.map((tool) =>
            el(
              "li",
              { dataset: { tool: tool.name, calls: String(tool.calls ?? ""), errors: String(tool.errors ?? "") } },
              el("span", { class: "tool-name", text: tool.name }),
              ` ${plural(tool.calls ?? 0, "call")}`,
              tool.errors ? el("span", { class: "tool-errors", text: `, ${plural(tool.errors, "error")}` }) : ", no errors",
              known(tool.averageTimeSeconds) ? ` · ${seconds(tool.averageTimeSeconds)} on average` : "",
            ),
          ),
        )
      : null,
  );
}

/** What a guardrail did to a message: action, policies, time. */
function guardrailLine(event) {
  if (!event) return null;
  const policies = Array.isArray(event.policies) ? event.policies : [];
  return el(
    "p",
    { class: "guardrail-line", dataset: { action: event.action ?? "" } },
    el("span", { class: "guardrail-label", text: "Guardrail" }),
    ` ${event.action || "intervened"}`,
    policies.length ? ` · ${policies.length === 1 ? "policy" : "policies"}: ${policies.join(", ")}` : "",
    event.stop_reason ? ` · stop reason: ${event.stop_reason}` : "",
    event.timestamp ? [" · ", timeEl(event.timestamp)] : "",
  );
}

/** The session's guardrail summary: counts by action and policy, then the latest events. */
function guardrailSection(summary) {
  if (!summary) return null;
  const counts = (map) =>
    Object.entries(map || {})
      .map(([name, count]) => `${name} ${count}`)
      .join(", ") || "none";
  const latest = Array.isArray(summary.latest) ? summary.latest : [];
  return el(
    "details",
    { class: "section guardrail-summary" },
    el("summary", { text: `Guardrail events (${summary.total ?? 0})` }),
    factList([
      ["By action", counts(summary.by_action)],
      ["By policy", counts(summary.by_policy)],
    ]),
    latest.length
      ? el(
          "ol",
          { class: "guardrail-latest", "aria-label": "Latest guardrail events" },
          latest.map((event) =>
            el(
              "li",
              {},
              el("span", { class: "agent-name", text: event.agent_id ?? "?" }),
              el("span", { class: "muted", text: ` #${event.message_id ?? "?"}` }),
              guardrailLine(event),
            ),
          ),
        )
      : null,
  );
}

/**
 * Who a message is from, in words: "User, to agent support", "Agent support", "Tool results, to agent support"
 * (strands stores tool results as user-role messages), "<role>, agent support" for any other role.
 */
function speaker(role, agentId, onlyToolResults) {
  const agent = agentId === undefined || agentId === null || agentId === "" ? null : String(agentId);
  const agentName = agent ? el("span", { class: "agent", text: agent }) : null;
  if (role === "assistant") {
    return el("span", { class: "speaker" }, el("span", { class: "role", text: "Agent" }), agent ? " " : null, agentName);
  }
  const who = onlyToolResults ? "Tool results" : role === "user" ? "User" : role;
  return el(
    "span",
    { class: "speaker" },
    el("span", { class: "role", text: who }),
    agent ? el("span", { class: "speaker-to", text: role === "user" ? ", to agent " : ", agent " }) : null,
    agentName,
  );
}

function messageItem(entry, toolNames) {
  const role = entry.role === "assistant" ? "assistant" : entry.role === "user" ? "user" : String(entry.role || "unknown");
  const blocks = Array.isArray(entry.blocks) ? entry.blocks : [];
  const onlyToolResults = blocks.length > 0 && blocks.every((block) => block?.kind === "tool_result");
  return el(
    "li",
    {
      class: ["tl-item", "tl-message", `role-${role === "assistant" || role === "user" ? role : "other"}`, onlyToolResults && "tool-only"],
      dataset: { type: "message", role, agent: entry.agent_id ?? "", messageId: String(entry.message_id ?? "") },
    },
    el(
      "div",
      { class: "tl-head" },
      speaker(role, entry.agent_id, onlyToolResults),
      entry.redacted ? el("span", { class: "badge badge-redacted", text: "redacted" }) : null,
      entry.guardrail ? el("span", { class: "badge badge-guardrail", text: "guardrail" }) : null,
      el("span", { class: "tl-when" }, timeEl(entry.timestamp), el("span", { class: "muted msg-id", text: `#${entry.message_id}` })),
    ),
    guardrailLine(entry.guardrail),
    el("div", { class: "tl-body" }, blocks.map((block) => renderBlock(block, toolNames))),
    metricsLine(entry.metrics),
  );
}

function feedbackItem(entry) {
  const rating = entry.rating === "up" || entry.rating === "down" ? entry.rating : "neutral";
  return el(
    "li",
    { class: ["tl-item", "tl-feedback", `feedback-${rating}`], dataset: { type: "feedback", rating } },
    el(
      "div",
      { class: "tl-head" },
      el("span", { class: "role", text: "Feedback" }),
      el("span", { class: ["rating", `rating-${rating}`], text: RATING_LABELS[rating] || "● Neutral" }),
      el("span", { class: "tl-when" }, timeEl(entry.timestamp)),
    ),
    isEncryptedMarker(entry.comment)
      ? el("p", { class: "feedback-comment" }, encryptedEl(entry.comment))
      : entry.comment
        ? el("p", { class: "feedback-comment wrap", text: entry.comment })
        : null,
  );
}

/** The timeline of `timeline` entries, with its tools (agent filter, expand tool calls): [tools, list]. */
function timelineParts(timeline, agents, emptyText) {
  const toolNames = new Map();
  const items = timeline.map((entry) => (entry?.type === "feedback" ? feedbackItem(entry) : messageItem(entry, toolNames)));
  const list = el("ol", { class: "timeline", "aria-label": "Timeline" }, items);

  const agentFilter = el(
    "select",
    { id: "timeline-agent" },
    el("option", { value: "", text: "All agents" }),
    agents.map((agent) => el("option", { value: agent.agent_id, text: agent.agent_id })),
  );
  agentFilter.addEventListener("change", () => {
    for (const item of list.children) {
      const agent = item.dataset.agent;
      item.hidden = Boolean(agentFilter.value) && item.dataset.type === "message" && agent !== agentFilter.value;
    }
  });
  const toggle = el("button", { type: "button", class: "secondary", "aria-pressed": "false", text: "Expand tool calls" });
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-pressed") !== "true";
    for (const details of list.querySelectorAll("details.tool")) details.open = open;
    toggle.setAttribute("aria-pressed", String(open));
    toggle.textContent = open ? "Collapse tool calls" : "Expand tool calls";
  });
  return [
    el(
      "div",
      { class: "timeline-tools" },
      agents.length > 1 ? el("label", { class: "inline", for: agentFilter.id, text: "Agent" }) : null,
      agents.length > 1 ? agentFilter : null,
      list.querySelector("details.tool") ? toggle : null,
    ),
    timeline.length ? list : el("p", { class: "placeholder", text: emptyText }),
  ];
}

function copyLinkButton() {
  const copy = el("button", { type: "button", class: "secondary", text: "Copy link" });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(window.location.href);
      copy.textContent = "Link copied";
    } catch {
      copy.textContent = "Copy failed";
    }
    setTimeout(() => {
      copy.textContent = "Copy link";
    }, 2000);
  });
  return copy;
}

/** A snapshot session's agents: each with its snapshot time, messages, system prompt and agent state (JSON). */
function snapshotAgentsSection(agents) {
  return el(
    "details",
    { class: "section", open: true },
    el("summary", { text: `Agents and state (${agents.length})` }),
    el(
      "ul",
      { class: "agents" },
      agents.map((agent) => {
        const state = agent.state && typeof agent.state === "object" ? agent.state : {};
        const keys = Object.keys(state);
        return el(
          "li",
          { dataset: { agent: agent.agent_id ?? "" } },
          el("span", { class: "agent-name", text: agent.agent_id }),
          el("span", { class: "muted", text: ` · ${plural(agent.message_count || 0, "message")} · snapshot ` }),
          timeEl(agent.snapshot_created_at),
          agent.system_prompt
            ? el(
                "details",
                { class: "system-prompt" },
                el("summary", { text: "System prompt" }),
                isEncryptedMarker(agent.system_prompt)
                  ? encryptedEl(agent.system_prompt)
                  : el("pre", { class: "wrap", text: agent.system_prompt }),
              )
            : null,
          el(
            "details",
            { class: "agent-state", open: keys.length > 0 && keys.length <= 8 },
            el("summary", { text: `Agent state (${plural(keys.length, "key")})` }),
            el("pre", { class: "state-json", text: jsonText(state) }),
          ),
        );
      }),
    ),
  );
}

/** Build the session detail view inside `root`. */
export function createSessionDetail(root) {
  function showMessage(text, className = "placeholder") {
    root.removeAttribute("aria-busy");
    replaceChildren(root, el("p", { class: className, text }));
  }

  return {
    showEmpty() {
      showMessage("Choose a session to read its conversation.");
    },
    showLoading(sessionId) {
      root.setAttribute("aria-busy", "true");
      replaceChildren(root, el("p", { class: "placeholder", text: `Loading ${sessionId}…` }));
    },
    showError(message) {
      root.removeAttribute("aria-busy");
      replaceChildren(root, el("p", { class: "form-error", role: "alert", text: message }));
    },
    /** Replace the view with a custom node (e.g. the per-session password form). */
    showNode(node) {
      root.removeAttribute("aria-busy");
      replaceChildren(root, node);
    },
    show(session) {
      root.removeAttribute("aria-busy");
      const timeline = Array.isArray(session.timeline) ? session.timeline : [];
      const agents = Array.isArray(session.agents) ? session.agents : [];
      const counts = session.feedback_counts || {};
      const messageCount = timeline.filter((entry) => entry?.type !== "feedback").length;
      replaceChildren(
        root,
        el(
          "header",
          { class: "session-head" },
          el(
            "div",
            { class: "session-title" },
            el("h3", { class: "session-id", text: session.session_id }),
            encryptionBadge(session.encryption),
            copyLinkButton(),
          ),
          factList([
            ...(session.application_name ? [["Application", session.application_name]] : []),
            ["Created", timeEl(session.created_at)],
            ["Updated", timeEl(session.updated_at)],
            ["Messages", String(messageCount)],
            ["Feedback", `▲ ${counts.up || 0} · ▼ ${counts.down || 0} · ● ${counts.neutral || 0}`],
          ]),
          metadataSection(session.metadata),
          agentsSection(agents),
          guardrailSection(session.guardrail_summary),
        ),
        timelineParts(timeline, agents, "This session has no messages yet."),
      );
    },
    /** Show a snapshot session (GET /api/v1/snapshots/{id}): read-only, no metadata, no feedback. */
    showSnapshot(session) {
      root.removeAttribute("aria-busy");
      const timeline = Array.isArray(session.timeline) ? session.timeline : [];
      const agents = Array.isArray(session.agents) ? session.agents : [];
      replaceChildren(
        root,
        el(
          "header",
          { class: "session-head", dataset: { kind: "snapshot" } },
          el(
            "div",
            { class: "session-title" },
            el("h3", { class: "session-id", text: session.session_id }),
            el("span", { class: "badge badge-read-only", text: "snapshot · read-only" }),
            copyLinkButton(),
          ),
          factList([
            ["Latest snapshot", timeEl(session.snapshot_created_at)],
            ["Messages", String(timeline.length)],
            ["Checkpoints", String(session.checkpoint_count || 0)],
          ]),
          snapshotAgentsSection(agents),
        ),
        timelineParts(timeline, agents, "The latest snapshot holds no messages."),
      );
    },
  };
}
