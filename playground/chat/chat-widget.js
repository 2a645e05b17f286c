// Chat widget of the mongodb-session-manager playground: a floating button, a slide-out panel, answers streamed
// token by token, the conversation reloaded from the backend, and a session panel with metadata, metrics and
// feedback. Every text (the user's, the model's, stored metadata) reaches the page through textContent or text
// nodes only: nothing is ever parsed as HTML.

const SESSION_KEY = "mongodb-session-manager.playground.session";
const OPEN_KEY = "mongodb-session-manager.playground.open";
const SVG_NS = "http://www.w3.org/2000/svg";

// ------------------------------------------------------------------ DOM helpers

/** Create an element. attrs: {class, text, dataset, on: {event: handler}, <attribute>: value}. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A small stroked icon from one SVG path. */
function icon(path) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add("icon");
  const shape = document.createElementNS(SVG_NS, "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

const ICONS = {
  chat: "M4 5h16v11H8l-4 4z",
  close: "M6 6l12 12M18 6L6 18",
  info: "M12 8h.01M11 12h1v5h1M12 3a9 9 0 1 0 0 18a9 9 0 0 0 0-18z",
  plus: "M12 5v14M5 12h14",
  send: "M4 12l16-8-6 16-2-7z",
  up: "M7 11v9H4v-9zM7 11l4-8c1.5 0 2.5 1 2.5 2.5V9H19a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.8 20H7",
  down: "M7 13V4H4v9zM7 13l4 8c1.5 0 2.5-1 2.5-2.5V15H19a2 2 0 0 0 2-2.3l-1.2-7A2 2 0 0 0 17.8 4H7",
  tool: "M14.7 6.3a4 4 0 0 0-5.4 5.4L3 18l3 3 6.3-6.3a4 4 0 0 0 5.4-5.4l-2.6 2.6-2.4-.6-.6-2.4z",
  result: "M6 4v8a4 4 0 0 0 4 4h9M15 12l4 4-4 4",
  note: "M5 12h14",
};

function formatDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

function formatValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) return formatDate(value);
  return String(value);
}

function formatToolCall(name, input) {
  if (input && typeof input === "object") {
    const args = Object.entries(input).map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
    return `${name}(${args.join(", ")})`;
  }
  return `${name}(${input ?? ""})`;
}

function formatMetrics(metrics) {
  if (!metrics || metrics.totalTokens === undefined) return "";
  const latency = metrics.latencyMs !== undefined ? `${metrics.latencyMs} ms model latency · ` : "";
  return `${latency}${metrics.inputTokens} in / ${metrics.outputTokens} out / ${metrics.totalTokens} tokens`;
}

// ------------------------------------------------------------------ API client

class ApiError extends Error {}

async function requestJson(path, options = {}) {
  const response = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  if (response.status === 404) return null;
  if (!response.ok) throw new ApiError(`${options.method || "GET"} ${path} failed: HTTP ${response.status}`);
  return response.json();
}

