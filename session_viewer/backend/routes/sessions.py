"""``GET /api/v1/sessions/search`` (a page of summaries) and ``GET /api/v1/sessions/{session_id}`` (one timeline)."""

import asyncio
import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pymongo.asynchronous.collection import AsyncCollection

from mongodb_session_manager import MongoDBSessionRepository, SessionNotFoundError
from web_common.values import json_safe, parse_timestamp

from ..database import get_collection, get_field_catalog, get_reader, get_repository, get_revealer
from ..encryption import Revealer, ViewerEncryption, api_value, has_ciphertext
from ..fields import FieldCatalog
from ..models import SearchPage, SessionDetail
from ..queries import (
    COUNT_CAP,
    ID_INDEX,
    SearchParameterError,
    check_filterable,
    created_at_range,
    detail_pipeline,
    is_prefix_search,
    parse_application,
    parse_filters,
    search_match,
    search_pipeline,
)
from ..security import require_backend_password, require_session_access
from ..timeline import session_detail

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

_MAX_OFFSET = 2**31 - 1

Collection = Annotated[AsyncCollection[Any], Depends(get_collection)]
Repository = Annotated[MongoDBSessionRepository, Depends(get_repository)]
Reader = Annotated[MongoDBSessionRepository, Depends(get_reader)]
RequestRevealer = Annotated[Revealer, Depends(get_revealer)]


