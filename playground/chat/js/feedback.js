// Feedback on the conversation: thumbs up/down with an optional comment, and the feedback stored so far.

import { el } from "/static/common/dom.js";
import { ApiError, api } from "./api.js";
import { formatDate } from "./format.js";
import { ICONS, icon } from "./icons.js";

export class FeedbackForm {
  /** sessionId: () => the current session id; sent: called after each attempt (to refresh the panel). */
  constructor({ sessionId, sent }) {
    this.sessionId = sessionId;
    this.sent = sent;
    this.comment = el("input", {
      class: "feedback-comment",
      type: "text",
      maxlength: "1000",
      placeholder: "Comment (optional)",
      "aria-label": "Feedback comment",
    });
    this.status = el("p", { class: "feedback-status", role: "status" });
    this.upButton = this.ratingButton("up", "Helpful", ICONS.up);
    this.downButton = this.ratingButton("down", "Not helpful", ICONS.down);
    this.list = el("ul", { class: "feedback-list" });
    this.root = el(
      "div",
      { class: "feedback" },
      el("h3", { text: "Was this conversation helpful?" }),
      el("div", { class: "feedback-row" }, this.upButton, this.downButton, this.comment),
      this.status,
      this.list,
    );
  }

  ratingButton(rating, label, path) {
    return el(
      "button",
      {
        type: "button",
        class: "feedback-button",
        "data-rating": rating,
        title: label,
        "aria-label": label,
        on: { click: () => this.send(rating) },
      },
      icon(path),
    );
  }

  setEnabled(enabled) {
    for (const button of [this.upButton, this.downButton]) button.disabled = !enabled;
    this.comment.disabled = !enabled;
  }

  clearStatus() {
    this.status.textContent = "";
  }

  /** Show the stored feedback entries, oldest first. */
  show(feedbacks) {
    this.list.replaceChildren(
      ...feedbacks.map((feedback) =>
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

  async send(rating) {
    this.setEnabled(false);
    try {
      const stored = await api.feedback(this.sessionId(), rating, this.comment.value);
      if (!stored) throw new ApiError("send a message first: the session does not exist yet");
      this.comment.value = "";
      this.status.textContent = "Thanks! Your feedback is stored in MongoDB.";
      this.status.dataset.state = "ok";
    } catch (error) {
      this.status.textContent = `Feedback not stored: ${error.message}`;
      this.status.dataset.state = "error";
    }
    await this.sent();
  }
}
