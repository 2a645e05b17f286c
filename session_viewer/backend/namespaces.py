"""Which collections the viewer reads: the configured one, and the collections of the server that hold sessions.

A request names the collection it reads with the ``collection`` query parameter (``<database>.<collection>``;
absent: the configured ``DATABASE_NAME.COLLECTION_NAME``). Any other value must be one of `Namespaces.listing`:
collections whose first document is a session document, found with one cheap ``find_one`` (two fields
projected) per collection. Never listed: the system databases (admin, local, config), ``system.*``
collections, views, ``<collection>.messages`` and GridFS ``*.files``/``*.chunks``.
"""

import asyncio
import logging
import time
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from mongodb_session_manager import documents as docs

__all__ = ["MAX_PROBED_COLLECTIONS", "Namespaces", "UnknownNamespaceError", "split_namespace"]

logger = logging.getLogger(__name__)

MAX_PROBED_COLLECTIONS = 200
"""At most this many collections are probed per listing (in database and name order)."""

_CACHE_SECONDS = 30.0
_MIN_REFRESH_SECONDS = 2.0  # an unknown name re-reads the listing at most this often
_SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
_NEVER_SESSIONS = (".messages", ".files", ".chunks")


class UnknownNamespaceError(ValueError):
    """The requested collection is not one the viewer reads."""


def split_namespace(namespace: str) -> tuple[str, str]:
    """Split ``<database>.<collection>`` (a database name has no dot; a collection name may).

    Raises:
        UnknownNamespaceError: ``namespace`` has no dot, or an empty part.
    """
    database, _, collection = namespace.partition(".")
    if not database or not collection:
        raise UnknownNamespaceError(f"collection must be <database>.<collection>, not {namespace!r}")
    return database, collection


def _may_hold_sessions(collection: str) -> bool:
    """False for the collections the library or MongoDB keep beside the sessions."""
    return not collection.startswith("system.") and not collection.endswith(_NEVER_SESSIONS)


class Namespaces:
    """The namespaces a request may read, re-listed at most every 30 s (sooner when an unknown one is asked for)."""

    def __init__(self, default: str) -> None:
        """Start with only ``default`` (``<database>.<collection>``, always readable) known."""
        split_namespace(default)
        self.default = default
        self._listed: list[str] = [default]
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def listing(self, client: AsyncMongoClient[Any], refresh: bool = False) -> list[str]:
        """Return the default namespace first, then every other one that holds sessions, sorted."""
        if refresh or self._read_at is None or time.monotonic() - self._read_at > _CACHE_SECONDS:
            async with self._lock:
                found = await self._holding_sessions(client)
                self._listed = [self.default, *sorted(set(found) - {self.default})]
                self._read_at = time.monotonic()
                logger.debug("namespaces=<%s> | listed session collections", self._listed)
        return self._listed

    async def resolve(self, client: AsyncMongoClient[Any], requested: str | None) -> str:
        """Return the namespace a request reads: ``requested`` when it is listed, the default when absent.

        Raises:
            UnknownNamespaceError: ``requested`` is malformed or holds no sessions.
        """
        if not requested or requested == self.default:
            return self.default
        split_namespace(requested)
        if requested in await self.listing(client):
            return requested
        may_refresh = self._read_at is None or time.monotonic() - self._read_at > _MIN_REFRESH_SECONDS
        if may_refresh and requested in await self.listing(client, refresh=True):
            return requested
        raise UnknownNamespaceError(f"collection {requested!r} holds no sessions (see /api/v1/collections)")

    async def _holding_sessions(self, client: AsyncMongoClient[Any]) -> list[str]:
        try:
            databases = await client.list_database_names()
        except OperationFailure:  # a user without listDatabases: its own database only
            databases = [split_namespace(self.default)[0]]
        databases = sorted(name for name in databases if name not in _SYSTEM_DATABASES)
        names = await asyncio.gather(*(_collections(client, database) for database in databases))
        candidates = [
            f"{database}.{collection}"
            for database, collections in zip(databases, names, strict=True)
            for collection in sorted(collections)
            if _may_hold_sessions(collection)
        ][:MAX_PROBED_COLLECTIONS]
        probes = await asyncio.gather(*(_holds_sessions(client, namespace) for namespace in candidates))
        return [namespace for namespace, holds in zip(candidates, probes, strict=True) if holds]


async def _collections(client: AsyncMongoClient[Any], database: str) -> list[str]:
    """The collections (not views) of ``database``; none when the user may not list them."""
    try:
        return await client[database].list_collection_names(filter={"type": "collection"})
    except OperationFailure:
        return []


async def _holds_sessions(client: AsyncMongoClient[Any], namespace: str) -> bool:
    """Whether the first document of the collection is a session document (one read, two fields)."""
    database, collection = split_namespace(namespace)
    try:
        first = await client[database][collection].find_one({}, docs.SESSION_PROBE_PROJECTION)
    except OperationFailure:
        return False
    return docs.is_session_document(first)
