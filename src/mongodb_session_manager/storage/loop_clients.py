"""One ``AsyncMongoClient`` per event loop, closed when its loop ends.

An ``AsyncMongoClient`` is bound to the event loop it first runs on, while strands runs every synchronous
agent call (and every ``SnapshotSessionManager`` restore) in a fresh loop of its own. `LoopClients` hands each
running loop its own client, created on first use, and parks a small task on that loop whose cancellation
(``asyncio.run`` cancels the tasks left when its coroutine returns) closes the client on the loop it belongs to.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from strands.types.exceptions import StorageError

logger = logging.getLogger(__name__)

Client = AsyncMongoClient[dict[str, Any]]

_CLOSERS: set[asyncio.Task[None]] = set()


@dataclass
class _Entry:
    client: Client
    closer: asyncio.Task[None] | None  # None: the borrowed client itself, never closed by us


class LoopClients:
    """Gives each running event loop its own client: the borrowed one on its own loop, an owned one elsewhere."""

    def __init__(self, connection_string: str | None, borrowed: Client | None, options: dict[str, Any]) -> None:
        """Prepare clients for ``connection_string`` (owned) or around ``borrowed``.

        An owned client is built at once, unbound, so that a bad URI or option fails here; the first loop
        that asks for a client gets it.
        """
        self._connection_string = connection_string
        self._borrowed = borrowed
        self._options = options
        self._spare: Client | None = self._new_client() if borrowed is None else None
        self._entries: dict[asyncio.AbstractEventLoop, _Entry] = {}
        self._lock = threading.Lock()
        self.closed = False

    def current(self) -> Client:
        """Return the running loop's client, opening one on the first call from this loop.

        Raises:
            StorageError: The clients were closed.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.closed:
                raise StorageError("MongoDBStorage is closed")
            entry = self._entries.get(loop)
            if entry is None:
                for stale in [known for known in self._entries if known.is_closed()]:
                    del self._entries[stale]
                entry = self._entries[loop] = self._open(loop)
            return entry.client

    async def close(self) -> None:
        """Close every owned client: at once on the running loop, by cancelling its closer on the others."""
        running = asyncio.get_running_loop()
        with self._lock:
            self.closed = True
            entries, self._entries = self._entries, {}
            self._spare = None
        for loop, entry in entries.items():
            if entry.closer is None or loop.is_closed():
                continue
            if loop is running:
                entry.closer.cancel()
                await asyncio.gather(entry.closer, return_exceptions=True)
            else:
                loop.call_soon_threadsafe(entry.closer.cancel)

    def _open(self, loop: asyncio.AbstractEventLoop) -> _Entry:
        borrowed = self._borrowed
        if borrowed is not None and getattr(borrowed, "_loop", None) is loop:
            return _Entry(borrowed, None)
        client = self._spare if self._spare is not None else self._new_client()
        self._spare = None
        logger.debug("loop=<%s> | opened a MongoDB client for this event loop", id(loop))
        closer = loop.create_task(_close_when_cancelled(client))
        _CLOSERS.add(closer)  # the loop keeps only a weak reference: the closer must outlive a dropped storage
        closer.add_done_callback(_CLOSERS.discard)
        return _Entry(client, closer)

    def _new_client(self) -> Client:
        if self._borrowed is None:
            return AsyncMongoClient(self._connection_string, **self._options)
        duplicate = getattr(self._borrowed, "_duplicate", None)
        if duplicate is None:
            raise StorageError(
                "the borrowed AsyncMongoClient is bound to another event loop and this pymongo cannot copy it; "
                "give MongoDBStorage a connection_string instead"
            )
        client: Client = duplicate()
        return client


async def _close_when_cancelled(client: Client) -> None:
    """Wait until cancelled (the loop is ending or the storage closing), then close ``client``."""
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        await client.close()
