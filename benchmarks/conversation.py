"""The conversation every store is driven through: the same script, the same agent, the same messages.

A conversation alternates two kinds of turn, as a support chat does:

* a **tool turn** (4 messages): the user asks about an order, the assistant calls ``lookup_order``, the tool
  result (a ~600-byte order record) comes back, and the assistant answers;
* a **plain turn** (2 messages): a question and an answer.

A history of ``n`` messages (``n`` even) is made of whole turns, tool turns included. The templates are captured
once from a real ``strands.Agent`` run (so the stored messages are exactly what strands produces, with usage
metadata and tracking ids) and repeated with fresh tool-use and tracking ids.

The measured turn is always a tool turn: 4 new messages.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any

from strands import Agent
from strands.agent.conversation_manager import NullConversationManager, SlidingWindowConversationManager
from strands.session.session_manager import SessionManager
from strands.types.content import Message

from mongodb_session_manager.testing import ScriptedModel, ScriptItem

from .tools import lookup_order

__all__ = [
    "AGENT_ID",
    "MESSAGES_PER_TURN",
    "SYSTEM_PROMPT",
    "TOOL_PROMPT",
    "TURN_RESPONSES",
    "WINDOW",
    "assistant_message_closes_turn",
    "history",
    "make_agent",
    "plain_turn_messages",
    "tool_turn_messages",
    "window_offset",
]

AGENT_ID = "support"
SYSTEM_PROMPT = "You are the support assistant of an online shop. Be brief and precise; use tools for order data."
TOOL_PROMPT = (
    "Where is my order A-1042? I ordered a keyboard and a mouse last week and the tracking page "
    "has not changed since Thursday."
)
PLAIN_PROMPT = "Can I change the delivery address to my office, or does the parcel have to come back first?"
_TOOL_PREAMBLE = "Let me look that order up for you."
_TOOL_ANSWER = (
    "Your order A-1042 (keyboard and mouse) is with Parcelway, tracking number PW553640000000. It reached the "
    "Cologne depot on 5 March and is held there for an address check, which is why tracking has not moved. "
    "Once the address is confirmed it usually goes out the next working day; the current estimate is 9 March."
)
_PLAIN_ANSWER = (
    "You can change it while the parcel is held at the depot: Parcelway lets you redirect it once, free of "
    "charge, from the tracking page (choose 'Change delivery'). Enter the office address with the company name "
    "and a contact phone number so the driver can reach reception. If the parcel has already left the depot, "
    "the redirect applies to the second delivery attempt instead, and it does not need to come back to us."
)
WINDOW = 40
"""Window size of strands' default ``SlidingWindowConversationManager``."""
MESSAGES_PER_TURN = 4
"""Messages added by the measured (tool) turn."""

TURN_RESPONSES: list[ScriptItem] = [
    {"text": _TOOL_PREAMBLE, "tool": "lookup_order", "input": {"order_id": "A-1042"}},
    _TOOL_ANSWER,
]
"""Model responses of one tool turn; the scripted model cycles through them, one tool turn per prompt."""


def make_agent(
    session_manager: SessionManager | None = None,
    messages: list[Message] | None = None,
    tool: Any = lookup_order,
    responses: Sequence[ScriptItem] | None = None,
    window: bool = False,
) -> Agent:
    """Build the benchmark agent: scripted model, ``lookup_order`` tool, whole history kept in context.

    The model repeats its script and never reads its input (``record=False``): a 5,000-message history costs it
    nothing, so what grows with the history is only strands' own bookkeeping and the session store.

    ``NullConversationManager`` keeps every message in the agent (strands' default, a 40-message sliding window,
    would restore only the window): the point is to measure a store holding and restoring the whole history.
    With ``window`` the agent uses strands' default ``SlidingWindowConversationManager(window_size=40)``.
    """
    manager = SlidingWindowConversationManager(window_size=WINDOW) if window else NullConversationManager()
    return Agent(
        model=ScriptedModel(responses or TURN_RESPONSES, "benchmark-scripted-model", repeat=True, record=False),
        tools=[tool],
        agent_id=AGENT_ID,
        system_prompt=SYSTEM_PROMPT,
        callback_handler=None,
        conversation_manager=manager,
        session_manager=session_manager,
        messages=messages,
    )


_templates: dict[str, list[Message]] = {}


def _capture_templates() -> dict[str, list[Message]]:
    """Run one tool turn and one plain turn through a real agent and keep the messages strands produced."""
    if not _templates:
        agent = make_agent(responses=[*TURN_RESPONSES, _PLAIN_ANSWER])
        agent(TOOL_PROMPT)
        agent(PLAIN_PROMPT)
        messages = copy.deepcopy(agent.messages)
        _templates["tool"], _templates["plain"] = messages[:4], messages[4:6]
    return _templates


def tool_turn_messages(tool_result_text: str | None = None) -> list[Message]:
    """Return the 4 messages of one tool turn with fresh ids (optionally with a big text in the tool result)."""
    messages = _fresh(_capture_templates()["tool"])
    if tool_result_text is not None:
        result = messages[2]["content"][0]["toolResult"]
        result["content"] = [*result["content"], {"text": tool_result_text}]
    return messages


def plain_turn_messages() -> list[Message]:
    """Return the 2 messages of one plain turn (question, answer) with fresh ids."""
    return _fresh(_capture_templates()["plain"])


def history(n: int) -> list[Message]:
    """Return ``n`` messages of whole turns (tool turn, plain turn, tool turn, ...) ending with the assistant."""
    if n < 0 or n % 2:
        raise ValueError(f"a history is made of whole turns: n must be even and >= 0, got {n}")
    templates = _capture_templates()
    messages: list[Message] = []
    while len(messages) < n:
        remaining = n - len(messages)
        if remaining >= 6 or remaining == 4:
            messages += _fresh(templates["tool"])
        if len(messages) < n:
            messages += _fresh(templates["plain"])
    return messages


def window_offset(messages: list[Message]) -> int:
    """Where a 40-message sliding window would start: the last user prompt at or before ``len - 40``."""
    offset = max(0, len(messages) - WINDOW)
    while offset > 0 and not _is_prompt(messages[offset]):
        offset -= 1
    return offset


def _is_prompt(message: Message) -> bool:
    return message["role"] == "user" and any("text" in block for block in message["content"])


def _fresh(template: list[Message]) -> list[Message]:
    """Copy messages giving each a new tracking id and each tool call a new tool-use id."""
    messages = copy.deepcopy(template)
    tool_use_id = f"tooluse_{uuid.uuid4().hex[:24]}"
    for message in messages:
        if "tracking_id" in message:
            message["tracking_id"] = str(uuid.uuid4())
        for block in message["content"]:
            if "toolUse" in block:
                block["toolUse"]["toolUseId"] = tool_use_id
            if "toolResult" in block:
                block["toolResult"]["toolUseId"] = tool_use_id
    return messages


def assistant_message_closes_turn(message: Message) -> bool:
    """True for an assistant message without a tool call: the manager stores the turn's metrics on it."""
    return message["role"] == "assistant" and not any("toolUse" in block for block in message["content"])
