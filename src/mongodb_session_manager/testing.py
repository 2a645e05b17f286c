"""A deterministic, scripted strands ``Model`` for testing agents offline.

``ScriptedModel`` replays a fixed list of assistant turns as real strands stream events (messageStart,
contentBlockStart/Delta/Stop, messageStop and a final ``metadata`` event with usage and latency, and optionally
time to first byte and prompt-cache tokens), so a real ``strands.Agent`` runs its full event loop, executes tools
and fills ``event_loop_metrics`` without any network.

Script items, one per model call:

* ``"some text"`` - an assistant text reply (``stopReason`` ``"end_turn"``).
* ``{"tool": "name", "input": {...}}`` - a single tool call (``stopReason`` ``"tool_use"``); an optional ``"id"``
  fixes the ``toolUseId``.
* ``[{"tool": ...}, {"tool": ...}]`` - several tool calls in one assistant message.
* ``{"text": "...", "tool": "name", "input": {...}}`` - text followed by a tool call in one message.
* ``{"text": "...", "guardrail": True}`` (or ``"guardrail": {...}``) - a guardrail intervention, streamed as
  Amazon Bedrock streams one: ``stopReason`` ``"guardrail_intervened"``, then ``redactContent`` events, then the
  ``metadata`` event carrying the guardrail trace. Its options: ``"redact_input"`` (the text that replaces the
  agent's latest message, the user's input, default ``"[User input redacted.]"``: strands replaces it and calls the
  session manager's ``redact_latest_message``; ``None`` keeps it), ``"redact_output"`` (the text that replaces
  this answer; default ``None``, the answer is kept) and ``"trace"`` (a Bedrock guardrail trace,
  ``{"inputAssessment": ..., "outputAssessments": ...}``, sent as the metadata's ``trace.guardrail``; default
  none).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from typing import Any, TypeVar

import bson
from pydantic import BaseModel
from pymongo import monitoring
from strands.models import Model
from strands.types.content import ContentBlockStart, Message, Messages
from strands.types.event_loop import Metrics, Usage
from strands.types.streaming import ContentBlockDelta, MetadataEvent, StreamEvent
from strands.types.tools import ToolSpec

__all__ = [
    "CommandLog",
    "OfflineModel",
    "ScriptExhaustedError",
    "ScriptItem",
    "ScriptedModel",
    "count_tokens",
    "stream_blocks",
]

T = TypeVar("T", bound=BaseModel)

ScriptItem = str | dict[str, Any] | list[dict[str, Any]]
"""One scripted assistant turn: text, a tool-call dict, a list of tool-call dicts, text plus a tool call, or a
guardrail intervention (a dict with ``"guardrail"``)."""

DEFAULT_INPUT_REDACTION = "[User input redacted.]"
"""The text a scripted guardrail puts in place of the user's input (Amazon Bedrock's default)."""
_GUARDRAIL_OPTIONS = frozenset({"redact_input", "redact_output", "trace"})

_TOKEN_RE = re.compile(r"\s*\S+|\s+")


class ScriptExhaustedError(RuntimeError):
    """Raised when the model is called more times than the script has responses."""


def count_tokens(value: Any) -> int:
    """Count whitespace-separated words in a string or the JSON form of any other value."""
    if value is None:
        return 0
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return len(text.split())


def _split_deltas(text: str) -> list[str]:
    """Split text into word-sized chunks whose concatenation is exactly the original text."""
    return _TOKEN_RE.findall(text) or [text]


def _message_tokens(messages: Messages, system_prompt: str | None) -> int:
    """Count the words of a request: system prompt, texts, tool inputs and tool results."""
    total = count_tokens(system_prompt)
    for message in messages:
        for block in message.get("content", []):
            if "text" in block:
                total += count_tokens(block["text"])
            if "toolUse" in block:
                total += count_tokens(block["toolUse"].get("name")) + count_tokens(block["toolUse"].get("input"))
            if "toolResult" in block:
                for item in block["toolResult"].get("content", []):
                    if "text" in item:
                        total += count_tokens(item["text"])
                    if "json" in item:
                        total += count_tokens(item["json"])
    return total


def _normalize_item(item: ScriptItem, position: int) -> list[dict[str, Any]]:
    """Turn one script item into a list of ``{"text": ...}`` / ``{"tool": ..., "input": ...}`` blocks."""
    if isinstance(item, str):
        return [{"text": item}]
    if isinstance(item, list):
        if not item:
            raise ValueError(f"script item {position}: a list of tool calls must not be empty")
        blocks: list[dict[str, Any]] = []
        for entry in item:
            if not isinstance(entry, dict):
                raise TypeError(f"script item {position}: list entries must be dicts, got {type(entry).__name__}")
            blocks.extend(_normalize_item(entry, position))
        return blocks
    if isinstance(item, dict):
        unknown = set(item) - {"text", "tool", "input", "id", "guardrail"}
        if unknown:
            raise ValueError(f"script item {position}: unknown keys {sorted(unknown)}")
        if "text" not in item and "tool" not in item:
            raise ValueError(f"script item {position}: a dict needs a 'text' and/or a 'tool' key")
        blocks = []
        if "text" in item:
            if not isinstance(item["text"], str):
                raise TypeError(f"script item {position}: 'text' must be a str")
            blocks.append({"text": item["text"]})
        if "tool" in item:
            tool_input = item.get("input", {})
            if not isinstance(tool_input, dict):
                raise TypeError(f"script item {position}: 'input' must be a dict")
            tool_block: dict[str, Any] = {"tool": str(item["tool"]), "input": tool_input}
            if "id" in item:
                tool_block["id"] = str(item["id"])
            blocks.append(tool_block)
        if item.get("guardrail") not in (None, False):
            blocks.append({"guardrail": _guardrail_options(item["guardrail"], position)})
        return blocks
    raise TypeError(f"script item {position}: expected str, dict or list, got {type(item).__name__}")


def _guardrail_options(value: Any, position: int) -> dict[str, Any]:
    """Check a script item's ``"guardrail"`` value and fill in its defaults."""
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise TypeError(f"script item {position}: 'guardrail' must be True or a dict")
    unknown = set(value) - _GUARDRAIL_OPTIONS
    if unknown:
        raise ValueError(f"script item {position}: unknown guardrail options {sorted(unknown)}")
    options = {"redact_input": DEFAULT_INPUT_REDACTION, "redact_output": None, "trace": None, **value}
    for name in ("redact_input", "redact_output"):
        if options[name] is not None and not isinstance(options[name], str):
            raise TypeError(f"script item {position}: guardrail {name!r} must be a str or None")
    if options["trace"] is not None and not isinstance(options["trace"], dict):
        raise TypeError(f"script item {position}: guardrail 'trace' must be a dict")
    return options


