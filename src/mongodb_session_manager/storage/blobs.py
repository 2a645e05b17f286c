"""Blob encoding (optional gzip or zstd compression) and the GridFS files that hold blobs too big for a document."""

from __future__ import annotations

import contextlib
import gzip
import importlib
import logging
from datetime import datetime
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import CorruptGridFile, NoFile
from pymongo.asynchronous.database import AsyncDatabase

logger = logging.getLogger(__name__)

COMPRESSIONS = ("gzip", "zstd")

INLINE_LIMIT = 15 * 1024 * 1024
"""Stored (compressed) blobs up to this size live in their key's document; larger ones in GridFS.

It leaves a megabyte of MongoDB's 16 MB document limit for the key and its search terms.
"""

_ZSTD_MISSING = 'compress="zstd" needs the zstandard package: pip install "mongodb-session-manager[zstd]"'


def check_compression(compress: str | None) -> None:
    """Refuse an unknown algorithm, or zstd without the zstandard package.

    Raises:
        ValueError: ``compress`` is not None, ``"gzip"`` or ``"zstd"``.
        ImportError: ``compress`` is ``"zstd"`` and zstandard is not installed.
    """
    if compress is not None and compress not in COMPRESSIONS:
        raise ValueError(f"compress must be one of {COMPRESSIONS} or None, not {compress!r}")
    if compress == "zstd":
        _zstandard()


def pack(data: bytes, compress: str | None) -> tuple[bytes, str | None]:
    """Return the bytes to store and the algorithm they are compressed with (None: stored as given).

    A blob that compression would not make smaller is stored as given.
    """
    if compress is None:
        return data, None
    packed = gzip.compress(data, mtime=0) if compress == "gzip" else _zstandard().ZstdCompressor().compress(data)
    return (packed, compress) if len(packed) < len(data) else (data, None)


def unpack(stored: bytes, compression: str | None) -> bytes:
    """Return the blob stored as ``stored`` with ``compression`` (as `pack` recorded it)."""
    if compression is None:
        return stored
    if compression == "gzip":
        return gzip.decompress(stored)
    if compression == "zstd":
        return bytes(_zstandard().ZstdDecompressor().decompress(stored))
    raise ValueError(f"unknown compression {compression!r}")


def _zstandard() -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError as error:
        raise ImportError(_ZSTD_MISSING) from error


class BlobFiles:
    """The GridFS bucket of one storage collection (named after it)."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]], bucket_name: str) -> None:
        """Address ``<bucket_name>.files`` and ``<bucket_name>.chunks`` in ``database``."""
        self._bucket = AsyncGridFSBucket(database, bucket_name=bucket_name)
        self.chunks = database[f"{bucket_name}.chunks"]
        self.files = database[f"{bucket_name}.files"]

    async def upload(self, key: str, stored: bytes, expires_at: datetime | None) -> ObjectId:
        """Write ``stored`` as a new file under a fresh id and return the id.

        With ``expires_at`` the file and its chunks carry it too, so their TTL indexes remove them with the key.
        """
        file_id = ObjectId()
        metadata: dict[str, Any] = {"key": key}
        if expires_at is not None:
            metadata["expires_at"] = expires_at
        await self._bucket.upload_from_stream_with_id(file_id, key, stored, metadata=metadata)
        if expires_at is not None:
            await self.chunks.update_many({"files_id": file_id}, {"$set": {"expires_at": expires_at}})
        logger.debug("key=<%s>, file_id=<%s>, bytes=<%d> | wrote blob to gridfs", key, file_id, len(stored))
        return file_id

    async def download(self, file_id: ObjectId) -> bytes | None:
        """Return the file's bytes, or None if it was deleted before or while it was read."""
        try:
            stream = await self._bucket.open_download_stream(file_id)
            return bytes(await stream.read())
        except (NoFile, CorruptGridFile):
            logger.debug("file_id=<%s> | gridfs file replaced while reading", file_id)
            return None

    async def remove(self, file_id: ObjectId) -> None:
        """Delete the file; a no-op if it is already gone."""
        with contextlib.suppress(NoFile):
            await self._bucket.delete(file_id)
