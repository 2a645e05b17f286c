"""The unified timeline of one session: every agent's messages and the feedback, in time order.

Messages come from the library (``MongoDBSessionRepository.session_messages``) already decoded, whatever
their layout; the session's other fields come as stored (``queries.detail_pipeline``). In an encrypted session,
both come decrypted, or with an `encryption.Unreadable` for each value the viewer could not decrypt: a message
then shows one ``encrypted`` block, a comment, system prompt or metadata value the API's marker.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mongodb_session_manager.documents import unescape_key
from web_common.values import byte_size, iso_utc, json_safe, parse_timestamp, plain_json

from .encryption import NOT_ENCRYPTED, Unreadable, api_value
from .markdown import markdown_ast

__all__ = ["convert_block", "feedback_counts", "session_detail"]

_ATTACHMENT_TYPES = ("image", "document", "video", "audio")
_USAGE_KEYS = ("inputTokens", "outputTokens", "totalTokens", "cacheReadInputTokens", "cacheWriteInputTokens")


def session_detail(
    document: Mapping[str, Any],
    messages: Mapping[str, Sequence[Mapping[str, Any]]],
    encryption: str = NOT_ENCRYPTED,
) -> dict[str, Any]:
    """Build the API view of one session.

    Args:
        document: The session read by ``queries.detail_pipeline`` (ciphertexts opened by a ``Revealer``).
        messages: Every agent's messages by agent id, as ``MongoDBSessionRepository.session_messages``
            returns them (an agent of ``document`` missing here has none).
        encryption: What the viewer could do with the session (``Revealer.session_state``).
    """
    session_created = parse_timestamp(document.get("created_at"))
    entries: list[tuple[datetime | None, dict[str, Any]]] = []
    agents: list[dict[str, Any]] = []
    for agent in document.get("agents") or []:
        agent_id = _agent_id(agent)
        stored = messages.get(unescape_key(str(agent.get("key", "")))) or []
        agent_messages = sorted(
            (m for m in stored if isinstance(m, Mapping)), key=lambda message: _int(message.get("message_id"))
        )
        agents.append(
            {
                "agent_id": agent_id,
                "model": _text_or_none(agent.get("model")),
                "system_prompt": _text_or_marker(agent.get("system_prompt")),
                "message_count": len(agent_messages),
            }
        )
        for message in agent_messages:
            moment = parse_timestamp(message.get("created_at"))
            entries.append((moment, _message_item(agent_id, message, moment)))
    feedbacks = [f for f in document.get("feedbacks") or [] if isinstance(f, Mapping)]
    for feedback in feedbacks:
        moment = parse_timestamp(feedback.get("created_at"))
        entries.append((moment, _feedback_item(feedback, moment)))

    fallback = session_created or datetime.min.replace(tzinfo=UTC)
    entries.sort(key=lambda entry: entry[0] or fallback)  # stable: ties keep agent and message_id order
    application = document.get("application_name")
    return {
        "session_id": str(document.get("session_id")),
        "created_at": _iso_or_none(document.get("created_at")),
        "updated_at": _iso_or_none(document.get("updated_at")),
        "application_name": application if isinstance(application, str) else None,
        "metadata": json_safe(api_value(document.get("metadata") or {})),
        "encryption": encryption,
        "agents": agents,
        "feedback_counts": feedback_counts(feedbacks),
        "guardrail_summary": _guardrail_summary(document.get("guardrail_summary")),
        "timeline": [item for _, item in entries],
    }


def feedback_counts(feedbacks: list[Mapping[str, Any]]) -> dict[str, int]:
    """Count feedback by rating; anything other than up or down is neutral."""
    counts = {"up": 0, "down": 0, "neutral": 0}
    for feedback in feedbacks:
        rating = feedback.get("rating")
        counts[rating if rating in ("up", "down") else "neutral"] += 1
    return counts


def _message_item(agent_id: str, stored: Mapping[str, Any], moment: datetime | None) -> dict[str, Any]:
    """One message; a redacted message shows its redaction, never the original."""
    redaction = stored.get("redact_message")
    redacted = isinstance(redaction, Mapping | Unreadable)
    message = redaction if redacted else stored.get("message")
    blocks = _blocks(message.get("content") if isinstance(message, Mapping) else message)
    message = message if isinstance(message, Mapping) else {}
    return {
        "type": "message",
        "timestamp": iso_utc(moment) if moment else None,
        "agent_id": agent_id,
        "message_id": _int(stored.get("message_id")),
        "role": str(message.get("role", "")),
        "redacted": redacted,
        "metrics": _metrics(stored.get("event_loop_metrics")),
        "guardrail": _guardrail_event(stored.get("guardrail_event")),
        "blocks": blocks,
    }


def _blocks(content: Any) -> list[dict[str, Any]]:
    """A message's content blocks in their API form; one ``encrypted`` block for content the viewer cannot decrypt."""
    if isinstance(content, Unreadable):
        return [{"kind": "encrypted", **content.as_api()}]
    if not isinstance(content, list):
        return []
    return [convert_block(block) for block in content if isinstance(block, Mapping)]


