"""What one agent invocation costs, measured from strands' event-loop totals. No I/O.

strands keeps lifetime totals on ``agent.event_loop_metrics`` and adds a model call's usage and latency to
them only AFTER the call's message has been appended (the message event fires first). So the cost of an
invocation, when its closing message is appended, is: the totals now, minus the totals when the
invocation started, plus the model call whose message this is (known from ``AfterModelCallEvent``). That
is the same number for an ``Agent`` that lives across requests and for one rebuilt per request. Cycles and
tool calls are counted the same way: strands' lifetime cycle traces and per-tool totals, minus what they
were when the invocation started. The time to first byte is the one of the invocation's first model call
that reported one (strands keeps no total of it), from the ``metadata`` strands attaches to its message.

The closing message is the invocation's last assistant message. One without a tool call usually closes it
and carries the figures on its own ``$push``; when the invocation ends elsewhere (an interrupt after a tool
call, a forced structured-output call after a plain answer), `InvocationMetrics.end` returns the one
correction to write. The last cycle is still running when its message is appended: its duration there is
measured up to that moment, and the end of the invocation never writes only to refine a duration.
"""

import time
from dataclasses import dataclass, field
from typing import Any

from strands.hooks.events import AfterModelCallEvent
from strands.telemetry.metrics import EventLoopMetrics

from . import documents as docs

METRICS_FIELD = "event_loop_metrics"
"""The extra field of a stored message that holds its invocation's cost (the seed's name)."""

CACHE_USAGE_KEYS = ("cacheReadInputTokens", "cacheWriteInputTokens")
"""strands' optional usage keys of prompt caching, stored only for invocations whose model reported them."""

_DURATIONS = ("total_duration", "average_cycle_time")


@dataclass(frozen=True)
class Figures:
    """Latency and token counts: a total, a difference of totals, or one model call."""

    latency_ms: int | float = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @classmethod
    def totals(cls, loop: EventLoopMetrics) -> "Figures":
        """The lifetime totals strands has counted so far."""
        return cls._of(loop.accumulated_usage, loop.accumulated_metrics)

    @classmethod
    def of_model_message(cls, message: Any) -> "Figures":
        """One model call, from the ``metadata`` strands attaches to the message the model produced."""
        usage, metrics = _call_metadata(message)
        return cls._of(usage, metrics)

    @classmethod
    def _of(cls, usage: Any, metrics: Any) -> "Figures":
        return cls(
            latency_ms=metrics.get("latencyMs", 0) or 0,
            input_tokens=usage.get("inputTokens", 0) or 0,
            output_tokens=usage.get("outputTokens", 0) or 0,
            total_tokens=usage.get("totalTokens", 0) or 0,
            cache_read_tokens=usage.get("cacheReadInputTokens", 0) or 0,
            cache_write_tokens=usage.get("cacheWriteInputTokens", 0) or 0,
        )

    def __add__(self, other: "Figures") -> "Figures":
        """Add two figures field by field."""
        return Figures(*(a + b for a, b in zip(self._values(), other._values(), strict=True)))

    def __sub__(self, other: "Figures") -> "Figures":
        """Subtract field by field (totals now minus totals at the start)."""
        return Figures(*(a - b for a, b in zip(self._values(), other._values(), strict=True)))

    def _values(self) -> tuple[Any, ...]:
        return (
            self.latency_ms,
            self.input_tokens,
            self.output_tokens,
            self.total_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
        )

    def usage(self, cache_keys: set[str]) -> dict[str, int]:
        """The stored ``accumulated_usage``: the seed's three counts, plus the cache counts in ``cache_keys``."""
        usage = {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens, "totalTokens": self.total_tokens}
        cache = {"cacheReadInputTokens": self.cache_read_tokens, "cacheWriteInputTokens": self.cache_write_tokens}
        usage.update({key: value for key, value in cache.items() if key in cache_keys})
        return usage


@dataclass(frozen=True)
class ToolTotals:
    """One tool's call counts and seconds (strands' ``ToolMetrics``), or a difference of them."""

    calls: int = 0
    successes: int = 0
    errors: int = 0
    seconds: float = 0.0

    @classmethod
    def of_loop(cls, loop: EventLoopMetrics) -> dict[str, "ToolTotals"]:
        """Every tool's lifetime totals so far."""
        return {
            name: cls(metrics.call_count, metrics.success_count, metrics.error_count, metrics.total_time)
            for name, metrics in loop.tool_metrics.items()
        }

    def __sub__(self, other: "ToolTotals") -> "ToolTotals":
        """Subtract field by field (totals now minus totals at the start)."""
        return ToolTotals(
            self.calls - other.calls,
            self.successes - other.successes,
            self.errors - other.errors,
            max(0.0, self.seconds - other.seconds),
        )

    def document(self) -> dict[str, Any]:
        """The stored ``tool_usage`` entry of one tool (strands' ``get_summary`` names)."""
        return {
            "call_count": self.calls,
            "success_count": self.successes,
            "error_count": self.errors,
            "total_time": self.seconds,
            "average_time": self.seconds / self.calls,
            "success_rate": self.successes / self.calls,
        }


@dataclass(frozen=True)
class Snapshot:
    """strands' lifetime totals when an invocation starts."""

    figures: Figures
    cycles: int
    """How many cycle traces strands had recorded (one per event-loop cycle)."""
    tools: dict[str, ToolTotals]

    @classmethod
    def of_loop(cls, loop: EventLoopMetrics) -> "Snapshot":
        """Take the totals now."""
        return cls(Figures.totals(loop), len(loop.traces), ToolTotals.of_loop(loop))


