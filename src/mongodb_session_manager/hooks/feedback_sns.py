"""``FeedbackSNSHook``: publish each user feedback to an Amazon SNS topic chosen by its rating.

Routing: ``rating="up"`` goes to ``topic_arn_good``, ``"down"`` to ``topic_arn_bad`` and anything else (``None``)
to ``topic_arn_neutral``; a topic given as ``"none"`` turns that route off.

Each message::

    Subject:  {subject_prefix}Virtual Agents Feedback {positive|negative|neutral} on session {session_id}
              (printable ASCII only, at most 100 characters: SNS refuses anything else)
    Body:     {body_prefix}Password: {viewer password}

              Session: {session_id}

              {comment}
    Attributes: session_id, rating (positive|negative|neutral)

Prefixes are templates with ``{session_id}``, ``{rating}`` (positive/negative/neutral) and ``{timestamp}``
(ISO 8601, UTC). The viewer password lets whoever receives the alert open the session in the Session Viewer; it is
read from MongoDB on the caller's thread (one small read, after the feedback is stored) because the manager may be
closed by the time the background publisher runs.

IAM: ``sns:Publish`` on the three topics.
"""

from __future__ import annotations

import logging
import string
import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any

from ._base import NotificationHook, boto3_available, resolve_region
from ._events import utc_timestamp

logger = logging.getLogger(__name__)

SUBJECT_MAX_CHARS = 100
"""SNS limit on ``Subject``: ASCII, no line breaks or control characters, at most 100 characters."""

MESSAGE_MAX_BYTES = 256 * 1024 - 4 * 1024
"""SNS allows 256 KiB per message including attributes; bodies are cut to this many UTF-8 bytes."""

TEMPLATE_VARIABLES = ("session_id", "rating", "timestamp")
DISABLED = "none"
_RATING_TEXT = {"up": "positive", "down": "negative"}
_TRUNCATED = "\n[truncated]"


class FeedbackSNSHook(NotificationHook):
    """Feedback interceptor that publishes every added feedback to the SNS topic for its rating."""

    hook_name = "FeedbackSNSHook"

    def __init__(
        self,
        topic_arn_good: str | None,
        topic_arn_bad: str | None,
        topic_arn_neutral: str | None,
        subject_prefix_good: str | None = None,
        subject_prefix_bad: str | None = None,
        subject_prefix_neutral: str | None = None,
        body_prefix_good: str | None = None,
        body_prefix_bad: str | None = None,
        body_prefix_neutral: str | None = None,
        *,
        region: str | None = None,
        region_name: str | None = None,
        client: Any = None,
        boto3_session: Any = None,
        endpoint_url: str | None = None,
        max_workers: int = 4,
        max_pending: int = 1000,
    ) -> None:
        """Create the hook and its SNS client.

        Args:
            topic_arn_good: Topic for ``rating="up"``; ``"none"`` sends nothing for it.
            topic_arn_bad: Topic for ``rating="down"``; ``"none"`` sends nothing for it.
            topic_arn_neutral: Topic for any other rating (``None``); ``"none"`` sends nothing for it.
            subject_prefix_good: Subject prefix template for positive feedback.
            subject_prefix_bad: Subject prefix template for negative feedback.
            subject_prefix_neutral: Subject prefix template for neutral feedback.
            body_prefix_good: Body prefix template for positive feedback.
            body_prefix_bad: Body prefix template for negative feedback.
            body_prefix_neutral: Body prefix template for neutral feedback.
            region: AWS region of the client (alias ``region_name``); defaults to the region in the topic ARNs.
            region_name: Alias of ``region``.
            client: A boto3 SNS client to use instead of creating one.
            boto3_session: The ``boto3.session.Session`` to create the client from.
            endpoint_url: Endpoint of an SNS-compatible service (LocalStack, moto).
            max_workers: Background threads publishing (each session's feedback stays in order).
            max_pending: Most notifications queued at once; beyond that new ones are dropped with a warning.

        Raises:
            ImportError: boto3 is not installed (and no ``client`` was given).
            ValueError: A prefix template is malformed or uses a variable other than ``{session_id}``,
                ``{rating}`` and ``{timestamp}``.
        """
        self.topics = {
            "positive": _route(topic_arn_good),
            "negative": _route(topic_arn_bad),
            "neutral": _route(topic_arn_neutral),
        }
        self.subject_prefixes = {
            "positive": _check_template("subject_prefix_good", subject_prefix_good),
            "negative": _check_template("subject_prefix_bad", subject_prefix_bad),
            "neutral": _check_template("subject_prefix_neutral", subject_prefix_neutral),
        }
        self.body_prefixes = {
            "positive": _check_template("body_prefix_good", body_prefix_good),
            "negative": _check_template("body_prefix_bad", body_prefix_bad),
            "neutral": _check_template("body_prefix_neutral", body_prefix_neutral),
        }
        super().__init__("sns", max_workers, max_pending)
        self._use_client(
            "sns",
            client=client,
            region=resolve_region(region, region_name) or _arn_region(self.topics.values()),
            endpoint_url=endpoint_url,
            boto3_session=boto3_session,
            max_workers=max_workers,
        )
        logger.debug("topics=<%s> | feedback sns hook created", self.topics)

    def build_message(
        self, session_id: str, feedback: Mapping[str, Any], password: str | None, timestamp: str | None = None
    ) -> dict[str, Any]:
        """Return the ``sns.publish`` arguments for one feedback (``TopicArn`` is None when its route is off)."""
        rating = rating_text(feedback.get("rating"))
        variables = {"session_id": session_id, "rating": rating, "timestamp": timestamp or utc_timestamp()}
        subject_prefix = _fill(self.subject_prefixes[rating], variables)
        body_prefix = _fill(self.body_prefixes[rating], variables)
        subject = f"{subject_prefix}Virtual Agents Feedback {rating} on session {session_id}"
        comment = feedback.get("comment")
        comment_text = "" if comment is None else str(comment)
        body = f"{body_prefix}Password: {password or 'N/A'}\n\nSession: {session_id}\n\n{comment_text}"
        return {
            "TopicArn": self.topics[rating],
            "Subject": sanitize_subject(subject),
            "Message": _truncate_utf8(body, MESSAGE_MAX_BYTES),
            "MessageAttributes": {
                "session_id": {"DataType": "String", "StringValue": session_id},
                "rating": {"DataType": "String", "StringValue": rating},
            },
        }

    def _notify(
        self, action: str, session_id: str, kwargs: Mapping[str, Any], result: Any, session_manager: Any
    ) -> None:
        feedback = kwargs.get("feedback")
        if action != "add" or not isinstance(feedback, Mapping):
            return
        rating = rating_text(feedback.get("rating"))
        if self.topics[rating] is None:
            logger.debug("session_id=<%s> | rating=<%s> | route disabled, no notification", session_id, rating)
            return
        message = self.build_message(session_id, feedback, _viewer_password(session_manager, session_id))
        if message["TopicArn"].endswith(".fifo"):
            message["MessageGroupId"] = session_id
            message["MessageDeduplicationId"] = uuid.uuid4().hex
        self._submit(session_id, f"sns:{message['TopicArn']}", self._publish, session_id, message)

    def _publish(self, session_id: str, message: dict[str, Any]) -> None:
        response = self._client.publish(**message)
        logger.debug(
            "session_id=<%s> | topic_arn=<%s> | message_id=<%s> | feedback published",
            session_id,
            message["TopicArn"],
            response.get("MessageId"),
        )


