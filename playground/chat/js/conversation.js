// The conversation list: stored messages after a reload, and one streamed reply at a time.

import { el } from "/static/common/dom.js";
import { formatToolCall } from "./format.js";
import { ICONS, icon } from "./icons.js";
import { metricsNote } from "./metrics.js";

/** Renders messages into the list; one streamed reply at a time goes through a Reply. */
export class Conversation {
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

  assistant(text, state = "done", metrics = null) {
    return this.add(
      el(
        "li",
        { class: "msg msg-assistant", dataset: { state } },
        el("div", { class: "bubble", text }),
        metricsNote(metrics),
      ),
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

  /** Show stored messages (the history the backend restored), each answer with its stored metrics. */
  show(messages) {
    for (const message of messages) {
      if (message.role === "user") {
        if (message.text) this.user(message.text);
        for (const result of message.tool_results) this.toolResult(result.status, result.text);
      } else {
        if (message.text) this.assistant(message.text, "done", message.metrics);
        for (const call of message.tool_calls) this.toolCall(call.name, call.input);
      }
    }
    this.list.scrollTop = this.list.scrollHeight;
  }
}

/** One streamed reply: a typing indicator, then bubbles filled token by token, tool chips in between. */
export class Reply {
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

  /** The reply is stored: its last answer shows the metrics stored with it (as after a reload). */
  done(metrics) {
    const last = this.bubble;
    this.closeBubble();
    this.hideTyping();
    const note = metricsNote(metrics);
    if (last && note) this.conversation.keepBottom(() => last.append(note));
  }

  fail(message) {
    this.closeBubble();
    this.hideTyping();
    this.conversation.notice(message);
  }
}
