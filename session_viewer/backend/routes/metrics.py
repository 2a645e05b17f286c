"""``GET /api/v1/metrics``: the usage dashboard of the collection read, computed by the library off the event loop."""

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pymongo.asynchronous.collection import AsyncCollection

from mongodb_session_manager import MongoDBSessionRepository
from mongodb_session_manager.analytics import DashboardQueryError, dashboard_metrics

from ..database import get_collection, get_field_catalog, get_repository
from ..encryption import ViewerEncryption
from ..fields import FieldCatalog
from ..models import Dashboard
from ..queries import SearchParameterError, check_filterable, parse_filters
from ..security import require_backend_password

__all__ = ["DEFAULT_DAYS", "router"]

router = APIRouter(prefix="/api/v1", tags=["metrics"], dependencies=[Depends(require_backend_password)])

DEFAULT_DAYS = 30
"""Days shown without a ``start``: the 30 days ending with ``end`` (today, UTC, by default)."""

_DAY_HELP = "YYYY-MM-DD, UTC"


@router.get("/metrics", response_model=Dashboard)
async def get_metrics(
    request: Request,
    collection: Annotated[AsyncCollection[Any], Depends(get_collection)],
    repository: Annotated[MongoDBSessionRepository, Depends(get_repository)],
    catalog: Annotated[FieldCatalog, Depends(get_field_catalog)],
    start: Annotated[str | None, Query(description=f"First day ({_DAY_HELP}); default: 29 days before end")] = None,
    end: Annotated[str | None, Query(description=f"Last day, included ({_DAY_HELP}); default: today")] = None,
    application: Annotated[str | None, Query(description="Only sessions of this application_name")] = None,
    agent: Annotated[str | None, Query(description="Only this agent id")] = None,
    model: Annotated[str | None, Query(description="Only agents with this recorded model")] = None,
    filters: Annotated[str | None, Query(description="JSON object: indexed metadata field -> literal value")] = None,
) -> dict[str, Any]:
    """Return the dashboard's panels for a range of at most 366 days (two aggregates, in a worker thread).

    The figures are clear in encrypted sessions too; a filter on a deterministically encrypted metadata field is
    encrypted with the viewer's key (`dashboard_metrics`'s ``encryption``).

    Raises:
        HTTPException: 400 for a bad day, a range that is reversed or too long, or bad filters (a randomly
            encrypted field, or an encrypted one without the key).
    """
    encryption: ViewerEncryption = request.app.state.encryption
    try:
        metadata = parse_filters(filters)
        if metadata:
            encryption.check_filters(metadata)
            check_filterable(metadata, await catalog.indexed(collection, set(metadata)))
        first, last = _range(start, end)
        return await asyncio.to_thread(
            dashboard_metrics,
            repository.collection,
            first,
            last,
            application=application or None,
            metadata=metadata,
            agent_id=agent or None,
            model=model or None,
            encryption=encryption.settings,
        )
    except (SearchParameterError, DashboardQueryError) as error:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail=str(error)) from error


def _range(start: str | None, end: str | None) -> tuple[str, str]:
    """The requested days, defaults filled in: ``end`` today (UTC), ``start`` 29 days before ``end``.

    The library checks both days; a default ``start`` stops at the first representable day.

    Raises:
        DashboardQueryError: ``end`` is not a day, when ``start`` must be derived from it.
    """
    last = end or datetime.now(UTC).date().isoformat()
    if start:
        return start, last
    try:
        last_day = date.fromisoformat(last)
    except ValueError as error:
        raise DashboardQueryError(f"end=<{last!r}> | end must be YYYY-MM-DD") from error
    first_day = last_day - timedelta(days=min(DEFAULT_DAYS - 1, (last_day - date.min).days))
    return first_day.isoformat(), last