def _feedback_item(feedback: Mapping[str, Any], moment: datetime | None) -> dict[str, Any]:
    rating = feedback.get("rating")
    comment = feedback.get("comment")
    return {
        "type": "feedback",
        "timestamp": iso_utc(moment) if moment else None,
        "rating": rating if rating in ("up", "down") else None,
        "comment": comment if isinstance(comment, str) else _marker_or_none(comment),
    }


def convert_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one strands content block, as the library returns it (decoded), to its API form (see API.md)."""
    if isinstance(block.get("text"), str):
        return {"kind": "text", "markdown": markdown_ast(block["text"])}
    tool_use = block.get("toolUse")
    if isinstance(tool_use, Mapping):
        return {
            "kind": "tool_use",
            "name": str(tool_use.get("name", "")),
            "tool_use_id": str(tool_use.get("toolUseId", "")),
            "input": plain_json(tool_use.get("input")),
        }
    tool_result = block.get("toolResult")
    if isinstance(tool_result, Mapping):
        return _tool_result(tool_result)
    for attachment_type in _ATTACHMENT_TYPES:
        if isinstance(block.get(attachment_type), Mapping):
            return _attachment(attachment_type, block[attachment_type])
    reasoning = block.get("reasoningContent")
    if isinstance(reasoning, Mapping):
        text = (reasoning.get("reasoningText") or {}).get("text")
        return {"kind": "reasoning", "text": text if isinstance(text, str) else "[redacted reasoning]"}
    return {"kind": "other", "json": plain_json(block)}


def _tool_result(result: Mapping[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for item in result.get("content") or []:
        if not isinstance(item, Mapping):
            content.append({"kind": "json", "json": plain_json(item)})
        elif isinstance(item.get("text"), str):
            content.append({"kind": "text", "text": item["text"]})
        elif "json" in item:
            content.append({"kind": "json", "json": plain_json(item["json"])})
        else:
            kinds = [kind for kind in _ATTACHMENT_TYPES if isinstance(item.get(kind), Mapping)]
            if kinds:
                content.append(_attachment(kinds[0], item[kinds[0]]))
            else:
                content.append({"kind": "json", "json": plain_json(item)})
    return {
        "kind": "tool_result",
        "tool_use_id": str(result.get("toolUseId", "")),
        "status": "error" if result.get("status") == "error" else "success",
        "content": content,
    }


def _attachment(attachment_type: str, media: Mapping[str, Any]) -> dict[str, Any]:
    """Describe an attachment by format, name and size; the bytes are never shipped."""
    source = media.get("source")
    size = byte_size(source.get("bytes")) if isinstance(source, Mapping) else None
    name = media.get("name")
    media_format = media.get("format")
    return {
        "kind": "attachment",
        "attachment_type": attachment_type,
        "format": media_format if isinstance(media_format, str) else None,
        "name": name if isinstance(name, str) else None,
        "size_bytes": size,
    }


def _metrics(stored: Any) -> dict[str, Any] | None:
    """The invocation's figures from ``event_loop_metrics``, or None when the message has none.

    Latency, time to first byte, tokens (cache reads and writes included), cycles and tool usage; a figure
    the message does not hold is None (tool usage: an empty list).
    """
    if not isinstance(stored, Mapping):
        return None
    accumulated = _mapping(stored.get("accumulated_metrics"))
    usage = _mapping(stored.get("accumulated_usage"))
    cycles = _mapping(stored.get("cycle_metrics"))
    metrics: dict[str, Any] = {
        "latencyMs": _number(accumulated.get("latencyMs")),
        "timeToFirstByteMs": _number(accumulated.get("timeToFirstByteMs")),
    }
    metrics.update({key: _number(usage.get(key)) for key in _USAGE_KEYS})
    metrics["cycleCount"] = _number(cycles.get("cycle_count"))
    metrics["cycleDurationSeconds"] = _number(cycles.get("total_duration"))
    metrics["toolUsage"] = _tool_usage(stored.get("tool_usage"))
    return metrics


def _tool_usage(stored: Any) -> list[dict[str, Any]]:
    """Each tool's calls, errors and average time (seconds) of the invocation, in stored order."""
    tools = json_safe(stored)
    if not isinstance(tools, Mapping):
        return []
    usage = []
    for name, figures in tools.items():
        figures = _mapping(figures)
        usage.append(
            {
                "name": unescape_key(str(name)),
                "calls": _number(figures.get("call_count")),
                "errors": _number(figures.get("error_count")),
                "averageTimeSeconds": _number(figures.get("average_time")),
            }
        )
    return usage


