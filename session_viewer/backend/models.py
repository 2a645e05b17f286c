"""Response models of the Session Viewer API (the contract is ``session_viewer/API.md``)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

MarkdownNode = dict[str, Any]
"""A node of the markdown syntax tree: ``{"type": ..., "children": [...], ...}`` (see API.md)."""


class Health(BaseModel):
    """Liveness of the backend and reachability of MongoDB."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]


class Collections(BaseModel):
    """The collections the viewer can read, as ``<database>.<collection>``; the configured one first."""

    default: str
    collections: list[str]
    snapshots: str | None = Field(
        default=None, description="The snapshot storage collection, when it exists (see /api/v1/snapshots/search)."
    )


class MetadataField(BaseModel):
    """A filterable (indexed) metadata field."""

    field: str
    path: str
    type: Literal["string", "number", "boolean", "date", "enum"]
    values: list[str | int | float | bool] | None


class MetadataFields(BaseModel):
    """All filterable metadata fields."""

    fields: list[MetadataField]


class FeedbackCounts(BaseModel):
    """Feedback entries by rating; ``neutral`` counts every rating other than up and down."""

    up: int = 0
    down: int = 0
    neutral: int = 0


class SessionSummary(BaseModel):
    """One session in a search result."""

    session_id: str
    created_at: str | None
    updated_at: str | None
    application_name: str | None = None
    metadata: dict[str, Any]
    agent_ids: list[str]
    message_count: int
    feedback_counts: FeedbackCounts


class SearchPage(BaseModel):
    """One page of search results, newest first (in session-id order for a session-id prefix)."""

    total: int = Field(description="Matching sessions, counted up to 1,000 (see total_capped)")
    total_capped: bool = Field(
        default=False, description="More than `total` sessions match: the count stopped at its cap (show 1,000+)"
    )
    limit: int
    offset: int
    sessions: list[SessionSummary]


class EncryptedValue(BaseModel):
    """In place of an encrypted value the viewer cannot decrypt: no key access, or the session's keys erased."""

    encrypted: Literal["no_key", "key_erased"]
    label: str = Field(description='What to show: "encrypted, no key" or "key erased"')


class AgentInfo(BaseModel):
    """An agent of a session and its configuration."""

    agent_id: str
    model: str | None
    system_prompt: str | EncryptedValue | None
    message_count: int


class ToolUsage(BaseModel):
    """One tool's use during an invocation."""

    name: str
    calls: int | float | None = None
    errors: int | float | None = None
    averageTimeSeconds: int | float | None = None


class Metrics(BaseModel):
    """Event-loop metrics stored on the assistant message that closed an invocation (that invocation's figures)."""

    latencyMs: int | float | None = None
    timeToFirstByteMs: int | float | None = None
    inputTokens: int | float | None = None
    outputTokens: int | float | None = None
    totalTokens: int | float | None = None
    cacheReadInputTokens: int | float | None = None
    cacheWriteInputTokens: int | float | None = None
    cycleCount: int | float | None = None
    cycleDurationSeconds: int | float | None = None
    toolUsage: list[ToolUsage] = Field(default_factory=list)


class GuardrailEvent(BaseModel):
    """What a guardrail did to a message."""

    action: str | None
    timestamp: str | None
    stop_reason: str | None = None
    policies: list[str] = Field(default_factory=list)


class GuardrailLatest(GuardrailEvent):
    """A recent guardrail event of the session, with the message it concerns."""

    agent_id: str | None = None
    message_id: int | None = None


class GuardrailSummary(BaseModel):
    """The session's guardrail events: counts by action and by policy, and the latest ones (at most 20)."""

    total: int
    by_action: dict[str, int]
    by_policy: dict[str, int]
    latest: list[GuardrailLatest]


class TextBlock(BaseModel):
    """Text, as a markdown syntax tree."""

    kind: Literal["text"] = "text"
    markdown: MarkdownNode


class ToolUseBlock(BaseModel):
    """A tool call requested by the model."""

    kind: Literal["tool_use"] = "tool_use"
    name: str
    tool_use_id: str
    input: Any


class AttachmentBlock(BaseModel):
    """An image, document, video or audio: described, never shipped."""

    kind: Literal["attachment"] = "attachment"
    attachment_type: Literal["image", "document", "video", "audio"]
    format: str | None
    name: str | None
    size_bytes: int | None


class ToolResultText(BaseModel):
    """Text returned by a tool."""

    kind: Literal["text"] = "text"
    text: str


class ToolResultJson(BaseModel):
    """JSON returned by a tool."""

    kind: Literal["json"] = "json"
    json_value: Any = Field(alias="json", serialization_alias="json")

    model_config = {"populate_by_name": True}


ToolResultContent = Annotated[ToolResultText | ToolResultJson | AttachmentBlock, Field(discriminator="kind")]


