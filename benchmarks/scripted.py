"""A fast scripted strands ``Model`` and the tool the benchmark conversation calls.

``ScriptedModel`` replays a fixed cycle of assistant responses as real strands stream events, so a real
``strands.Agent`` runs its whole event loop (tool execution, hooks, session-manager writes) without a network.
It never looks at the messages it is given: a 5,000-message history costs the model nothing, so what grows with
the history is only strands' own bookkeeping and the session store.

(``mongodb_session_manager.testing.ScriptedModel`` records and token-counts every request, which is O(n) in the
history; this one shares its stream encoder but not that bookkeeping.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Sequence
from typing import Any

from strands import tool
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from mongodb_session_manager.testing import OfflineModel, stream_blocks

__all__ = ["Response", "ScriptedModel", "ToolCall", "lookup_order", "make_lookup_order"]


class ToolCall(dict):
    """A scripted tool call: ``ToolCall("name", {"arg": ...}, text="optional preamble")``."""

    def __init__(self, name: str, tool_input: dict[str, Any], text: str | None = None) -> None:
        """Describe one assistant message that calls ``name`` with ``tool_input`` (after ``text`` if given)."""
        super().__init__(name=name, input=tool_input, text=text)


Response = str | ToolCall
"""One scripted assistant message: plain text, or a tool call (optionally preceded by text)."""


class ScriptedModel(OfflineModel):
    """Replays ``responses`` in a cycle, one per model call, as strands stream events."""

    def __init__(self, responses: Sequence[Response], model_id: str = "benchmark-scripted-model") -> None:
        """Create the model; ``responses`` are used in order and start over when exhausted."""
        if not responses:
            raise ValueError("responses must not be empty")
        super().__init__(model_id)
        self._responses = list(responses)
        self._calls = 0

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        """Stream the next scripted response; the input messages are ignored (O(1) in the history length)."""
        started = time.perf_counter()
        response = self._responses[self._calls % len(self._responses)]
        self._calls += 1
        text = response if isinstance(response, str) else response.get("text")
        blocks: list[dict[str, Any]] = [{"text": text}] if text else []
        if isinstance(response, ToolCall):
            tool_use_id = f"tooluse_{self._calls:08d}_{id(self) & 0xFFFFFF:06x}"
            blocks.append({"tool": response["name"], "input": response["input"], "id": tool_use_id})
        # A stand-in token count: the scripted model does not read its input, so a long history costs it nothing.
        async for event in stream_blocks(blocks, messages, system_prompt, started, input_tokens=40 * len(messages)):
            yield event


def make_lookup_order(result_bytes: int | None = None) -> Any:
    """Return the ``lookup_order`` tool; with ``result_bytes`` its result is padded to about that size."""

    @tool
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look up an order by id and return its status, items and delivery events.

        Args:
            order_id: The order id, e.g. "A-1042".
        """
        result: dict[str, Any] = {
            "status": "success",
            "content": [{"json": _order(order_id)}],
        }
        if result_bytes:
            result["content"].append({"text": "delivery scan log: " + "x" * result_bytes})
        return result

    return lookup_order


def _order(order_id: str) -> dict[str, Any]:
    """A realistic ~600-byte order record."""
    return {
        "order_id": order_id,
        "status": "in_transit",
        "carrier": "Parcelway",
        "tracking_number": "PW" + "".join(str((ord(c) * 7) % 10) for c in order_id).ljust(12, "0"),
        "placed_at": "2025-03-02T10:14:00Z",
        "estimated_delivery": "2025-03-09",
        "items": [
            {"sku": "KB-204", "name": "Mechanical keyboard, brown switches", "qty": 1, "price": 89.0},
            {"sku": "MS-118", "name": "Wireless mouse", "qty": 1, "price": 29.5},
        ],
        "events": [
            {"at": "2025-03-03T08:00:00Z", "where": "Rotterdam hub", "what": "departed"},
            {"at": "2025-03-05T17:40:00Z", "where": "Cologne depot", "what": "arrived, awaiting sort"},
            {"at": "2025-03-06T06:12:00Z", "where": "Cologne depot", "what": "held: address check"},
        ],
        "shipping_address": {"city": "Cologne", "postcode": "50667", "country": "DE"},
    }


lookup_order = make_lookup_order()