def _guardrail_event(stored: Any) -> dict[str, Any] | None:
    """What a guardrail did to this message (``guardrail_event``), or None when it did nothing."""
    event = json_safe(stored)
    if not isinstance(event, Mapping):
        return None
    policies = event.get("policies_triggered")
    stop_reason = event.get("stop_reason")
    return {
        "action": _text_or_none(event.get("action")),
        "timestamp": _iso_or_none(event.get("timestamp")),
        "stop_reason": stop_reason if isinstance(stop_reason, str) else None,
        "policies": [str(policy) for policy in policies] if isinstance(policies, list) else [],
    }


def _guardrail_summary(stored: Any) -> dict[str, Any] | None:
    """The session's ``guardrail_summary``: counts by action and policy and the latest events; None if absent."""
    if not isinstance(stored, Mapping):
        return None
    latest = []
    for entry in stored.get("latest") or []:
        event = _guardrail_event(entry)
        if event is not None and isinstance(entry, Mapping):
            agent_id = entry.get("agent_id")
            message_id = entry.get("message_id")
            event["agent_id"] = agent_id if isinstance(agent_id, str) else None
            event["message_id"] = message_id if _number(message_id) is not None else None
            latest.append(event)
    total = _number(stored.get("total"))
    return {
        "total": int(total) if total is not None else 0,
        "by_action": _counts(stored.get("by_action")),
        "by_policy": _counts(stored.get("by_policy")),
        "latest": latest,
    }


def _counts(stored: Any) -> dict[str, int]:
    """A stored ``{escaped name: count}`` map with its names unescaped; non-numeric counts are left out."""
    counts = {}
    for name, count in _mapping(stored).items():
        number = _number(count)
        if number is not None:
            counts[unescape_key(str(name))] = int(number)
    return counts


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _agent_id(agent: Mapping[str, Any]) -> str:
    stored = agent.get("agent_id")
    return stored if isinstance(stored, str) else unescape_key(str(agent.get("key", "")))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(json_safe(value))


def _text_or_marker(value: Any) -> str | dict[str, str] | None:
    """`_text_or_none`, or the API's marker of a value the viewer could not decrypt."""
    return value.as_api() if isinstance(value, Unreadable) else _text_or_none(value)


def _marker_or_none(value: Any) -> dict[str, str] | None:
    """The API's marker of a value the viewer could not decrypt; None for anything else."""
    return value.as_api() if isinstance(value, Unreadable) else None


def _iso_or_none(value: Any) -> str | None:
    moment = parse_timestamp(value)
    return iso_utc(moment) if moment else None