class OfflineModel(Model):
    """Base of the offline models: a ``model_id`` config, one ``stream()`` and no structured output.

    A subclass decides each assistant message in ``next_blocks``; ``stream`` turns it into strands stream events.
    """

    latency_ms: int | None = None
    """The latency every call reports; None measures it."""
    time_to_first_byte_ms: int | None = None
    """The time to first byte every call reports; None reports none."""
    cache_read_tokens: int | None = None
    """The prompt-cache read tokens every call reports (``cacheReadInputTokens``); None reports none."""
    cache_write_tokens: int | None = None
    """The prompt-cache write tokens every call reports (``cacheWriteInputTokens``); None reports none."""

    def __init__(self, model_id: str) -> None:
        """Start the configuration with ``model_id``."""
        self.config: dict[str, Any] = {"model_id": model_id}

    def next_blocks(
        self, messages: Messages, tool_specs: list[ToolSpec] | None, system_prompt: str | None
    ) -> list[dict[str, Any]]:
        """Return the next assistant message as ``{"text"}`` / ``{"tool", "input", "id"?}`` blocks."""
        raise NotImplementedError

    def input_tokens(self, messages: Messages, system_prompt: str | None) -> int | None:
        """Return the request's input tokens for the usage, or None to count the words of the request."""
        return None

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        """Stream the message ``next_blocks`` decides as strands stream events (see ``stream_blocks``)."""
        started = time.perf_counter()
        blocks = self.next_blocks(messages, tool_specs, system_prompt)
        input_tokens = self.input_tokens(messages, system_prompt)
        async for event in stream_blocks(
            blocks,
            messages,
            system_prompt,
            started,
            input_tokens=input_tokens,
            latency_ms=self.latency_ms,
            time_to_first_byte_ms=self.time_to_first_byte_ms,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
        ):
            yield event

    def update_config(self, **model_config: Any) -> None:
        """Merge the given keys into the model configuration."""
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        """Return the model configuration (always contains ``model_id``)."""
        return self.config

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """Structured output is not supported offline."""
        raise NotImplementedError(f"{type(self).__name__} does not support structured_output")
        yield {}  # pragma: no cover - makes this an async generator


