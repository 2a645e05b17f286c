"""``MongoDBStorage``: strands' unified ``Storage`` protocol on MongoDB, natively async."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from strands.storage.storage import _NAMESPACED, StorageSearchResult, _normalize_key, _normalize_prefix
from strands.types.exceptions import StorageError

from ..encryption import KEY_ID_FIELD, EncryptionSettings, is_encrypted, require_encryption_support
from ..errors import SessionException, SessionKeyErasedError
from ..manager import _check_keywords
from . import keyword_index
from .blobs import INLINE_LIMIT, BlobFiles, check_compression, pack, unpack
from .loop_clients import LoopClients
from .sealed_blobs import BlobSealer, missing_settings

if TYPE_CHECKING:
    from strands.storage.search.types import SearchStrategy

logger = logging.getLogger(__name__)

_READ_ATTEMPTS = 5
"""Reads of a GridFS blob that another writer keeps replacing before `read` gives up."""

_OFF_LOOP_BYTES = 1024 * 1024
"""Blobs from this size are compressed and tokenized in a worker thread, not on the event loop."""

_NO_DATA = {"terms": 0, "key_terms": 0}

_T = TypeVar("_T")


@dataclass
class _Collection:
    """What a storage and its namespaced views share: the clients, the collection and its settings."""

    clients: LoopClients
    database_name: str
    collection_name: str
    ttl: timedelta | None
    indexes_ready: bool = False
    sealer: BlobSealer | None = None


class MongoDBStorage:
    """Persists strands' storage blobs in a MongoDB collection, one document per key (``_id`` = key).

    Blobs beyond 15 MB (after compression) go to a GridFS bucket named after the collection; a reader never
    sees half of one: a replacement is uploaded under a fresh id first, then the key's document is pointed
    at it in one update, then the old file is deleted. ``search`` scores entries as strands' keyword
    strategy does, from indexes built at write time.

    Each event loop gets its own ``AsyncMongoClient`` (strands runs synchronous agent calls in fresh
    loops), closed when its loop ends.

    With ``encryption`` every blob is encrypted in this process with the data key of its storage session
    (``session/<session_id>/...`` keys: the session id; other keys: their first path segment), its content
    words are not indexed (``search`` decrypts and scans encrypted entries), and `erase_session_keys` makes a
    session's blobs unreadable. Keys, lengths and expiries stay clear.

    Example:
        ```python
        from strands.session import SnapshotSessionManager
        from mongodb_session_manager import MongoDBStorage

        storage = MongoDBStorage(database_name="agents")
        session = SnapshotSessionManager("my-session", storage=storage)
        ```
    """

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = "database_name",
        collection_name: str = "strands_storage",
        client: AsyncMongoClient[Any] | None = None,
        *,
        compress: Literal["zstd", "gzip"] | None = None,
        ttl: float | timedelta | None = None,
        search_strategy: SearchStrategy[MongoDBStorage] | None = None,
        encryption: EncryptionSettings | None = None,
        **client_options: Any,
    ) -> None:
        """Prepare the storage (no command is sent before the first operation).

        Args:
            connection_string: MongoDB URI. Without it and without ``client``, ``MONGODB_URI`` or the
                embedded development server is used.
            database_name: Database holding the collection.
            collection_name: Collection holding one document per key (and the GridFS bucket's prefix).
            client: An ``AsyncMongoClient`` to borrow; it is never closed by this storage. It serves the
                event loop it already runs on; other loops get clients of the same settings, owned here.
            compress: Compress blobs with ``"gzip"`` or ``"zstd"`` (the ``zstd`` extra). Blobs are read
                back whatever they were written with.
            ttl: Seconds (or a ``timedelta``) after its last write when a key expires: it is no longer read,
                listed or found at once, and a TTL index removes it within a minute or so.
            search_strategy: A strands search strategy: ``write`` indexes each entry with it and ``search``
                delegates to it instead of the built-in keyword index. It gets clear content, even with
                ``encryption``: whatever index it keeps holds it.
            encryption: Client-side field-level encryption of the blobs (the ``encryption`` extra): one data key
                per storage session in the key vault (alt name ``"storage:<session>"``), the key vault client
                opened with this storage's connection settings. Blobs written without it stay readable.
            **client_options: pymongo ``AsyncMongoClient`` options for owned clients (any case).

        Raises:
            TypeError: A keyword argument is not a pymongo client option, or ``encryption`` is not an
                `EncryptionSettings` (nothing is connected).
            ValueError: ``compress`` or ``ttl`` is invalid.
            ImportError: ``compress="zstd"`` without the zstandard package, or ``encryption`` without the
                ``encryption`` extra.
        """
        _check_keywords("MongoDBStorage", client_options, _PARAMETERS)
        check_compression(compress)
        if encryption is not None:
            if not isinstance(encryption, EncryptionSettings):
                raise TypeError(f"encryption must be an EncryptionSettings, not {type(encryption).__name__}")
            require_encryption_support()
        if client is not None and client_options:
            logger.warning("options=<%s> | client options ignored for a borrowed client", sorted(client_options))
        if client is None and connection_string is None:
            from ..embedded import default_connection_string

            connection_string = default_connection_string()
        options = {"tz_aware": True, **client_options}
        clients = LoopClients(connection_string, client, options)
        self._collection = _Collection(clients, database_name, collection_name, _ttl(ttl))
        if encryption is not None:
            arguments = {"host": connection_string, **options} if client is None else _client_arguments(client)
            self._collection.sealer = BlobSealer(encryption, arguments)
        self._compress = compress
        self._search_strategy = search_strategy
        self._prefix = ""

    async def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous value.

        Raises:
            StorageError: The key is invalid or the write failed (with ``encryption``: its cause is a
                `SessionKeyErasedError` when the key's session was erased, an `EncryptionKeyError` when the
                master key cannot be used).
        """
        normalized = _normalize_key(key)
        full_key = f"{self._prefix}{normalized}"
        blob = bytes(data)
        with _failures(f"Failed to write '{key}' to MongoDB"):
            collection, files = await self._handles(prepare=True)
            if self._collection.sealer is not None:  # key-vault I/O on a session's first write: off the loop
                document, large = await asyncio.to_thread(self._encode_sealed, self._collection.sealer, full_key, blob)
            else:
                document, large = await _cpu_bound(len(blob), self._encode, full_key, blob)
            expires_at = self._expires_at()
            if expires_at is not None:
                document["expires_at"] = expires_at
            if large is not None:
                document["file_id"] = await files.upload(full_key, large, expires_at)
            await self._replace(collection, files, document)
        if self._search_strategy is not None:
            try:
                await self._search_strategy.index(self, normalized, blob)
            except Exception as error:
                raise StorageError(f"Wrote '{key}' but indexing failed") from error

    async def read(self, key: str) -> bytes | None:
        """Return the bytes stored under ``key``, or None if there are none (or they expired).

        Raises:
            StorageError: The key is invalid or the read failed (an encrypted blob: its cause is a
                `SessionKeyErasedError` when its session was erased, an `EncryptionKeyError` when this storage
                has no ``encryption`` settings or cannot use the key).
        """
        full_key = f"{self._prefix}{_normalize_key(key)}"
        with _failures(f"Failed to read '{key}' from MongoDB"):
            collection, files = await self._handles()
            return await self._read(collection, files, full_key)

    async def delete(self, key: str) -> None:
        """Delete the value stored under ``key``; a no-op if there is none.

        Raises:
            StorageError: The key is invalid or the delete failed.
        """
        full_key = f"{self._prefix}{_normalize_key(key)}"
        with _failures(f"Failed to delete '{key}' from MongoDB"):
            collection, files = await self._handles()
            previous = await collection.find_one_and_delete({"_id": full_key}, projection={"file_id": 1})
            if previous is not None and previous.get("file_id") is not None:
                await files.remove(previous["file_id"])

    async def list(self, query: str = "") -> builtins.list[str]:
        """List the keys starting with ``query``, sorted; an empty query lists every key.

        One range scan of the ``_id`` index (``$gte`` the prefix, ``$lt`` the prefix with its last
        character incremented).

        Raises:
            StorageError: The prefix is invalid or the listing failed.
        """
        full_prefix = f"{self._prefix}{_normalize_prefix(query)}"
        with _failures(f"Failed to list keys with prefix '{query}' from MongoDB"):
            collection, _ = await self._handles()
            cursor = collection.find({**_key_range(full_prefix), **_unexpired()}, projection={"_id": 1})
            cursor = cursor.hint([("_id", ASCENDING)]).sort("_id", ASCENDING)
            return [document["_id"][len(self._prefix) :] async for document in cursor]

    async def search(self, query: str) -> builtins.list[StorageSearchResult]:
        """Find the entries matching ``query``, best first, with their bytes.

        Scores as strands' keyword strategy does (distinct query words, stop words left out, found in the
        key relative to this view, without its extension, or in the content), from indexes; ties in key order.
        Encrypted entries have no indexed content words: each one in the view is read, decrypted and scored
        here (those of an erased session are left out). With a ``search_strategy``, delegates to it.

        Raises:
            StorageError: The search failed.
        """
        if self._search_strategy is not None:
            return await self._search_strategy.search(self, query)
        terms = keyword_index.query_terms(query)
        if not terms:
            return []
        with _failures(f"Failed to search '{query}' in MongoDB"):
            collection, files = await self._handles()
            match = {**_key_range(self._prefix), **_unexpired()}
            cursor = await collection.aggregate(keyword_index.pipeline(terms, match, self._prefix.count("/")))
            results = [result async for result in self._scored(collection, files, terms, cursor)]
        results.sort(key=lambda result: (-result.score, result.key))
        return results

    def namespace(self, prefix: str) -> MongoDBStorage:
        """Return a view of this storage whose keys are relative to ``prefix``.

        The view shares this storage's clients and settings; its ``search`` only sees and scores keys under
        the prefix, relative to it.
        """
        normalized = _normalize_prefix(prefix).rstrip("/")
        scoped = copy.copy(self)
        scoped._prefix = f"{self._prefix}{normalized}/" if normalized else self._prefix
        scoped._namespaced = _NAMESPACED  # type: ignore[attr-defined]
        return scoped

    async def erase_session_keys(self, session_id: str) -> int:
        """Delete a session's data keys from the key vault: its encrypted blobs become unreadable for good.

        The keys `MongoDBSessionRepository.erase_session_keys` deletes (``"storage:<session_id>"`` and
        ``"session:<session_id>"``), in one command. The blobs stay (``list`` shows their keys; ``delete``
        removes them); reading one raises `StorageError` caused by `SessionKeyErasedError`, and so does a write
        to that session in this process. Idempotent.

        Returns:
            How many data keys were deleted.

        Raises:
            ValueError: This storage has no ``encryption`` settings.
            StorageError: The key vault is unreachable.
        """
        sealer = self._collection.sealer
        if sealer is None:
            raise ValueError("erase_session_keys needs a MongoDBStorage with encryption=EncryptionSettings(...)")
        with _failures(f"Failed to erase the keys of session '{session_id}'"):
            deleted = await asyncio.to_thread(sealer.erase, session_id)
        logger.debug("session_id=<%s> | keys=<%d> | storage session keys erased", session_id, deleted)
        return deleted

    async def close(self) -> None:
        """Close the clients this storage opened (a borrowed client stays open); for it and all its views."""
        await self._collection.clients.close()
        if self._collection.sealer is not None:
            self._collection.sealer.close()

    async def __aenter__(self) -> MongoDBStorage:
        """Return the storage itself."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close on leaving the ``async with`` block."""
        await self.close()

    async def _handles(self, prepare: bool = False) -> tuple[AsyncCollection[dict[str, Any]], BlobFiles]:
        """Return the running loop's collection and GridFS bucket; with ``prepare``, create indexes once."""
        shared = self._collection
        database = shared.clients.current()[shared.database_name]
        collection = database[shared.collection_name]
        files = BlobFiles(database, shared.collection_name)
        if prepare and not shared.indexes_ready:
            await collection.create_indexes(keyword_index.INDEXES + _ttl_indexes(shared.ttl, "expires_at"))
            if shared.ttl is not None:
                await files.files.create_indexes(_ttl_indexes(shared.ttl, "metadata.expires_at"))
                await files.chunks.create_indexes(_ttl_indexes(shared.ttl, "expires_at"))
            shared.indexes_ready = True
        return collection, files

    def _encode(self, full_key: str, blob: bytes) -> tuple[dict[str, Any], bytes | None]:
        """Return the key's document and, for a blob too big to live in it, the bytes to put in GridFS."""
        stored, compression = pack(blob, self._compress)
        document: dict[str, Any] = {"_id": full_key, "length": len(blob)}
        if compression is not None:
            document["compression"] = compression
        if len(stored) > INLINE_LIMIT:
            document.update(keyword_index.document_fields(full_key, None))
            return document, stored
        document["data"] = stored
        document.update(keyword_index.document_fields(full_key, blob))
        return document, None

    def _encode_sealed(self, sealer: BlobSealer, full_key: str, blob: bytes) -> tuple[dict[str, Any], bytes | None]:
        """`_encode` for an encrypted blob: compressed, then encrypted; key words only (the entry is scanned)."""
        stored, compression = pack(blob, self._compress)
        ciphertext, key_id = sealer.seal(full_key, stored)
        document: dict[str, Any] = {"_id": full_key, "length": len(blob), KEY_ID_FIELD: key_id}
        if compression is not None:
            document["compression"] = compression
        document.update(keyword_index.document_fields(full_key, None))
        if len(ciphertext) > INLINE_LIMIT:
            return document, bytes(ciphertext)
        document["data"] = ciphertext
        return document, None

    async def _replace(
        self, collection: AsyncCollection[dict[str, Any]], files: BlobFiles, document: dict[str, Any]
    ) -> None:
        """Make ``document`` the key's value in one command, then delete the GridFS file it replaced."""
        try:
            try:
                previous = await collection.find_one_and_replace(
                    {"_id": document["_id"]},
                    document,
                    projection={"file_id": 1},
                    upsert=True,
                    return_document=ReturnDocument.BEFORE,
                )
            except DuplicateKeyError:  # a concurrent writer inserted the key first: replace its value
                previous = await collection.find_one_and_replace(
                    {"_id": document["_id"]}, document, projection={"file_id": 1}, upsert=True
                )
        except Exception:
            if "file_id" in document:
                await files.remove(document["file_id"])
            raise
        if previous is not None and previous.get("file_id") is not None:
            await files.remove(previous["file_id"])

    async def _read(self, collection: AsyncCollection[dict[str, Any]], files: BlobFiles, full_key: str) -> bytes | None:
        """Read a key's document, then its GridFS file if it has one, again if a writer replaced it meanwhile."""
        for _ in range(_READ_ATTEMPTS):
            document = await collection.find_one({"_id": full_key, **_unexpired()}, projection=_NO_DATA)
            if document is None:
                return None
            blob = await self._blob(files, document)
            if blob is not None:
                return blob
        raise StorageError(f"'{full_key}' was replaced {_READ_ATTEMPTS} times while being read")

    async def _blob(self, files: BlobFiles, document: dict[str, Any]) -> bytes | None:
        """Return the blob of a key's document; None if its GridFS file was replaced before it was read."""
        file_id = document.get("file_id")
        stored = bytes(document["data"]) if file_id is None else await files.download(file_id)
        if stored is None:
            return None
        if document.get(KEY_ID_FIELD) is not None or is_encrypted(document.get("data")):
            blob = await asyncio.to_thread(self._open_sealed, document["_id"], stored, document.get("compression"))
        else:
            blob = await _cpu_bound(len(stored), unpack, stored, document.get("compression"))
        if len(blob) != document.get("length", len(blob)):
            raise StorageError(f"'{document['_id']}' holds {len(blob)} bytes, not the {document['length']} written")
        return blob

    def _open_sealed(self, full_key: str, stored: bytes, compression: str | None) -> bytes:
        """Decrypt, then decompress, an encrypted blob (in a worker thread: the key vault may be asked)."""
        sealer = self._collection.sealer
        if sealer is None:
            raise missing_settings(full_key)
        return unpack(sealer.open(full_key, stored), compression)

    async def _scored(self, collection: Any, files: BlobFiles, terms: builtins.list[str], cursor: Any) -> Any:
        """Yield a search result for each scoring document of the aggregation ``cursor``."""
        async for document in cursor:
            key = document["_id"][len(self._prefix) :]
            try:
                if "file_id" in document:
                    blob = await self._read(collection, files, document["_id"])
                else:
                    blob = await self._blob(files, document)
            except SessionKeyErasedError:  # crypto-shredded: as good as deleted
                logger.debug("key=<%s> | search left out an entry whose session keys were erased", document["_id"])
                continue
            if blob is None:
                continue
            score = keyword_index.scan_score(terms, key, blob) if document.get("scan") else document["score"]
            if score > 0:
                yield StorageSearchResult(key=key, score=float(score), data=blob)

    def _expires_at(self) -> datetime | None:
        ttl = self._collection.ttl
        return None if ttl is None else datetime.now(UTC) + ttl


async def _cpu_bound(size: int, function: Callable[..., _T], *args: Any) -> _T:
    """Run ``function`` (compression, tokenizing) in a worker thread for blobs big enough to stall the loop."""
    if size < _OFF_LOOP_BYTES:
        return function(*args)
    return await asyncio.to_thread(function, *args)


_PARAMETERS = frozenset(inspect.signature(MongoDBStorage.__init__).parameters) - {"self", "client_options"}


@contextlib.contextmanager
def _failures(message: str) -> Iterator[None]:
    """Raise every failure inside the block as a `StorageError` with ``message`` (chained to the cause).

    The package's own errors (an erased key, a missing master key) add their message to it.
    """
    try:
        yield
    except StorageError:
        raise
    except SessionException as error:
        raise StorageError(f"{message}: {error}") from error
    except Exception as error:
        raise StorageError(message) from error


def _client_arguments(client: AsyncMongoClient[Any]) -> dict[str, Any]:
    """The arguments a borrowed ``AsyncMongoClient`` was built with: its key vault client is built alike."""
    arguments = getattr(client, "_init_kwargs", None)
    if not isinstance(arguments, dict):
        raise TypeError(
            "encryption with a borrowed client needs a pymongo AsyncMongoClient; "
            "give MongoDBStorage a connection_string"
        )
    return dict(arguments)


def _key_range(prefix: str) -> dict[str, Any]:
    """Return the ``_id`` filter of the keys starting with ``prefix`` (none for an empty prefix)."""
    if not prefix:
        return {}
    stem = prefix
    while stem:
        code = ord(stem[-1]) + 1
        if code == 0xD800:  # surrogates cannot be stored: the next character is U+E000
            code = 0xE000
        if code <= 0x10FFFF:
            return {"_id": {"$gte": prefix, "$lt": stem[:-1] + chr(code)}}
        stem = stem[:-1]
    return {"_id": {"$gte": prefix}}


def _unexpired() -> dict[str, Any]:
    """Return the filter leaving out documents whose ``expires_at`` has passed (the TTL index may lag)."""
    return {"expires_at": {"$not": {"$lte": datetime.now(UTC)}}}


def _ttl(ttl: float | timedelta | None) -> timedelta | None:
    if ttl is None:
        return None
    delta = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    if delta <= timedelta(0):
        raise ValueError(f"ttl must be a positive number of seconds or timedelta, not {ttl!r}")
    return delta


def _ttl_indexes(ttl: timedelta | None, field: str) -> builtins.list[IndexModel]:
    if ttl is None:
        return []
    return [IndexModel([(field, ASCENDING)], name="expires_at", expireAfterSeconds=0)]
