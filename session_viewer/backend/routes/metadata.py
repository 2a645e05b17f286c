"""``GET /api/v1/metadata-fields``: the metadata fields a search can filter on."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pymongo.asynchronous.collection import AsyncCollection

from ..database import get_collection
from ..models import MetadataFields
from ..security import require_backend_password

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["metadata"], dependencies=[Depends(require_backend_password)])


@router.get("/metadata-fields", response_model=MetadataFields)
async def metadata_fields(
    request: Request, collection: Annotated[AsyncCollection[Any], Depends(get_collection)]
) -> dict[str, Any]:
    """List the indexed metadata fields with their type and, for configured enum fields, their values."""
    return {"fields": await request.app.state.field_catalog.describe(collection)}
