// The Session panel: what MongoDB holds about this conversation (metadata, model, latest metrics, feedback).

import { el } from "/static/common/dom.js";
import { api } from "./api.js";
import { FeedbackForm } from "./feedback.js";
import { formatDate, formatValue } from "./format.js";
import { formatMetrics } from "./metrics.js";

export class SessionPanel {
  constructor(widget) {
    this.widget = widget;
    this.body = el("div", { class: "info-body" });
    this.feedback = new FeedbackForm({ sessionId: () => widget.sessionId, sent: () => this.refresh() });
    this.root = el(
      "section",
      { class: "chat-info", hidden: true, "aria-label": "Session information" },
      this.body,
      this.feedback.root,
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
    this.feedback.setEnabled(Boolean(info));
    if (!info) {
      this.body.replaceChildren(
        el("dl", {}, this.row("Session", sessionId, "mono")),
        el("p", { class: "info-empty", text: "Nothing stored yet: send a message to create the session." }),
      );
      this.feedback.show([]);
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
    this.feedback.show(info.feedbacks);
  }
}
