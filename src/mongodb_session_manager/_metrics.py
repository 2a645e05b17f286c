"""What one agent invocation costs, measured from strands' event-loop totals. No I/O.

strands keeps lifetime totals on ``agent.event_loop_metrics`` and adds a model call's usage and latency to
them only AFTER the call's message has been appended (the message event fires first). So the cost of an
invocation, when its closing message is appended, is: the totals now, minus the totals when the
invocation started, plus the model call whose message this is (known from ``AfterModelCallEvent``). That
is the same number for an ``Agent`` that lives across requests and for one rebuilt per request.

The closing message is the invocation's last assistant message. One without a tool call usually closes it
and carries the figures on its own ``$push``; when the invocation ends elsewhere (an interrupt after a tool
call, a forced structured-output call after a plain answer), `InvocationMetrics.end` returns the one
correction to write.
"""

from dataclasses import dataclass
from typing import Any

from strands.hooks.events import AfterModelCallEvent
from strands.telemetry.metrics import EventLoopMetrics

METRICS_FIELD = "event_loop_metrics"
"""The extra field of a stored message that holds its invocation's cost (the seed's name)."""


@dataclass(frozen=True)
class Figures:
    """Latency and token counts: a total, a difference of totals, or one model call."""

    latency_ms: int | float = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def totals(cls, loop: EventLoopMetrics) -> "Figures":
        """The lifetime totals strands has counted so far."""
        return cls._of(loop.accumulated_usage, loop.accumulated_metrics)

    @classmethod
    def of_model_message(cls, message: Any) -> "Figures":
        """One model call, from the ``metadata`` strands attaches to the message the model produced."""
        metadata = message.get("metadata") if isinstance(message, dict) else None
        metadata = metadata if isinstance(metadata, dict) else {}
        return cls._of(metadata.get("usage") or {}, metadata.get("metrics") or {})

    @classmethod
    def _of(cls, usage: Any, metrics: Any) -> "Figures":
        return cls(
            latency_ms=metrics.get("latencyMs", 0) or 0,
            input_tokens=usage.get("inputTokens", 0) or 0,
            output_tokens=usage.get("outputTokens", 0) or 0,
            total_tokens=usage.get("totalTokens", 0) or 0,
        )

    def __add__(self, other: "Figures") -> "Figures":
        """Add two figures field by field."""
        return Figures(
            self.latency_ms + other.latency_ms,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
        )

    def __sub__(self, other: "Figures") -> "Figures":
        """Subtract field by field (totals now minus totals at the start)."""
        return Figures(
            self.latency_ms - other.latency_ms,
            self.input_tokens - other.input_tokens,
            self.output_tokens - other.output_tokens,
            self.total_tokens - other.total_tokens,
        )

    def document(self) -> dict[str, Any]:
        """The stored ``event_loop_metrics`` value (the seed's field names)."""
        return {
            "accumulated_metrics": {"latencyMs": self.latency_ms},
            "accumulated_usage": {
                "inputTokens": self.input_tokens,
                "outputTokens": self.output_tokens,
                "totalTokens": self.total_tokens,
            },
        }


@dataclass(frozen=True)
class Correction:
    """The one write an invocation's end needs: its figures on ``message_id``, removed from ``move_from``."""

    message_id: int
    metrics: dict[str, Any]
    move_from: int | None = None


@dataclass
class _Invocation:
    start: Figures
    pending: Figures | None = None
    """The model call whose message strands has not appended yet (so not yet in the totals)."""
    closing_id: int | None = None
    """The latest assistant message appended in this invocation."""
    stored: tuple[int, dict[str, Any]] | None = None
    """(message id, metrics) that rode on a message's ``$push``."""


class InvocationMetrics:
    """Per agent id, the open invocation's start totals and what its messages carried."""

    def __init__(self) -> None:
        """Start with no open invocation."""
        self._open: dict[str, _Invocation] = {}

    def start(self, agent: Any) -> None:
        """Open an invocation of ``agent`` (``BeforeInvocationEvent``)."""
        loop = getattr(agent, "event_loop_metrics", None)
        if isinstance(loop, EventLoopMetrics):
            self._open[agent.agent_id] = _Invocation(start=Figures.totals(loop))

    def model_call_ended(self, event: AfterModelCallEvent) -> None:
        """Note the call strands will count after appending its message (``AfterModelCallEvent``).

        A later call replaces it (strands counts a retried call's usage itself), a failed call clears it.
        """
        invocation = self._open.get(event.agent.agent_id)
        if invocation is not None:
            response = event.stop_response
            invocation.pending = Figures.of_model_message(response.message) if response is not None else None

    def on_message(self, agent: Any, message: Any, message_id: int) -> dict[str, Any] | None:
        """Return the metrics to store with a message being appended, or None.

        An assistant message without a tool call gets the invocation's cost so far, which is its final
        cost unless the invocation goes on.
        """
        invocation = self._open.get(agent.agent_id)
        if invocation is None or message.get("role") != "assistant":
            return None
        figures = Figures.totals(agent.event_loop_metrics) - invocation.start
        if invocation.pending is not None:
            figures, invocation.pending = figures + invocation.pending, None
        invocation.closing_id = message_id
        if any("toolUse" in block for block in message.get("content") or []):
            return None
        metrics = figures.document()
        invocation.stored = (message_id, metrics)
        return metrics

    def end(self, agent: Any) -> Correction | None:
        """Close the invocation (``AfterInvocationEvent``); return the write still needed, if any."""
        invocation = self._open.pop(agent.agent_id, None)
        if invocation is None or invocation.closing_id is None:
            return None
        metrics = (Figures.totals(agent.event_loop_metrics) - invocation.start).document()
        if invocation.stored == (invocation.closing_id, metrics):
            return None
        move_from = invocation.stored[0] if invocation.stored is not None else None
        return Correction(invocation.closing_id, metrics, move_from if move_from != invocation.closing_id else None)
