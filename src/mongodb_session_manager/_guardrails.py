"""Guardrail auditing: the ``guardrail_event`` of a redacted message and the session's bounded summary. No I/O.

strands redacts the user's input when the model streams a ``redactContent`` event (Amazon Bedrock does when a
guardrail blocks the input): it replaces the agent's latest message and calls the session manager's
``redact_latest_message`` in the middle of the model call. The stop reason (``guardrail_intervened``) reaches
the hooks only when the call ends (``AfterModelCallEvent``), and the guardrail's trace only in the stream's
``metadata`` event, after the redaction, which no hook sees; the manager watches the stream for it with a
pass-through ``InvokeModelStage`` middleware (`watch_model_stream`). So a redaction made during a model call
is written when that call ends, with everything known, in one write (`ModelCalls`); one made outside a model
call is written at once.

A stored trace keeps the assessments but not the text that was judged: every ``match`` value and the
``modelOutput`` are removed, since they hold what the redaction removed.
"""

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strands.types.session import SessionMessage

from . import documents as docs

GUARDRAIL_EVENT_FIELD = "guardrail_event"
"""The extra field of a stored message that records the guardrail action taken on it."""

GUARDRAIL_SUMMARY_FIELD = "guardrail_summary"
"""The session-document field that counts the session's guardrail events and keeps the latest ones."""

LATEST_EVENTS = 20
"""How many of the latest events ``guardrail_summary.latest`` keeps (``$push`` with ``$slice: -20``)."""

REDACTED = "redacted"
"""The action of a message whose content was replaced (``redact_latest_message``): the only one written today."""

_TEXT_KEYS = frozenset({"match", "modelOutput"})
"""Trace keys whose values are the judged text itself; never stored."""


def guardrail_trace(trace: Any) -> dict[str, Any] | None:
    """Return the guardrail assessment of a model trace: ``trace["guardrail"]``, or ``trace`` itself when it is one."""
    if not isinstance(trace, Mapping):
        return None
    inner = trace.get("guardrail")
    if isinstance(inner, Mapping):
        return dict(inner)
    return dict(trace) if trace else None


def policies_triggered(trace: Mapping[str, Any]) -> list[str]:
    """Name the policies that acted in a guardrail trace, as ``"<policy>:<name or type>"``, sorted.

    An entry of a policy's list counts when its ``action`` is set and not ``"NONE"`` and it is not marked
    ``detected: false``: ``contentPolicy:VIOLENCE``, ``sensitiveInformationPolicy:EMAIL``,
    ``topicPolicy:<topic name>``, ``wordPolicy:customWords``.
    """
    assessments: list[Any] = list((trace.get("inputAssessment") or {}).values())
    for outputs in (trace.get("outputAssessments") or {}).values():
        assessments.extend(outputs if isinstance(outputs, list) else [outputs])
    names: set[str] = set()
    for assessment in assessments:
        if not isinstance(assessment, Mapping):
            continue
        for policy, detail in assessment.items():
            if not isinstance(detail, Mapping):
                continue
            for list_name, entries in detail.items():
                for entry in entries if isinstance(entries, list) else []:
                    if _acted(entry):
                        names.add(f"{policy}:{entry.get('name') or entry.get('type') or list_name}")
    return sorted(names)


def _acted(entry: Any) -> bool:
    return (
        isinstance(entry, Mapping) and entry.get("action") not in (None, "NONE") and entry.get("detected") is not False
    )


def without_text(value: Any) -> Any:
    """Return a trace without the judged text: every ``match`` and ``modelOutput`` key removed, recursively."""
    if isinstance(value, Mapping):
        return {key: without_text(item) for key, item in value.items() if key not in _TEXT_KEYS}
    if isinstance(value, list):
        return [without_text(item) for item in value]
    return value


def guardrail_event(
    action: str, timestamp: datetime, stop_reason: str | None = None, trace: Any = None
) -> dict[str, Any]:
    """Build the stored ``guardrail_event``: ``{action, timestamp, stop_reason?, policies_triggered?, trace?}``."""
    event: dict[str, Any] = {"action": action, "timestamp": timestamp}
    if stop_reason is not None:
        event["stop_reason"] = str(stop_reason)
    assessment = guardrail_trace(trace)
    if assessment is not None:
        event["policies_triggered"] = policies_triggered(assessment)
        event["trace"] = docs.encode_value(without_text(assessment))
    return event


