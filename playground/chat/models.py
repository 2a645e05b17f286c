"""Request and response bodies of the playground API."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
"""Session ids the API accepts: the widget makes ``chat-<32 hex digits>``."""


class ChatRequest(BaseModel):
    """One user message for a session."""

    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    message: str = Field(min_length=1)


class ToolCall(BaseModel):
    name: str
    input: Any = None


class ToolOutput(BaseModel):
    status: str | None = None
    text: str


class Metrics(BaseModel):
    """What an answer cost, as stored with the message closing its invocation (``event_loop_metrics``)."""

    latencyMs: int | float | None = None
    timeToFirstByteMs: int | float | None = None
    inputTokens: int | None = None
    outputTokens: int | None = None
    totalTokens: int | None = None


class HistoryMessage(BaseModel):
    """A stored message, reduced to what the chat shows; an answer closing an invocation has its metrics."""

    message_id: int
    role: Literal["user", "assistant"]
    text: str
    tool_calls: list[ToolCall] = []
    tool_results: list[ToolOutput] = []
    created_at: str | None = None
    metrics: Metrics | None = None


class History(BaseModel):
    session_id: str
    messages: list[HistoryMessage]


class StoredFeedback(BaseModel):
    rating: Literal["up", "down"] | None = None
    comment: str = ""
    created_at: datetime | None = None


class SessionInfo(BaseModel):
    """What the metadata panel shows about a session."""

    session_id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    model: str | None = None
    system_prompt: str | None = None
    message_count: int = 0
    metadata: dict[str, Any] = {}
    latest_metrics: Metrics | None = None
    feedbacks: list[StoredFeedback] = []


class FeedbackRequest(BaseModel):
    """A thumbs up/down (or no rating) with an optional comment."""

    rating: Literal["up", "down"] | None = None
    comment: str = Field(default="", max_length=1000)


class FeedbackStored(BaseModel):
    status: Literal["stored"] = "stored"
    feedback: StoredFeedback


class PlaygroundInfo(BaseModel):
    """Which model answers, for the widget's header."""

    model: str
    demo_model: bool
