"""Which metadata fields can be filtered on: the indexed ones, with their type and, for enum fields, values.

An encrypted field is listed only when the viewer can filter on it (deterministic, with the key): its values and
type are those of the decrypted values.
"""

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from mongodb_session_manager.documents import get_path
from mongodb_session_manager.encryption import is_encrypted

from .encryption import ViewerEncryption
from .queries import METADATA_PREFIX, enum_values_pipeline, indexed_metadata_fields

__all__ = ["FieldCatalog"]

logger = logging.getLogger(__name__)

_CACHE_SECONDS = 30.0


class FieldCatalog:
    """Knows the indexed metadata fields of one collection, re-reading the index list at most every 30 s.

    A field that is not known yet triggers one re-read, so a newly indexed field becomes filterable at once.
    """

    def __init__(self, enum_fields: set[str], enum_max_values: int, encryption: ViewerEncryption | None = None) -> None:
        """Create an empty catalog.

        Args:
            enum_fields: Metadata fields to offer as value lists.
            enum_max_values: Largest number of distinct values a field may have to be offered as a list.
            encryption: The viewer's key access, to leave out the encrypted fields it cannot filter on and to
                decrypt the values of those it can.
        """
        self.enum_fields = enum_fields
        self.enum_max_values = enum_max_values
        self.encryption = encryption
        self._fields: set[str] = set()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def indexed(self, collection: AsyncCollection[Any], wanted: set[str] | None = None) -> set[str]:
        """Return the indexed metadata fields, re-reading them when stale or when a ``wanted`` field is unknown."""
        stale = self._read_at is None or time.monotonic() - self._read_at > _CACHE_SECONDS
        if stale or (wanted and not wanted <= self._fields):
            async with self._lock:
                indexes = await (await collection.list_indexes()).to_list()
                self._fields = set(indexed_metadata_fields(indexes))
                self._read_at = time.monotonic()
                logger.debug("fields=<%s> | read indexed metadata fields", sorted(self._fields))
        return self._fields

    async def describe(self, collection: AsyncCollection[Any]) -> list[dict[str, Any]]:
        """Describe every indexed metadata field: name, path, type and enum values (or None)."""
        fields = sorted(await self.indexed(collection, None))
        if self.encryption is not None:
            fields = [field for field in fields if self.encryption.filter_error(field) is None]
        described = await asyncio.gather(*(self._describe_one(collection, field) for field in fields))
        return list(described)

    async def _describe_one(self, collection: AsyncCollection[Any], field: str) -> dict[str, Any]:
        path = f"{METADATA_PREFIX}{field}"
        values = None
        if field in self.enum_fields:
            values = await self._enum_values(collection, field)
        if values is not None:
            kind = "enum"
        else:
            sample = await collection.find_one({path: {"$exists": True}}, {path: 1, "_id": 0})
            opened = await self._opened([get_path(sample, path)])
            kind = _type_name(opened[0] if opened else None)
        return {"field": field, "path": path, "type": kind, "values": values}

    async def _enum_values(self, collection: AsyncCollection[Any], field: str) -> list[Any] | None:
        """Return the sorted distinct scalar values, or None when there are more than allowed."""
        cursor = await collection.aggregate(enum_values_pipeline(field, self.enum_max_values))
        groups = await cursor.to_list()
        if len(groups) > self.enum_max_values:
            return None
        opened = await self._opened([group.get("_id") for group in groups])
        scalars = {(type(value), value): value for value in opened if isinstance(value, str | int | float | bool)}
        values = list(scalars.values())  # a value both encrypted and clear (a mixed collection) once
        return sorted(values, key=lambda value: (isinstance(value, bool), isinstance(value, str), value))

    async def _opened(self, values: list[Any]) -> list[Any]:
        """Stored values with their ciphertexts decrypted (in a worker thread); those it cannot decrypt left out."""
        if self.encryption is None or not any(is_encrypted(value) for value in values):
            return values
        return await asyncio.to_thread(self.encryption.open_values, values)


def _type_name(value: Any) -> str:
    """API type name of a sampled value (lists are described by their first element)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime):
        return "date"
    return "string"
