"""The playground API: stream a reply, read a session's history and info, store feedback.

Stateless: every request takes a session manager from the global factory (the shared client, no new
connection) and, for a chat message, builds a new agent that the manager restores from MongoDB. Nothing
is kept in memory between requests, so any number of workers can serve the same sessions.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from strands import Agent
from strands.models import Model
from strands.types.tools import ToolResult

from mongodb_session_manager import (
    DuplicateMessageError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    SessionException,
    SessionNotFoundError,
    get_global_factory,
)
from mongodb_session_manager.demo_model import DemoModel, describe_model, tool_result_text
from web_common.values import parse_timestamp, plain_json

from .agent import AGENT_ID, build_agent
from .config import Settings
from .models import (
    SESSION_ID_PATTERN,
    ChatRequest,
    FeedbackRequest,
    FeedbackStored,
    History,
    HistoryMessage,
    Metrics,
    PlaygroundInfo,
    SessionInfo,
    StoredFeedback,
    ToolCall,
    ToolOutput,
)

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api")

SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN)]
TITLE_CHARS = 80


def session_factory() -> MongoDBSessionManagerFactory:
    """Dependency: the process-wide factory opened by the app's lifespan."""
    return get_global_factory()


def settings_of(request: Request) -> Settings:
    """Dependency: the app's settings."""
    return request.app.state.settings


def model_of(request: Request) -> Model:
    """Dependency: the model every request's agent uses."""
    return request.app.state.model


Factory = Annotated[MongoDBSessionManagerFactory, Depends(session_factory)]


@router.get("/info")
def playground_info(model: Annotated[Model, Depends(model_of)]) -> PlaygroundInfo:
    """Which model answers (the widget labels the offline demo model)."""
    return PlaygroundInfo(model=describe_model(model), demo_model=isinstance(model, DemoModel))