class ToolResultBlock(BaseModel):
    """The result of a tool call."""

    kind: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    status: Literal["success", "error"]
    content: list[ToolResultContent]


class ReasoningBlock(BaseModel):
    """The model's reasoning text."""

    kind: Literal["reasoning"] = "reasoning"
    text: str


class OtherBlock(BaseModel):
    """Any other content block, as JSON (bytes replaced by their size)."""

    kind: Literal["other"] = "other"
    json_value: Any = Field(alias="json", serialization_alias="json")

    model_config = {"populate_by_name": True}


class EncryptedBlock(BaseModel):
    """The content of an encrypted message the viewer cannot decrypt (its role, time and metrics are clear)."""

    kind: Literal["encrypted"] = "encrypted"
    encrypted: Literal["no_key", "key_erased"]
    label: str


Block = Annotated[
    TextBlock | ToolUseBlock | ToolResultBlock | AttachmentBlock | ReasoningBlock | OtherBlock | EncryptedBlock,
    Field(discriminator="kind"),
]


class MessageItem(BaseModel):
    """A message of one agent in the timeline."""

    type: Literal["message"] = "message"
    timestamp: str | None
    agent_id: str
    message_id: int
    role: str
    redacted: bool
    metrics: Metrics | None
    guardrail: GuardrailEvent | None = None
    blocks: list[Block]


class FeedbackItem(BaseModel):
    """A feedback entry in the timeline."""

    type: Literal["feedback"] = "feedback"
    timestamp: str | None
    rating: Literal["up", "down"] | None
    comment: str | EncryptedValue | None


TimelineItem = Annotated[MessageItem | FeedbackItem, Field(discriminator="type")]


class SessionDetail(BaseModel):
    """One session: its agents and the unified, chronological timeline."""

    session_id: str
    created_at: str | None
    updated_at: str | None
    application_name: str | None = None
    metadata: dict[str, Any]
    encryption: Literal["none", "decrypted", "no_key", "key_erased"] = Field(
        default="none",
        description="none: written without encryption; decrypted: the viewer decrypted it; no_key / key_erased: its "
        "encrypted values are shown as markers",
    )
    agents: list[AgentInfo]
    feedback_counts: FeedbackCounts
    guardrail_summary: GuardrailSummary | None = None
    timeline: list[TimelineItem]


class SnapshotSummary(BaseModel):
    """One snapshot session in a listing, from its storage keys only."""

    session_id: str
    agent_ids: list[str]
    checkpoint_count: int


class SnapshotPage(BaseModel):
    """One page of snapshot sessions, in id order; ``available`` is false when the storage collection is absent."""

    available: bool
    collection: str
    total: int
    limit: int
    offset: int
    sessions: list[SnapshotSummary]


class SnapshotAgent(BaseModel):
    """An agent of a snapshot session, as its latest snapshot holds it."""

    agent_id: str
    snapshot_created_at: str | None
    message_count: int
    system_prompt: str | EncryptedValue | None
    state: dict[str, Any]


class SnapshotDetail(BaseModel):
    """One snapshot session, read-only: its agents' latest snapshots and their messages (no timestamps)."""

    session_id: str
    snapshot_created_at: str | None
    checkpoint_count: int
    agents: list[SnapshotAgent]
    timeline: list[MessageItem]


class DashboardDay(BaseModel):
    """One UTC day of the usage dashboard (zero-filled; percentiles null without figures)."""

    day: str
    sessions: int
    messages: int
    input_tokens: int
    output_tokens: int
    latency_p50: int | float | None
    latency_p95: int | float | None
    ttfb_p50: int | float | None
    ttfb_p95: int | float | None
    feedback_up: int
    feedback_down: int
    feedback_none: int


class DashboardTotals(BaseModel):
    """The usage dashboard's totals over the range; ``feedback_ratio`` is up / (up + down), null without both."""

    sessions: int
    messages: int
    invocations: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    latency_p50: int | float | None
    latency_p95: int | float | None
    ttfb_p50: int | float | None
    ttfb_p95: int | float | None
    feedback_up: int
    feedback_down: int
    feedback_none: int
    feedback_ratio: float | None


class DashboardTool(BaseModel):
    """A tool of the usage dashboard (the 10 most called)."""

    tool: str
    calls: int
    errors: int
    error_rate: float


class DashboardModel(BaseModel):
    """A model of the usage dashboard (the 10 with the most input + output tokens); null when not recorded."""

    model: str | None
    input_tokens: int
    output_tokens: int
    invocations: int


class Dashboard(BaseModel):
    """The usage dashboard of one range of days (``GET /api/v1/metrics``)."""

    start: str
    end: str
    days: list[DashboardDay]
    totals: DashboardTotals
    tools: list[DashboardTool]
    models: list[DashboardModel]