class ScriptedModel(OfflineModel):
    """A strands model that replays scripted responses and records the messages it was called with."""

    def __init__(
        self,
        responses: Sequence[ScriptItem],
        model_id: str = "scripted-model",
        *,
        repeat: bool = False,
        record: bool = True,
        latency_ms: int | None = None,
        time_to_first_byte_ms: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> None:
        """Create the model from a list of script items, consumed one per model call.

        Args:
            responses: The script, one item per model call.
            model_id: The ``model_id`` of the model's config.
            repeat: Start the script over when it is used up instead of raising ``ScriptExhaustedError``.
            record: Keep a deep copy of every request (``calls``, ``system_prompts``, ``tool_specs``) and count
                its words for the usage. ``False`` keeps nothing and never reads the request (the usage reports
                0 input tokens), so a call costs the same whatever the history's length: for benchmarks.
            latency_ms: The latency every call reports, for tests that compare stored metrics; None measures it.
            time_to_first_byte_ms: The time to first byte every call reports (``metrics.timeToFirstByteMs``);
                None reports none. strands replaces a reported value by the one it measures itself when that is
                at least 1 ms, so tests compare the stored figure with the message's ``metadata``.
            cache_read_tokens: The prompt-cache read tokens every call reports (``usage.cacheReadInputTokens``);
                None reports none. As Amazon Bedrock does, ``inputTokens`` excludes them and ``totalTokens``
                includes them.
            cache_write_tokens: The prompt-cache write tokens every call reports (``usage.cacheWriteInputTokens``),
                counted like ``cache_read_tokens``; None reports none.
        """
        super().__init__(model_id)
        self.latency_ms = latency_ms
        self.time_to_first_byte_ms = time_to_first_byte_ms
        self.cache_read_tokens = cache_read_tokens
        self.cache_write_tokens = cache_write_tokens
        self._script = [_normalize_item(item, position) for position, item in enumerate(responses)]
        if repeat and not self._script:
            raise ValueError("a repeating script needs at least one response")
        self._index = 0
        self._call_count = 0
        self._repeat = repeat
        self._record = record
        self.calls: list[list[Message]] = []
        self.system_prompts: list[str | None] = []
        self.tool_specs: list[list[ToolSpec]] = []

    @property
    def remaining(self) -> int:
        """Return how many scripted responses have not been consumed yet (until it starts over, with ``repeat``)."""
        return len(self._script) - self._index

    def next_blocks(
        self, messages: Messages, tool_specs: list[ToolSpec] | None, system_prompt: str | None
    ) -> list[dict[str, Any]]:
        """Record the request and return the next scripted response."""
        self._call_count += 1
        if self._record:
            self.calls.append(copy.deepcopy(list(messages)))
            self.system_prompts.append(system_prompt)
            self.tool_specs.append(copy.deepcopy(list(tool_specs or [])))
        if self._repeat and self._index >= len(self._script):
            self._index = 0
        if self._index >= len(self._script):
            raise ScriptExhaustedError(
                f"ScriptedModel {self.config.get('model_id')!r} was called {self._call_count} times "
                f"but its script has only {len(self._script)} responses"
            )
        blocks = self._script[self._index]
        self._index += 1
        return blocks

    def input_tokens(self, messages: Messages, system_prompt: str | None) -> int | None:
        """Count the request's words when recording, else report 0 without reading it."""
        return None if self._record else 0


async def stream_blocks(
    blocks: Sequence[dict[str, Any]],
    messages: Messages,
    system_prompt: str | None,
    started: float,
    input_tokens: int | None = None,
    latency_ms: int | None = None,
    time_to_first_byte_ms: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
) -> AsyncIterable[StreamEvent]:
    """Stream one assistant message of ``{"text"}``/``{"tool", "input", "id"?}`` blocks as strands events.

    Text is streamed word by word; the closing ``metadata`` event carries word-count usage (``input_tokens``
    when given, instead of counting the request) and ``latency_ms`` when given, else the latency since
    ``started`` (a ``time.perf_counter()`` value, at least 1 ms). ``time_to_first_byte_ms`` and the cache token
    counts are reported when given (cache tokens are in ``totalTokens``, not in ``inputTokens``). A
    ``{"guardrail": {"redact_input", "redact_output", "trace"}}`` entry makes the message a guardrail
    intervention: ``stopReason`` ``"guardrail_intervened"``, then its ``redactContent`` events, then the
    ``metadata`` event with the trace, in Amazon Bedrock's streaming order.
    """
    output_tokens = 0
    has_tool = False
    guardrail = next((block["guardrail"] for block in blocks if "guardrail" in block), None)
    blocks = [block for block in blocks if "guardrail" not in block]
    yield {"messageStart": {"role": "assistant"}}
    for index, block in enumerate(blocks):
        if "tool" in block:
            has_tool = True
            tool_use_id = block.get("id") or f"tooluse_{uuid.uuid4().hex[:24]}"
            start: ContentBlockStart = {"toolUse": {"toolUseId": tool_use_id, "name": block["tool"]}}
            yield {"contentBlockStart": {"contentBlockIndex": index, "start": start}}
            delta: ContentBlockDelta = {"toolUse": {"input": json.dumps(block["input"])}}
            yield {"contentBlockDelta": {"contentBlockIndex": index, "delta": delta}}
            yield {"contentBlockStop": {"contentBlockIndex": index}}
            output_tokens += count_tokens(block["tool"]) + count_tokens(block["input"])
        else:
            yield {"contentBlockStart": {"contentBlockIndex": index, "start": {}}}
            for chunk in _split_deltas(block["text"]):
                yield {"contentBlockDelta": {"contentBlockIndex": index, "delta": {"text": chunk}}}
                await asyncio.sleep(0)
            yield {"contentBlockStop": {"contentBlockIndex": index}}
            output_tokens += count_tokens(block["text"])
    if guardrail is not None:
        yield {"messageStop": {"stopReason": "guardrail_intervened"}}
        for key, option in (
            ("redactUserContentMessage", "redact_input"),
            ("redactAssistantContentMessage", "redact_output"),
        ):
            if guardrail[option] is not None:
                yield {"redactContent": {key: guardrail[option]}}  # type: ignore[misc]
    else:
        yield {"messageStop": {"stopReason": "tool_use" if has_tool else "end_turn"}}

    if input_tokens is None:
        input_tokens = _message_tokens(messages, system_prompt)
    if latency_ms is None:
        latency_ms = max(1, math.ceil((time.perf_counter() - started) * 1000))
    cached = (cache_read_tokens or 0) + (cache_write_tokens or 0)
    usage: Usage = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + output_tokens + cached,
    }
    if cache_read_tokens is not None:
        usage["cacheReadInputTokens"] = cache_read_tokens
    if cache_write_tokens is not None:
        usage["cacheWriteInputTokens"] = cache_write_tokens
    metrics: Metrics = {"latencyMs": latency_ms}
    if time_to_first_byte_ms is not None:
        metrics["timeToFirstByteMs"] = time_to_first_byte_ms
    metadata: MetadataEvent = {"usage": usage, "metrics": metrics}
    if guardrail is not None and guardrail["trace"] is not None:
        metadata["trace"] = {"guardrail": guardrail["trace"]}  # type: ignore[typeddict-item]
    yield {"metadata": metadata}