@router.post("/chat/stream")
async def chat_stream(
    body: ChatRequest,
    factory: Factory,
    settings: Annotated[Settings, Depends(settings_of)],
    model: Annotated[Model, Depends(model_of)],
) -> StreamingResponse:
    """Answer one message as Server-Sent Events.

    Events (``data: <json>``): ``token`` (``text``), ``tool`` (``name``, ``input``), ``tool_result``
    (``status``, ``text``), then ``done`` (``metrics``) or ``error`` (``message``).
    """
    if len(body.message) > settings.max_message_chars:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"messages are limited to {settings.max_message_chars} characters"
        )
    return StreamingResponse(
        _reply_events(factory, model, settings, body.session_id, body.message),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _reply_events(
    factory: MongoDBSessionManagerFactory, model: Model, settings: Settings, session_id: str, message: str
) -> AsyncIterator[str]:
    session_manager = None
    try:
        # Opening the session and restoring the agent read MongoDB (blocking pymongo): use the thread pool.
        session_manager = await run_in_threadpool(_open_session, factory, session_id)
        agent = await run_in_threadpool(build_agent, session_manager, model, settings.system_prompt)
        new_conversation = not agent.messages
        events = _agent_events(agent, message)
        if isinstance(model, DemoModel) and settings.demo_token_delay_ms:
            events = _paced(events, settings.demo_token_delay_ms / 1000)
        done: dict[str, Any] = {"type": "done", "metrics": {}}
        async for event in events:
            if event["type"] == "done":
                done = event
            else:
                yield _sse(event)
        metadata: dict[str, Any] = {"channel": "playground", "last_message_at": datetime.now(UTC)}
        if new_conversation:
            metadata["title"] = message[:TITLE_CHARS]
        await run_in_threadpool(session_manager.update_metadata, metadata)
        stored = await run_in_threadpool(_stored_metrics, factory, session_id)
        yield _sse({"type": "done", "metrics": stored} if stored is not None else done)
    except Exception as error:
        if _caused_by(error, DuplicateMessageError):
            logger.warning("session_id=<%s> | concurrent reply to the same session refused", session_id)
            yield _sse({"type": "error", "message": "Another reply to this conversation was saved at the same time."})
        else:
            logger.exception("session_id=<%s> | reply failed", session_id)
            yield _sse({"type": "error", "message": "The assistant could not answer; see the server log."})
    finally:
        if session_manager is not None:
            session_manager.close()


async def _agent_events(agent: Agent, message: str) -> AsyncIterator[dict[str, Any]]:
    """Run the agent on ``message``; yield token, tool and tool_result events, then done with the metrics."""
    async for event in agent.stream_async(message):
        if event.get("data"):
            yield {"type": "token", "text": event["data"]}
        elif "message" in event:
            for block in event["message"].get("content", []):
                if "toolUse" in block:
                    yield {"type": "tool", "name": block["toolUse"]["name"], "input": block["toolUse"].get("input")}
                elif "toolResult" in block:
                    yield {"type": "tool_result", **_tool_output(block["toolResult"]).model_dump()}
        elif "result" in event:
            metrics = event["result"].metrics
            totals = {**metrics.accumulated_usage, **metrics.accumulated_metrics}
            yield {"type": "done", "metrics": Metrics.model_validate(totals).model_dump()}


async def _paced(events: AsyncIterator[dict[str, Any]], delay: float) -> AsyncIterator[dict[str, Any]]:
    """Yield ``events`` with a pause after each token while the agent runs ahead at its own speed.

    Only for the offline demo model, which answers instantly: its answer can be seen streaming in the browser,
    and the pauses never count as model latency in the metrics stored with the answer.
    """
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def run() -> None:
        try:
            async for event in events:
                queue.put_nowait(("event", event))
            queue.put_nowait(("end", None))
        except Exception as error:
            queue.put_nowait(("error", error))

    task = asyncio.create_task(run())
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
            if value["type"] == "token":
                await asyncio.sleep(delay)
    finally:
        task.cancel()  # a no-op once the agent has finished


@router.get("/sessions/{session_id}/history")
def session_history(session_id: SessionId, factory: Factory) -> History:
    """The conversation so far, each answer with its stored metrics, for the widget after a reload.

    Empty for a new session. One read of the agent's messages through the library, whichever layout holds them.
    """
    try:
        stored = _repository(factory).list_message_documents(session_id, AGENT_ID)
    except SessionNotFoundError:
        stored = []
    return History(session_id=session_id, messages=[_history_message(document) for document in stored])


@router.get("/sessions/{session_id}")
def session_info(session_id: SessionId, factory: Factory) -> SessionInfo:
    """Session metadata, the agent's model, message count and latest answer's metrics, and the feedback.

    Read through the library's readers, whichever layout holds the messages: the session, its metadata, its
    feedback and the agent's config (one find each), the message count and the latest message (one command
    each, one more each for an agent in the collection layout).
    """
    repository = _repository(factory)
    session = repository.read_session(session_id)
    if session is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such session")
    config = repository.get_agent_config(session_id, AGENT_ID) or {}
    feedbacks = [
        StoredFeedback.model_validate(_feedback_fields(entry)) for entry in repository.get_feedbacks(session_id)
    ]
    latest = _latest_message(repository, session_id)
    return SessionInfo(
        session_id=session_id,
        created_at=parse_timestamp(session.created_at),
        updated_at=_last_activity(session.updated_at, latest, feedbacks),
        model=config.get("model"),
        system_prompt=config.get("system_prompt"),
        message_count=repository.count_messages([session_id]).get(session_id, {}).get(AGENT_ID, 0),
        metadata=plain_json(repository.get_metadata(session_id).get("metadata", {})),
        latest_metrics=_answer_metrics(latest) if latest is not None else None,
        feedbacks=feedbacks,
    )


@router.post("/sessions/{session_id}/feedback", status_code=status.HTTP_201_CREATED)
def add_feedback(session_id: SessionId, body: FeedbackRequest, factory: Factory) -> FeedbackStored:
    """Store a thumbs up/down and comment on an existing session (404 for an unknown one: nothing is created)."""
    if _repository(factory).read_session(session_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such session")
    with factory.create_session_manager(session_id) as session_manager:
        session_manager.add_feedback({"rating": body.rating, "comment": body.comment.strip(), "source": "playground"})
    return FeedbackStored(feedback=StoredFeedback(rating=body.rating, comment=body.comment.strip()))


def _open_session(factory: MongoDBSessionManagerFactory, session_id: str) -> MongoDBSessionManager:
    """Take a manager for the session from the factory, creating the session on its first message.

    Two first messages racing on a new session both find it missing and both create it; the second create is
    refused (``SessionException``), and opening again then simply loads the session the other request made.
    """
    try:
        return factory.create_session_manager(session_id)
    except SessionException:
        return factory.create_session_manager(session_id)


def _repository(factory: MongoDBSessionManagerFactory) -> MongoDBSessionRepository:
    """A repository on the factory's shared client, for reads that must not create the session (nor indexes)."""
    return MongoDBSessionRepository(
        client=factory.client,
        database_name=factory.database_name,
        collection_name=factory.collection_name,
        create_indexes=False,
    )


def _stored_metrics(factory: MongoDBSessionManagerFactory, session_id: str) -> dict[str, Any] | None:
    """The metrics stored with the answer just given (its invocation's closing message), as history shows them."""
    latest = _latest_message(_repository(factory), session_id)
    return _answer_metrics(latest) if latest is not None else None


def _latest_message(repository: MongoDBSessionRepository, session_id: str) -> dict[str, Any] | None:
    """The agent's latest stored message, in either layout; None when it has none (or no agent yet)."""
    try:
        return repository.latest_message_document(session_id, AGENT_ID)
    except SessionNotFoundError:
        return None


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``error`` or its cause chain is a ``kind`` (strands wraps errors raised in its event loop)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__
    return False


def _sse(event: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(event, default=str)}\n\n"


def _tool_output(result: ToolResult) -> ToolOutput:
    return ToolOutput(status=result.get("status"), text=tool_result_text(result))


def _history_message(document: Mapping[str, Any]) -> HistoryMessage:
    """A stored message as the chat shows it; the message closing an invocation carries its metrics."""
    message = document.get("message") or {}
    content = message.get("content", [])
    return HistoryMessage(
        message_id=document["message_id"],
        role=message.get("role", "assistant"),
        text="".join(block["text"] for block in content if "text" in block),
        tool_calls=[
            ToolCall(name=block["toolUse"]["name"], input=block["toolUse"].get("input"))
            for block in content
            if "toolUse" in block
        ],
        tool_results=[_tool_output(block["toolResult"]) for block in content if "toolResult" in block],
        created_at=document.get("created_at"),
        metrics=_answer_metrics(document),
    )


def _answer_metrics(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The latency, time to first byte and tokens stored with a message (None when it closes no invocation)."""
    stored = document.get("event_loop_metrics")
    if not isinstance(stored, Mapping):
        return None
    usage, timing = stored.get("accumulated_usage"), stored.get("accumulated_metrics")
    figures = {**(usage if isinstance(usage, Mapping) else {}), **(timing if isinstance(timing, Mapping) else {})}
    return Metrics.model_validate(figures).model_dump()


def _last_activity(
    session_updated: str, latest: Mapping[str, Any] | None, feedbacks: list[StoredFeedback]
) -> datetime | None:
    """When the conversation last changed: the latest message or feedback, else the session's own time."""
    times = [
        parse_timestamp(session_updated),
        parse_timestamp((latest or {}).get("updated_at")),
        *(feedback.created_at for feedback in feedbacks),
    ]
    known = [moment for moment in times if moment is not None]
    return max(known) if known else None


def _feedback_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    rating = entry.get("rating")
    return {
        "rating": rating if rating in ("up", "down") else None,
        "comment": str(entry.get("comment") or ""),
        "created_at": parse_timestamp(entry.get("created_at")),
    }