def create_feedback_sns_hook(
    topic_arn_good: str | None,
    topic_arn_bad: str | None,
    topic_arn_neutral: str | None,
    subject_prefix_good: str | None = None,
    subject_prefix_bad: str | None = None,
    subject_prefix_neutral: str | None = None,
    body_prefix_good: str | None = None,
    body_prefix_bad: str | None = None,
    body_prefix_neutral: str | None = None,
    **options: Any,
) -> FeedbackSNSHook:
    """Create a feedback hook that publishes to SNS by rating; pass it as ``feedback_hook``.

    ``options`` are `FeedbackSNSHook`'s keyword-only arguments (``region``, ``client``, ``boto3_session``,
    ``endpoint_url``, ``max_workers``, ``max_pending``).
    """
    return FeedbackSNSHook(
        topic_arn_good,
        topic_arn_bad,
        topic_arn_neutral,
        subject_prefix_good,
        subject_prefix_bad,
        subject_prefix_neutral,
        body_prefix_good,
        body_prefix_bad,
        body_prefix_neutral,
        **options,
    )


def is_feedback_sns_hook_available() -> bool:
    """Return True when boto3 is installed, so `create_feedback_sns_hook` can work."""
    return boto3_available()


def rating_text(rating: Any) -> str:
    """Return ``positive`` for ``"up"``, ``negative`` for ``"down"`` and ``neutral`` for anything else."""
    return _RATING_TEXT.get(rating, "neutral") if isinstance(rating, str) else "neutral"


def sanitize_subject(subject: str) -> str:
    """Make a subject SNS accepts: printable ASCII on one line, at most 100 characters (cut with ``...``)."""
    decomposed = unicodedata.normalize("NFKD", subject)
    kept = "".join(
        char if char.isascii() and char.isprintable() else " " for char in decomposed if not unicodedata.combining(char)
    )
    text = " ".join(kept.split())
    if len(text) > SUBJECT_MAX_CHARS:
        text = text[: SUBJECT_MAX_CHARS - 3].rstrip() + "..."
    return text or "Virtual Agents Feedback"


def _route(topic_arn: str | None) -> str | None:
    if topic_arn is None or not topic_arn.strip() or topic_arn.strip().lower() == DISABLED:
        return None
    return topic_arn.strip()


def _arn_region(topic_arns: Any) -> str | None:
    for arn in topic_arns:
        parts = arn.split(":") if arn else []
        if len(parts) >= 6 and parts[0] == "arn" and parts[3]:
            return str(parts[3])
    return None


def _check_template(name: str, template: str | None) -> str | None:
    if template is None:
        return None
    if not isinstance(template, str):
        raise TypeError(f"{name} must be a string, not {type(template).__name__}")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        raise ValueError(f"{name}=<{template!r}> | invalid template: {error}") from error
    unknown = [field for field in fields if field not in TEMPLATE_VARIABLES]
    if unknown:
        allowed = ", ".join(f"{{{variable}}}" for variable in TEMPLATE_VARIABLES)
        raise ValueError(f"{name}=<{template!r}> | unknown template variable {unknown[0]!r}; use {allowed}")
    return template


def _fill(template: str | None, variables: Mapping[str, str]) -> str:
    return template.format(**variables) if template else ""


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    cut = max_bytes - len(_TRUNCATED.encode("utf-8"))
    return encoded[:cut].decode("utf-8", errors="ignore") + _TRUNCATED


def _viewer_password(session_manager: Any, session_id: str) -> str | None:
    if session_manager is None:
        return None
    try:
        password = session_manager.get_session_viewer_password()
    except Exception as error:
        logger.warning(
            "session_id=<%s> | error=<%s> | viewer password unavailable for the notification", session_id, error
        )
        return None
    return str(password) if password else None
