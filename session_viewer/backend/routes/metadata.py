"""``GET /api/v1/metadata-fields``: the metadata fields a search can filter on."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pymongo.asynchronous.collection import AsyncCollection

from ..database import get_collection, get_field_catalog
from ..fields import FieldCatalog
from ..models import MetadataFields
from ..security import require_backend_password

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["metadata"], dependencies=[Depends(require_backend_password)])


@router.get("/metadata-fields", response_model=MetadataFields)
async def metadata_fields(
    collection: Annotated[AsyncCollection[Any], Depends(get_collection)],
    catalog: Annotated[FieldCatalog, Depends(get_field_catalog)],
) -> dict[str, Any]:
    """List the indexed metadata fields of the collection read, with their type and, for enum fields, values."""
    return {"fields": await catalog.describe(collection)}