const api = {
  info: () => requestJson("/api/info"),
  history: (sessionId) => requestJson(`/api/sessions/${encodeURIComponent(sessionId)}/history`),
  session: (sessionId) => requestJson(`/api/sessions/${encodeURIComponent(sessionId)}`),
  feedback: (sessionId, rating, comment) =>
    requestJson(`/api/sessions/${encodeURIComponent(sessionId)}/feedback`, {
      method: "POST",
      body: JSON.stringify({ rating, comment }),
    }),

  /** POST a message and yield the Server-Sent Events of the reply as objects. */
  async *stream(sessionId, message) {
    const response = await fetch("/api/chat/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ session_id: sessionId, message }),
    });
    if (!response.ok || !response.body) throw new ApiError(`the server answered HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data) yield JSON.parse(data);
      }
    }
  },
};

// ------------------------------------------------------------------ session id (one per browser tab)

function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `chat-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

function tabSessionId() {
  let id = sessionStorage.getItem(SESSION_KEY);
  if (!id) {
    id = newSessionId();
    sessionStorage.setItem(SESSION_KEY, id);
  }
  return id;
}

// ------------------------------------------------------------------ the conversation list

/** Renders messages into the list; one streamed reply at a time goes through a Reply. */
class Conversation {
  constructor(list) {
    this.list = list;
  }

  clear() {
    this.list.replaceChildren();
  }

  atBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 60;
  }

  /** Run a layout change and stay scrolled to the latest message if we were there. */
  keepBottom(change) {
    const follow = this.atBottom();
    change();
    if (follow) this.list.scrollTop = this.list.scrollHeight;
  }

  add(node, { force = false } = {}) {
    const follow = force || this.atBottom();
    this.list.append(node);
    if (follow) this.list.scrollTop = this.list.scrollHeight;
    return node;
  }

  user(text) {
    return this.add(el("li", { class: "msg msg-user" }, el("div", { class: "bubble", text })), { force: true });
  }

  assistant(text, state = "done") {
    return this.add(
      el("li", { class: "msg msg-assistant", dataset: { state } }, el("div", { class: "bubble", text })),
    );
  }

  chip(className, path, text) {
    return this.add(el("li", { class: "msg msg-tool" }, el("span", { class: className }, icon(path), el("span", { text }))));
  }

  toolCall(name, input) {
    return this.chip("tool-chip", ICONS.tool, formatToolCall(name, input));
  }

  toolResult(status, text) {
    return this.chip(`tool-chip result ${status === "error" ? "failed" : ""}`, ICONS.result, text);
  }

  notice(text, kind = "error") {
    return this.add(el("li", { class: `msg msg-${kind}`, role: "status", text }), { force: true });
  }

  /** Show stored messages (the history the backend restored). */
  show(messages) {
    for (const message of messages) {
      if (message.role === "user") {
        if (message.text) this.user(message.text);
        for (const result of message.tool_results) this.toolResult(result.status, result.text);
      } else {
        if (message.text) this.assistant(message.text);
        for (const call of message.tool_calls) this.toolCall(call.name, call.input);
      }
    }
    this.list.scrollTop = this.list.scrollHeight;
  }
}

/** One streamed reply: a typing indicator, then bubbles filled token by token, tool chips in between. */
class Reply {
  constructor(conversation) {
    this.conversation = conversation;
    this.typing = conversation.add(
      el("li", { class: "msg msg-typing", "aria-label": "The assistant is typing" }, el("span"), el("span"), el("span")),
      { force: true },
    );
    this.bubble = null;
    this.text = null;
  }

  hideTyping() {
    this.typing?.remove();
    this.typing = null;
  }

  token(text) {
    this.hideTyping();
    if (!this.bubble) {
      this.bubble = this.conversation.assistant("", "streaming");
      this.text = document.createTextNode("");
      this.bubble.querySelector(".bubble").append(this.text);
    }
    const follow = this.conversation.atBottom();
    this.text.appendData(text);
    if (follow) this.conversation.list.scrollTop = this.conversation.list.scrollHeight;
  }

  closeBubble() {
    if (this.bubble) this.bubble.dataset.state = "done";
    this.bubble = null;
  }

  tool(name, input) {
    this.closeBubble();
    this.conversation.toolCall(name, input);
  }

  toolResult(status, text) {
    this.conversation.toolResult(status, text);
  }

  done(metrics) {
    const last = this.bubble;
    this.closeBubble();
    this.hideTyping();
    const summary = formatMetrics(metrics);
    if (last && summary) last.append(el("div", { class: "msg-meta", text: summary }));
  }

  fail(message) {
    this.closeBubble();
    this.hideTyping();
    this.conversation.notice(message);
  }
}

// ------------------------------------------------------------------ the session panel

class SessionPanel {
  constructor(widget) {
    this.widget = widget;
    this.body = el("div", { class: "info-body" });
    this.comment = el("input", {
      class: "feedback-comment",
      type: "text",
      maxlength: "1000",
      placeholder: "Comment (optional)",
      "aria-label": "Feedback comment",
    });
    this.status = el("p", { class: "feedback-status", role: "status" });
    this.upButton = el(
      "button",
      { type: "button", class: "feedback-button", "data-rating": "up", title: "Helpful", "aria-label": "Helpful" },
      icon(ICONS.up),
    );
    this.downButton = el(
      "button",
      { type: "button", class: "feedback-button", "data-rating": "down", title: "Not helpful", "aria-label": "Not helpful" },
      icon(ICONS.down),
    );
    this.upButton.addEventListener("click", () => this.sendFeedback("up"));
    this.downButton.addEventListener("click", () => this.sendFeedback("down"));
    this.feedbackList = el("ul", { class: "feedback-list" });
    this.root = el(
      "section",
      { class: "chat-info", hidden: true, "aria-label": "Session information" },
      this.body,
      el(
        "div",
        { class: "feedback" },
        el("h3", { text: "Was this conversation helpful?" }),
        el("div", { class: "feedback-row" }, this.upButton, this.downButton, this.comment),
        this.status,
        this.feedbackList,
      ),
    );
  }

  get visible() {
    return !this.root.hidden;
  }

  toggle(force) {
    this.widget.conversation.keepBottom(() => {
      this.root.hidden = !(force ?? this.root.hidden);
    });
    this.widget.infoButton.setAttribute("aria-expanded", String(this.visible));
    if (this.visible) this.refresh();
  }

  row(label, value, className) {
    return [el("dt", { text: label }), el("dd", { class: className, text: value })];
  }

  async refresh() {
    if (!this.visible) return;
    const sessionId = this.widget.sessionId;
    let info;
    try {
      info = await api.session(sessionId);
    } catch (error) {
      this.body.replaceChildren(el("p", { class: "info-empty", text: String(error.message) }));
      return;
    }
    if (sessionId !== this.widget.sessionId) return;
    this.widget.conversation.keepBottom(() => this.render(sessionId, info));
  }

  render(sessionId, info) {
    this.setFeedbackEnabled(Boolean(info));
    if (!info) {
      this.body.replaceChildren(
        el("dl", {}, this.row("Session", sessionId, "mono")),
        el("p", { class: "info-empty", text: "Nothing stored yet: send a message to create the session." }),
      );
      this.feedbackList.replaceChildren();
      return;
    }
    const metadata = Object.entries(info.metadata);
    this.body.replaceChildren(
      el(
        "dl",
        {},
        this.row("Session", info.session_id, "mono"),
        this.row("Created", formatDate(info.created_at)),
        this.row("Updated", formatDate(info.updated_at)),
        this.row("Model", info.model ?? "—", "mono"),
        this.row("Messages", String(info.message_count)),
        this.row("Latest answer", formatMetrics(info.latest_metrics) || "—", "metrics"),
      ),
      el("h3", { text: "Metadata" }),
      metadata.length
        ? el("dl", { class: "metadata" }, metadata.map(([key, value]) => this.row(key, formatValue(value), "mono")))
        : el("p", { class: "info-empty", text: "No metadata." }),
    );
    this.feedbackList.replaceChildren(
      ...info.feedbacks.map((feedback) =>
        el(
          "li",
          { dataset: { rating: feedback.rating ?? "none" } },
          el(
            "span",
            { class: "rating", title: feedback.rating ?? "no rating" },
            icon(feedback.rating === "up" ? ICONS.up : feedback.rating === "down" ? ICONS.down : ICONS.note),
          ),
          el("span", { text: feedback.comment || "(no comment)" }),
          el("time", { datetime: feedback.created_at ?? "", text: formatDate(feedback.created_at) }),
        ),
      ),
    );
  }

  setFeedbackEnabled(enabled) {
    for (const button of [this.upButton, this.downButton]) button.disabled = !enabled;
    this.comment.disabled = !enabled;
  }

  async sendFeedback(rating) {
    this.setFeedbackEnabled(false);
    try {
      const stored = await api.feedback(this.widget.sessionId, rating, this.comment.value);
      if (!stored) throw new ApiError("send a message first: the session does not exist yet");
      this.comment.value = "";
      this.status.textContent = "Thanks! Your feedback is stored in MongoDB.";
      this.status.dataset.state = "ok";
    } catch (error) {
      this.status.textContent = `Feedback not stored: ${error.message}`;
      this.status.dataset.state = "error";
    }
    await this.refresh();
  }
}

// ------------------------------------------------------------------ the widget

class ChatWidget {
  constructor() {
    this.sessionId = tabSessionId();
    this.busy = false;

    this.fab = el(
      "button",
      { type: "button", class: "chat-fab", "aria-label": "Open chat", "aria-expanded": "false" },
      icon(ICONS.chat),
    );
    this.fab.addEventListener("click", () => this.setOpen(true));

    this.modelBadge = el("span", { class: "model-badge", hidden: true });
    this.sessionLabel = el("span", { class: "session-label mono", title: "Session id (kept for this browser tab)" });
    this.infoButton = this.headerButton("Session", ICONS.info, () => this.info.toggle());
    this.infoButton.setAttribute("aria-expanded", "false");
    const newButton = this.headerButton("New chat", ICONS.plus, () => this.newChat());
    const closeButton = this.headerButton("Close chat", ICONS.close, () => this.setOpen(false), true);

    this.info = new SessionPanel(this);
    this.list = el("ol", { class: "chat-messages", "aria-live": "polite", "aria-label": "Conversation" });
    this.conversation = new Conversation(this.list);
    this.input = el("textarea", {
      class: "chat-input",
      rows: "1",
      placeholder: "Message the assistant…",
      "aria-label": "Message",
      maxlength: "4000",
    });
    this.sendButton = el("button", { type: "submit", class: "send-button", "aria-label": "Send" }, icon(ICONS.send));
    this.form = el("form", { class: "chat-composer" }, this.input, this.sendButton);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => this.autosize());

    this.panel = el(
      "section",
      { class: "chat-panel", role: "dialog", "aria-label": "Chat", "aria-hidden": "true" },
      el(
        "header",
        { class: "chat-header" },
        el("div", { class: "chat-title" }, el("h2", { text: "Assistant" }), this.modelBadge, this.sessionLabel),
        el("div", { class: "chat-actions" }, this.infoButton, newButton, closeButton),
      ),
      this.info.root,
      this.list,
      this.form,
    );
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.setOpen(false);
    });
    this.root = el("div", { class: "chat-widget" }, this.fab, this.panel);
    document.body.append(this.root);
  }

  headerButton(label, path, handler, iconOnly = false) {
    const button = el("button", { type: "button", class: "header-button", title: label, "aria-label": label }, icon(path));
    if (!iconOnly) button.append(el("span", { class: "header-button-text", text: label }));
    button.addEventListener("click", handler);
    return button;
  }

  async start() {
    this.sessionLabel.textContent = this.sessionId;
    this.setOpen(sessionStorage.getItem(OPEN_KEY) === "1", { focus: false });
    const [info] = await Promise.allSettled([api.info(), this.loadHistory()]);
    if (info.status === "fulfilled" && info.value) {
      this.modelBadge.hidden = false;
      this.modelBadge.textContent = info.value.demo_model ? "offline demo model" : info.value.model;
      this.modelBadge.title = info.value.model;
      this.modelBadge.classList.toggle("demo", info.value.demo_model);
    }
    this.root.dataset.ready = "true";
  }

  async loadHistory() {
    try {
      const history = await api.history(this.sessionId);
      this.conversation.clear();
      if (history && history.messages.length) this.conversation.show(history.messages);
      else this.greet();
    } catch (error) {
      this.conversation.notice(`Could not load the conversation: ${error.message}`);
    }
  }

  greet() {
    this.conversation.add(
      el("li", { class: "msg msg-hint", text: "Say hello. Your conversation is stored in MongoDB as you chat." }),
    );
  }

  setOpen(open, { focus = true } = {}) {
    this.panel.classList.toggle("open", open);
    this.panel.setAttribute("aria-hidden", String(!open));
    this.panel.inert = !open;
    this.fab.setAttribute("aria-expanded", String(open));
    this.fab.hidden = open;
    sessionStorage.setItem(OPEN_KEY, open ? "1" : "0");
    if (open) this.list.scrollTop = this.list.scrollHeight;
    if (focus) (open ? this.input : this.fab).focus();
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 140)}px`;
  }

  setBusy(busy) {
    this.busy = busy;
    this.sendButton.disabled = busy;
    this.root.dataset.busy = String(busy);
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text || this.busy) return;
    this.input.value = "";
    this.autosize();
    this.setBusy(true);
    this.list.querySelector(".msg-hint")?.remove();
    this.conversation.user(text);
    const reply = new Reply(this.conversation);
    let finished = false;
    try {
      for await (const event of api.stream(this.sessionId, text)) {
        if (event.type === "token") reply.token(event.text);
        else if (event.type === "tool") reply.tool(event.name, event.input);
        else if (event.type === "tool_result") reply.toolResult(event.status, event.text);
        else if (event.type === "done") {
          reply.done(event.metrics);
          finished = true;
        } else if (event.type === "error") {
          reply.fail(event.message);
          finished = true;
        }
      }
      if (!finished) reply.fail("The reply was cut off.");
    } catch (error) {
      reply.fail(`The message could not be sent: ${error.message}`);
    } finally {
      this.setBusy(false);
      this.input.focus();
      this.info.refresh();
    }
  }

  newChat() {
    if (this.busy) return;
    this.sessionId = newSessionId();
    sessionStorage.setItem(SESSION_KEY, this.sessionId);
    this.sessionLabel.textContent = this.sessionId;
    this.info.status.textContent = "";
    this.conversation.clear();
    this.greet();
    this.info.refresh();
    this.input.focus();
  }
}

const widget = new ChatWidget();
widget.start();
