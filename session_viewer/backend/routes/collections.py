"""``GET /api/v1/collections``: the collections the viewer can read, for the header's collection switch."""

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..models import Collections
from ..security import require_backend_password

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["collections"], dependencies=[Depends(require_backend_password)])


@router.get("/collections", response_model=Collections)
async def collections(request: Request) -> dict[str, Any]:
    """List the configured collection first, then every other collection of the server that holds sessions.

    ``snapshots`` names the snapshot storage collection when it exists (else null; known for up to 30 s).
    """
    namespaces = request.app.state.namespaces
    snapshot_sessions = request.app.state.snapshot_sessions
    listed = await namespaces.listing(request.app.state.mongo_client)
    snapshots = snapshot_sessions.namespace if await snapshot_sessions.available(cached=True) else None
    return {"default": namespaces.default, "collections": listed, "snapshots": snapshots}
