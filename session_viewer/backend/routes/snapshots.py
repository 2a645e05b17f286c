"""``GET /api/v1/snapshots/search`` and ``GET /api/v1/snapshots/{session_id}``: snapshot sessions, read-only.

Snapshot sessions (strands' ``SnapshotSessionManager`` on ``MongoDBStorage``) live in ``SNAPSHOT_COLLECTION_NAME``
of ``DATABASE_NAME``. Both routes need the backend password: a snapshot session has no viewer password.
"""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from ..models import SnapshotDetail, SnapshotPage
from ..security import require_backend_password
from ..snapshots import SnapshotSessions

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/snapshots", tags=["snapshots"], dependencies=[Depends(require_backend_password)])

_MAX_OFFSET = 2**31 - 1


def _sessions(request: Request) -> SnapshotSessions:
    sessions: SnapshotSessions = request.app.state.snapshot_sessions
    return sessions


@router.get("/search", response_model=SnapshotPage)
async def search_snapshot_sessions(
    request: Request,
    session_id: Annotated[str | None, Query(description="Literal, case-insensitive part of the id")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """List snapshot sessions in id order from their keys alone (no snapshot is read).

    ``available`` is false (and the page empty) when the storage collection does not exist.

    Raises:
        HTTPException: 422 for a limit above ``MAX_PAGE_SIZE``.
    """
    settings = request.app.state.settings
    limit = settings.default_page_size if limit is None else limit
    if limit > settings.max_page_size:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"limit must be at most {settings.max_page_size}",
        )
    sessions = _sessions(request)
    page: dict[str, Any] = {"collection": sessions.namespace, "total": 0, "limit": limit, "offset": offset}
    if not await sessions.available():
        return {**page, "available": False, "sessions": []}
    total, summaries = await sessions.search(session_id, offset, limit)
    return {**page, "available": True, "total": total, "sessions": [summary.as_dict() for summary in summaries]}


@router.get("/{session_id:path}", response_model=SnapshotDetail)
async def get_snapshot_session(request: Request, session_id: str) -> dict[str, Any]:
    """Return the latest snapshot of every agent of one snapshot session: agents, their state, the messages.

    Raises:
        HTTPException: 404 when the session has no latest snapshot.
    """
    detail = await _sessions(request).detail(session_id)
    if detail is None:
        logger.debug("session_id=<%s> | no such snapshot session", session_id)
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="snapshot session not found")
    return detail
