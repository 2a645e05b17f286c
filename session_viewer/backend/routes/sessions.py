"""``GET /api/v1/sessions/search`` (a page of summaries) and ``GET /api/v1/sessions/{session_id}`` (one timeline)."""

import asyncio
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pymongo.asynchronous.collection import AsyncCollection

from ..database import get_collection
from ..models import SearchPage, SessionDetail
from ..queries import (
    SearchParameterError,
    check_filterable,
    created_at_range,
    detail_pipeline,
    parse_filters,
    search_match,
    search_pipeline,
)
from ..security import require_backend_password, require_session_access
from ..timeline import session_detail
from ..values import json_safe, parse_timestamp

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

_MAX_OFFSET = 2**31 - 1

Collection = Annotated[AsyncCollection[Any], Depends(get_collection)]


@router.get("/search", response_model=SearchPage, dependencies=[Depends(require_backend_password)])
async def search_sessions(
    request: Request,
    collection: Collection,
    session_id: Annotated[str | None, Query(description="Literal, case-insensitive part of the id")] = None,
    created_at_start: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    created_at_end: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    filters: Annotated[str | None, Query(description="JSON object: metadata field -> literal value")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Search sessions, newest first: one aggregation for the page and one count, run concurrently.

    Raises:
        HTTPException: 400 for bad filters or dates, 422 for a limit above ``MAX_PAGE_SIZE``.
    """
    settings = request.app.state.settings
    limit = settings.default_page_size if limit is None else limit
    if limit > settings.max_page_size:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"limit must be at most {settings.max_page_size}",
        )
    try:
        metadata_filters = parse_filters(filters)
        created_at = created_at_range(created_at_start, created_at_end)
        if metadata_filters:
            indexed = await request.app.state.field_catalog.indexed(collection, set(metadata_filters))
            check_filterable(metadata_filters, indexed)
    except SearchParameterError as error:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail=str(error)) from error

    match = search_match(session_id, created_at, metadata_filters)
    page, total = await asyncio.gather(_page(collection, match, offset, limit), _total(collection, match))
    logger.debug("match=<%s> | offset=<%d> | limit=<%d> | total=<%d> | searched sessions", match, offset, limit, total)
    return {"total": total, "limit": limit, "offset": offset, "sessions": [_summary(doc) for doc in page]}


async def _page(
    collection: AsyncCollection[Any], match: Mapping[str, Any], offset: int, limit: int
) -> list[dict[str, Any]]:
    """One aggregate command: the batch size covers the whole page, so no getMore follows."""
    cursor = await collection.aggregate(search_pipeline(match, offset, limit), batchSize=limit + 1)
    return await cursor.to_list()


async def _total(collection: AsyncCollection[Any], match: Mapping[str, Any]) -> int:
    """Count the matching sessions; without criteria the collection's own count answers from metadata."""
    if not match:
        return await collection.estimated_document_count()
    return await collection.count_documents(dict(match))


def _summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """Shape one projected session for the API."""
    return {
        "session_id": str(document.get("session_id")),
        "created_at": _iso(document.get("created_at")),
        "updated_at": _iso(document.get("updated_at")),
        "metadata": json_safe(document.get("metadata") or {}),
        "agent_ids": [str(agent_id) for agent_id in document.get("agent_ids") or []],
        "message_count": int(document.get("message_count") or 0),
        "feedback_counts": {
            "up": int(document.get("feedback_up") or 0),
            "down": int(document.get("feedback_down") or 0),
            "neutral": int(document.get("feedback_neutral") or 0),
        },
    }


def _iso(value: Any) -> str | None:
    moment = parse_timestamp(value)
    return json_safe(moment) if moment else None


@router.get("/{session_id:path}", response_model=SessionDetail, dependencies=[Depends(require_session_access)])
async def get_session(session_id: str, collection: Collection) -> dict[str, Any]:
    """Return one session with the unified timeline of all its agents' messages and its feedback.

    Raises:
        HTTPException: 404 when the session does not exist.
    """
    cursor = await collection.aggregate(detail_pipeline(session_id))
    documents = await cursor.to_list()
    if not documents:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="session not found")
    return session_detail(documents[0])