_MONITORING_COMMANDS = frozenset(
    {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "getLastError", "saslStart", "saslContinue"}
)
_WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify"})
_READ_COMMANDS = frozenset({"find", "aggregate", "count", "getMore"})


class CommandLog(monitoring.CommandListener):
    """A pymongo command listener that records a client's round trips: names, bytes and time on the wire.

    Give it to a client as ``MongoClient(..., event_listeners=[log])`` (or to a manager or factory as
    ``event_listeners=[log]``). Server monitoring and authentication commands (``hello``, ``ping``,
    ``saslStart``, ...) are not round trips of the application and are left out. One log may watch several
    clients used from many threads.

    Attributes:
        commands: The name of every command sent, in order.
        bytes_sent: BSON bytes of the commands sent (while ``count_bytes`` is on).
        reply_bytes: BSON bytes of the successful replies (while ``count_bytes`` is on).
        seconds: Driver-measured time of the finished commands (request sent to reply read).
        count_bytes: Whether to measure sizes; encoding each command and reply to measure it costs CPU time.
    """

    def __init__(self, count_bytes: bool = True) -> None:
        """Start an empty log."""
        self._lock = threading.Lock()
        self.count_bytes = count_bytes
        self.commands: list[str] = []
        self.bytes_sent = 0
        self.reply_bytes = 0
        self.seconds = 0.0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Record a command sent."""
        if event.command_name in _MONITORING_COMMANDS:
            return
        size = len(bson.encode(event.command)) if self.count_bytes else 0
        with self._lock:
            self.commands.append(event.command_name)
            self.bytes_sent += size

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Record a reply and the command's duration."""
        if event.command_name in _MONITORING_COMMANDS:
            return
        size = len(bson.encode(event.reply)) if self.count_bytes else 0
        with self._lock:
            self.reply_bytes += size
            self.seconds += event.duration_micros / 1e6

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Record a failed command's duration."""
        if event.command_name in _MONITORING_COMMANDS:
            return
        with self._lock:
            self.seconds += event.duration_micros / 1e6

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self.commands.clear()
            self.bytes_sent = self.reply_bytes = 0
            self.seconds = 0.0

    @property
    def round_trips(self) -> int:
        """Return the number of commands sent."""
        return len(self.commands)

    @property
    def writes(self) -> list[str]:
        """Return the write commands sent (``insert``, ``update``, ``delete``, ``findAndModify``), in order."""
        return [name for name in self.commands if name in _WRITE_COMMANDS]

    @property
    def reads(self) -> list[str]:
        """Return the read commands sent (``find``, ``aggregate``, ``count``, ``getMore``), in order."""
        return [name for name in self.commands if name in _READ_COMMANDS]