@router.get("/search", response_model=SearchPage, dependencies=[Depends(require_backend_password)])
async def search_sessions(
    request: Request,
    collection: Collection,
    repository: Repository,
    revealer: RequestRevealer,
    catalog: Annotated[FieldCatalog, Depends(get_field_catalog)],
    session_id: Annotated[
        str | None, Query(description="Start of the id (case-sensitive); anywhere in it with session_id_mode=contains")
    ] = None,
    session_id_mode: Annotated[
        Literal["prefix", "contains"],
        Query(description="prefix: an _id index range (default); contains: literal, case-insensitive, reads every id"),
    ] = "prefix",
    created_at_start: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    created_at_end: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    filters: Annotated[str | None, Query(description="JSON object: metadata field -> literal value")] = None,
    application: Annotated[str | None, Query(description="Exact application_name of the sessions")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Search sessions, newest first: one aggregation for the page and one capped count, run concurrently.

    A session-id prefix walks the ``_id`` index: that page is in session-id order and reads only the index
    entries of the page (and its offset). The count stops at ``COUNT_CAP`` + 1 matches (``total_capped``);
    without any criterion the collection's metadata answers it.

    Message counts come from the library: the page's aggregation computes the embedded ones, and only a
    page with an agent in the collection layout costs one more command (a ``$group`` on the messages).

    Encrypted sessions: a filter on a deterministically encrypted field matches its ciphertext (computed with the
    viewer's key) or its clear value; the page's encrypted metadata values are decrypted, or shown as markers.

    Raises:
        HTTPException: 400 for bad filters (a randomly encrypted field, or an encrypted one without the key) or
            dates, 422 for a limit above ``MAX_PAGE_SIZE``.
    """
    settings = request.app.state.settings
    limit = settings.default_page_size if limit is None else limit
    if limit > settings.max_page_size:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"limit must be at most {settings.max_page_size}",
        )
    encryption: ViewerEncryption = request.app.state.encryption
    try:
        metadata_filters: dict[str, Any] = parse_filters(filters)
        application_name = parse_application(application)
        created_at = created_at_range(created_at_start, created_at_end)
        if metadata_filters:
            encryption.check_filters(metadata_filters)
            indexed = await catalog.indexed(collection, set(metadata_filters))
            check_filterable(metadata_filters, indexed)
            if encryption.needs_encrypting(metadata_filters):
                metadata_filters = await asyncio.to_thread(encryption.query_values, metadata_filters)
    except SearchParameterError as error:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail=str(error)) from error

    match = search_match(session_id, created_at, metadata_filters, application_name, session_id_mode)
    by_id = is_prefix_search(session_id, session_id_mode)
    hint: dict[str, Any] = {"hint": ID_INDEX} if by_id else {}
    page, (total, capped) = await asyncio.gather(
        _page(collection, search_pipeline(match, offset, limit, by_session_id=by_id), limit, hint),
        _total(collection, match, hint),
    )
    counts = await asyncio.to_thread(_message_counts, repository, page)
    if any(has_ciphertext(doc.get("metadata")) for doc in page):
        await asyncio.to_thread(_open_metadata, revealer, page)
    logger.debug("match=<%s> | offset=<%d> | limit=<%d> | total=<%d> | searched sessions", match, offset, limit, total)
    sessions = [_summary(doc, counts.get(doc.get("_id"), {})) for doc in page]
    return {"total": total, "total_capped": capped, "limit": limit, "offset": offset, "sessions": sessions}


def _open_metadata(revealer: Revealer, page: list[dict[str, Any]]) -> None:
    """Decrypt the page's encrypted metadata values in place (markers for those the viewer cannot decrypt)."""
    for doc in page:
        if has_ciphertext(doc.get("metadata")):
            doc["metadata"] = revealer.open_tree(str(doc.get("session_id")), doc["metadata"])


async def _page(
    collection: AsyncCollection[Any], pipeline: list[dict[str, Any]], limit: int, hint: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One aggregate command: the batch size covers the whole page, so no getMore follows."""
    cursor = await collection.aggregate(pipeline, batchSize=limit + 1, **hint)
    return await cursor.to_list()


async def _total(
    collection: AsyncCollection[Any], match: Mapping[str, Any], hint: Mapping[str, Any]
) -> tuple[int, bool]:
    """Count the matching sessions up to ``COUNT_CAP``; returns the count and whether more match.

    The count is a ``$limit`` of ``COUNT_CAP`` + 1 before the ``$group``: its index work is bounded by the
    cap whatever the collection holds. Without criteria the collection's own count answers from metadata.
    """
    if not match:
        return await collection.estimated_document_count(), False
    counted = await collection.count_documents(dict(match), limit=COUNT_CAP + 1, **hint)
    return min(counted, COUNT_CAP), counted > COUNT_CAP


def _message_counts(repository: MongoDBSessionRepository, page: list[dict[str, Any]]) -> dict[Any, dict[str, int]]:
    """Per-agent message counts of the page's sessions, from the counts its aggregation already computed.

    A document whose ``_id`` is not a session id the library could have written counts no messages.
    """
    agent_counts = {doc["_id"]: doc.get("agent_counts") or [] for doc in page if _is_session_id(doc.get("_id"))}
    return repository.count_messages(list(agent_counts), agent_counts=agent_counts)


def _is_session_id(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _summary(document: Mapping[str, Any], message_counts: Mapping[str, int]) -> dict[str, Any]:
    """Shape one projected session for the API."""
    return {
        "session_id": str(document.get("session_id")),
        "created_at": _iso(document.get("created_at")),
        "updated_at": _iso(document.get("updated_at")),
        "application_name": _text_or_none(document.get("application_name")),
        "metadata": json_safe(api_value(document.get("metadata") or {})),
        "agent_ids": [str(agent_id) for agent_id in document.get("agent_ids") or []],
        "message_count": sum(message_counts.values()),
        "feedback_counts": {
            "up": int(document.get("feedback_up") or 0),
            "down": int(document.get("feedback_down") or 0),
            "neutral": int(document.get("feedback_neutral") or 0),
        },
    }


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _iso(value: Any) -> str | None:
    moment = parse_timestamp(value)
    return json_safe(moment) if moment else None


@router.get("/{session_id:path}", response_model=SessionDetail, dependencies=[Depends(require_session_access)])
async def get_session(
    session_id: str, collection: Collection, reader: Reader, revealer: RequestRevealer
) -> dict[str, Any]:
    """Return one session with the unified timeline of all its agents' messages and its feedback.

    The session's fields and its messages (read through the library, in any layout) are read concurrently. An
    encrypted session's values are decrypted with the viewer's key access; each one it cannot decrypt is shown
    as a marker, and the timeline loads all the same.

    Raises:
        HTTPException: 404 when the session does not exist.
    """
    document, messages = await asyncio.gather(
        _detail(collection, session_id),
        asyncio.to_thread(_session_messages, reader, session_id),
        return_exceptions=True,
    )
    for outcome in (messages, document):  # the library's error first: the same one whichever read ends first
        if isinstance(outcome, BaseException):
            raise outcome
    if not isinstance(document, Mapping) or not isinstance(messages, Mapping):
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="session not found")
    if has_ciphertext(document):
        document = await asyncio.to_thread(revealer.open_tree, session_id, document)
    return session_detail(document, messages, revealer.session_state(document.get("encrypted") is True))


async def _detail(collection: AsyncCollection[Any], session_id: str) -> dict[str, Any] | None:
    """The session's fields the timeline shows, without its messages; None when it does not exist."""
    cursor = await collection.aggregate(detail_pipeline(session_id))
    documents = await cursor.to_list()
    return documents[0] if documents else None


def _session_messages(repository: MongoDBSessionRepository, session_id: str) -> dict[str, list[dict[str, Any]]] | None:
    """Every agent's messages by agent id, in any layout; None when the session does not exist."""
    try:
        return repository.session_messages(session_id)
    except SessionNotFoundError:
        return None