@dataclass(frozen=True)
class Correction:
    """The one write an invocation's end needs: its figures on ``message_id``, removed from ``move_from``."""

    message_id: int
    metrics: dict[str, Any]
    move_from: int | None = None


@dataclass
class _Invocation:
    start: Snapshot
    pending: Figures | None = None
    """The model call whose message strands has not appended yet (so not yet in the totals)."""
    pending_ttfb: int | float | None = None
    """That call's time to first byte, when it reported one."""
    ttfb: int | float | None = None
    """The time to first byte of the invocation's first appended model call that reported one."""
    cache_keys: set[str] = field(default_factory=set)
    """The cache usage keys a model call of this invocation reported."""
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
            self._open[agent.agent_id] = _Invocation(start=Snapshot.of_loop(loop))

    def model_call_ended(self, event: AfterModelCallEvent) -> None:
        """Note the call strands will count after appending its message (``AfterModelCallEvent``).

        A later call replaces it (strands counts a retried call's usage itself), a failed call clears it.
        """
        invocation = self._open.get(event.agent.agent_id)
        if invocation is None:
            return
        response = event.stop_response
        if response is None:
            invocation.pending = invocation.pending_ttfb = None
            return
        usage, metrics = _call_metadata(response.message)
        invocation.pending = Figures.of_model_message(response.message)
        invocation.pending_ttfb = metrics.get("timeToFirstByteMs")
        invocation.cache_keys.update(key for key in CACHE_USAGE_KEYS if key in usage)

    def on_message(self, agent: Any, message: Any, message_id: int) -> dict[str, Any] | None:
        """Return the metrics to store with a message being appended, or None.

        An assistant message without a tool call gets the invocation's cost so far, which is its final
        cost unless the invocation goes on.
        """
        invocation = self._open.get(agent.agent_id)
        if invocation is None or message.get("role") != "assistant":
            return None
        figures = Figures.totals(agent.event_loop_metrics) - invocation.start.figures
        if invocation.pending is not None:
            figures, invocation.pending = figures + invocation.pending, None
            if invocation.ttfb is None:
                invocation.ttfb = invocation.pending_ttfb
        invocation.closing_id = message_id
        if any("toolUse" in block for block in message.get("content") or []):
            return None
        metrics = self._document(invocation, agent.event_loop_metrics, figures)
        invocation.stored = (message_id, metrics)
        return metrics

    def end(self, agent: Any) -> Correction | None:
        """Close the invocation (``AfterInvocationEvent``); return the write still needed, if any.

        Nothing is written when the closing message already holds the figures; durations measured while
        the last cycle was running do not count as a difference.
        """
        invocation = self._open.pop(agent.agent_id, None)
        if invocation is None or invocation.closing_id is None:
            return None
        loop = agent.event_loop_metrics
        metrics = self._document(invocation, loop, Figures.totals(loop) - invocation.start.figures)
        stored = invocation.stored
        if stored is not None and stored[0] == invocation.closing_id and _same_figures(stored[1], metrics):
            return None
        move_from = stored[0] if stored is not None else None
        return Correction(invocation.closing_id, metrics, move_from if move_from != invocation.closing_id else None)

    @staticmethod
    def _document(invocation: _Invocation, loop: EventLoopMetrics, figures: Figures) -> dict[str, Any]:
        """The stored ``event_loop_metrics`` value of an invocation whose cost so far is ``figures``."""
        timing: dict[str, Any] = {"latencyMs": figures.latency_ms}
        if invocation.ttfb is not None:
            timing["timeToFirstByteMs"] = invocation.ttfb
        return {
            "accumulated_metrics": timing,
            "accumulated_usage": figures.usage(invocation.cache_keys),
            "cycle_metrics": _cycle_metrics(loop, invocation.start),
            "tool_usage": _tool_usage(loop, invocation.start),
        }


def _call_metadata(message: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``usage`` and ``metrics`` strands attached to a model call's message (empty when absent)."""
    metadata = message.get("metadata") if isinstance(message, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    usage, metrics = metadata.get("usage"), metadata.get("metrics")
    return (usage if isinstance(usage, dict) else {}), (metrics if isinstance(metrics, dict) else {})


def _cycle_metrics(loop: EventLoopMetrics, start: Snapshot) -> dict[str, Any]:
    """The invocation's cycles: how many, and their seconds (a running cycle's so far)."""
    now = time.time()
    cycles = loop.traces[start.cycles :]
    total = sum(
        max(0.0, (trace.end_time if trace.end_time is not None else now) - trace.start_time) for trace in cycles
    )
    return {
        "cycle_count": len(cycles),
        "total_duration": total,
        "average_cycle_time": total / len(cycles) if cycles else 0.0,
    }


def _tool_usage(loop: EventLoopMetrics, start: Snapshot) -> dict[str, dict[str, Any]]:
    """The invocation's tool calls per tool (escaped tool name): counts, seconds, average and success rate."""
    usage = {}
    for name, totals in ToolTotals.of_loop(loop).items():
        difference = totals - start.tools.get(name, ToolTotals())
        if difference.calls > 0:
            usage[docs.escape_key(name)] = difference.document()
    return usage


def _same_figures(stored: dict[str, Any], final: dict[str, Any]) -> bool:
    """Whether two metrics documents agree but for the cycle durations (they grow while the last cycle runs)."""

    def without_durations(metrics: dict[str, Any]) -> dict[str, Any]:
        cycles = {key: value for key, value in metrics["cycle_metrics"].items() if key not in _DURATIONS}
        return {**metrics, "cycle_metrics": cycles}

    return without_durations(stored) == without_durations(final)
