// Chat widget of the mongodb-session-manager playground: a floating button, a slide-out panel, answers streamed
// token by token, the conversation reloaded from the backend, and a session panel with metadata, metrics and
// feedback. Every text (the user's, the model's, stored metadata) reaches the page through textContent or text
// nodes only (el() in /static/common/dom.js): nothing is ever parsed as HTML.

import { el } from "/static/common/dom.js";
import { api } from "./api.js";
import { Conversation, Reply } from "./conversation.js";
import { ICONS, icon } from "./icons.js";
import { SessionPanel } from "./session-panel.js";
import { newSessionId, rememberSessionId, tabSessionId } from "./session-id.js";
import { replyEvents } from "./stream.js";

const OPEN_KEY = "mongodb-session-manager.playground.open";

class ChatWidget {
  constructor() {
    this.sessionId = tabSessionId();
    this.busy = false;

    this.fab = el(
      "button",
      {
        type: "button",
        class: "chat-fab",
        "aria-label": "Open chat",
        "aria-expanded": "false",
        on: { click: () => this.setOpen(true) },
      },
      icon(ICONS.chat),
    );

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
      on: {
        keydown: (event) => {
          if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            this.submit();
          }
        },
        input: () => this.autosize(),
      },
    });
    this.sendButton = el("button", { type: "submit", class: "send-button", "aria-label": "Send" }, icon(ICONS.send));
    this.form = el(
      "form",
      {
        class: "chat-composer",
        on: {
          submit: (event) => {
            event.preventDefault();
            this.submit();
          },
        },
      },
      this.input,
      this.sendButton,
    );

    this.panel = el(
      "section",
      {
        class: "chat-panel",
        role: "dialog",
        "aria-label": "Chat",
        "aria-hidden": "true",
        on: {
          keydown: (event) => {
            if (event.key === "Escape") this.setOpen(false);
          },
        },
      },
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
    this.root = el("div", { class: "chat-widget" }, this.fab, this.panel);
    document.body.append(this.root);
  }

  headerButton(label, path, handler, iconOnly = false) {
    return el(
      "button",
      { type: "button", class: "header-button", title: label, "aria-label": label, on: { click: handler } },
      icon(path),
      iconOnly ? null : el("span", { class: "header-button-text", text: label }),
    );
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
      for await (const event of replyEvents(this.sessionId, text)) {
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
    rememberSessionId(this.sessionId);
    this.sessionLabel.textContent = this.sessionId;
    this.info.feedback.clearStatus();
    this.conversation.clear();
    this.greet();
    this.info.refresh();
    this.input.focus();
  }
}

new ChatWidget().start();