def summary_update(agent_id: str, message_id: int, event: Mapping[str, Any]) -> dict[str, Any]:
    """The session-document update that counts ``event`` in ``guardrail_summary`` (``$inc`` and a bounded ``$push``).

    ``by_action`` and ``by_policy`` are keyed by the escaped action and policy names; ``latest`` keeps the
    last `LATEST_EVENTS` events without their traces.
    """
    counts = {f"{GUARDRAIL_SUMMARY_FIELD}.total": 1}
    counts[f"{GUARDRAIL_SUMMARY_FIELD}.by_action.{docs.escape_key(event['action'])}"] = 1
    for policy in event.get("policies_triggered", []):
        counts[f"{GUARDRAIL_SUMMARY_FIELD}.by_policy.{docs.escape_key(policy)}"] = 1
    latest = {"agent_id": agent_id, "message_id": message_id}
    latest.update({key: value for key, value in event.items() if key != "trace"})
    return {
        "$inc": counts,
        "$push": {f"{GUARDRAIL_SUMMARY_FIELD}.latest": {"$each": [latest], "$slice": -LATEST_EVENTS}},
    }


@dataclass
class Redaction:
    """A redaction to write: the record strands redacted, its timestamp, and what the caller knew of it."""

    record: SessionMessage
    timestamp: datetime
    twins: list[SessionMessage] = field(default_factory=list)
    """Earlier records holding the same message dict (a retried prompt): rewritten too, without an event."""
    stop_reason: str | None = None
    trace: Any = None


@dataclass
class _ModelCall:
    trace: Any = None
    redactions: list[Redaction] = field(default_factory=list)


class ModelCalls:
    """Per agent id, the model call streaming now: the guardrail trace seen in it and the redactions it caused."""

    def __init__(self) -> None:
        """Start with no model call open."""
        self._open: dict[str, _ModelCall] = {}

    def open(self, agent_id: str) -> None:
        """A model call of the agent starts (``BeforeModelCallEvent``)."""
        self._open[agent_id] = _ModelCall()

    def saw_trace(self, agent_id: str, trace: Any) -> None:
        """The open call's stream carried a guardrail trace."""
        call = self._open.get(agent_id)
        if call is not None and guardrail_trace(trace) is not None:
            call.trace = trace

    def defer(self, agent_id: str, redaction: Redaction) -> bool:
        """Keep a redaction for the end of the agent's open model call; False when no call is open."""
        call = self._open.get(agent_id)
        if call is None:
            return False
        call.redactions.append(redaction)
        return True

    def close(self, agent_id: str, stop_reason: str | None) -> list[Redaction]:
        """End the agent's model call; return its redactions, completed with its stop reason and trace."""
        call = self._open.pop(agent_id, None)
        if call is None:
            return []
        for redaction in call.redactions:
            if redaction.stop_reason is None:
                redaction.stop_reason = stop_reason
            if redaction.trace is None:
                redaction.trace = call.trace
        return call.redactions


def watch_model_stream(calls: ModelCalls) -> Callable[..., AsyncGenerator[Any, None]]:
    """Return an ``InvokeModelStage`` middleware that passes every event on and notes guardrail traces in ``calls``.

    A raw model chunk is a stream event ``{"event": chunk}``; Bedrock's guardrail trace is in the ``metadata``
    chunk's ``trace``.
    """

    async def watch(context: Any, next_fn: Callable[[Any], AsyncGenerator[Any, None]]) -> AsyncGenerator[Any, None]:
        agent_id = getattr(context.agent, "agent_id", None)
        async for event in next_fn(context):
            chunk = event.get("event") if isinstance(event, dict) else None
            if isinstance(chunk, dict) and isinstance(chunk.get("metadata"), dict) and agent_id is not None:
                trace = chunk["metadata"].get("trace")
                if isinstance(trace, dict) and isinstance(trace.get("guardrail"), dict):
                    calls.saw_trace(agent_id, trace["guardrail"])
            yield event

    return watch
