"""Client-side encryption of `MongoDBStorage` blobs: one data key per storage session, content words never indexed.

A blob is compressed (if asked), then encrypted (AEAD_AES_256_CBC_HMAC_SHA_512-Random) with the data key of the
*storage session* its key belongs to, and stored as BSON binary subtype 6 (in its document's ``data``, or as the
bytes of its GridFS file). The key's document also holds the data key's id in clear (``encryption_key_id``), the
mark of an encrypted blob. The key itself, its length, compression, expiry and the words of the key stay clear:
listing and key-based search need them. The words of the content are never stored: an encrypted entry is marked
``scan`` and `MongoDBStorage.search` decrypts and scores it in this process (the keyword strategy's way).

The storage session of a key (`storage_session`), on the key as stored (a view's prefix included):

* ``session/<session_id>/...`` (strands' `SnapshotSessionManager` on a storage, or on its ``namespace("session")``
  view): ``<session_id>``, so `MongoDBSessionRepository.erase_session_keys` and
  `MongoDBStorage.erase_session_keys` of that session id reach its snapshots;
* any other key: its first path segment (``memories/user-1.json`` -> ``memories``; ``notes.txt`` -> ``notes.txt``).

The data key's alt name is ``"storage:<storage session>"`` (`encryption.storage_key_alt_name`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bson.binary import Binary
from pymongo import MongoClient

from ..encryption import EncryptionSettings, _Sealer, is_encrypted, storage_key_alt_name
from ..errors import EncryptionKeyError

__all__ = ["SESSIONS_NAMESPACE", "BlobSealer", "storage_session"]

logger = logging.getLogger(__name__)

SESSIONS_NAMESPACE = "session"
"""The first key segment under which strands' ``SnapshotSessionManager`` keeps ``<session_id>/...``."""
_ENCRYPTED_SUBTYPE = 6


def storage_session(full_key: str) -> str:
    """The storage session of a stored key: the session id under ``session/``, else the key's first segment."""
    segments = full_key.split("/")
    if len(segments) > 2 and segments[0] == SESSIONS_NAMESPACE and segments[1]:
        return segments[1]
    return segments[0]


class BlobSealer:
    """Encrypts and decrypts the blobs of one `MongoDBStorage` (and its views); synchronous: run it in a thread.

    Its key vault client is a synchronous ``MongoClient`` with the storage's connection settings, opened on first
    use (libmongocrypt's ``ClientEncryption`` takes a synchronous client); its data-key ids are remembered per
    storage session, so a write costs no key-vault command once its session's key is known.
    """

    def __init__(self, settings: EncryptionSettings, client_arguments: dict[str, Any]) -> None:
        """Remember the settings and how to open the key vault client (nothing is connected)."""
        self.settings = settings
        self._client_arguments = client_arguments
        self._lock = threading.Lock()
        self._client: MongoClient[Any] | None = None
        self._sealer: _Sealer | None = None
        self._keys: dict[str, Binary] = {}

    def sealer(self) -> _Sealer:
        """The `encryption._Sealer` of this storage, built on first use."""
        with self._lock:
            if self._sealer is None:
                self._client = MongoClient(**self._client_arguments)
                self._sealer = _Sealer(self._client, self.settings)
            return self._sealer

    def seal(self, full_key: str, stored: bytes) -> tuple[Binary, Binary]:
        """Encrypt a blob as stored (compressed or not); return the ciphertext and the data key's id.

        The storage session's data key is created on its first write (or found, when another process made it).

        Raises:
            SessionKeyErasedError: The session's keys were erased (by this process, or its cached key is gone).
            EncryptionKeyError: The master key or the KMS cannot be used.
            StorageUnavailableError: The key vault is unreachable.
        """
        session = storage_session(full_key)
        sealer = self.sealer()
        sealer.check_not_erased(session)
        key_id = self._keys.get(session)
        if key_id is None:
            key_id, created = sealer.create_key(storage_key_alt_name(session), f"session_id=<{session}>")
            self._keys[session] = key_id
            logger.debug("session_id=<%s> | created=<%s> | storage data key ready", session, created)
        return sealer.encrypt(session, stored, key_id=key_id), key_id

    def open(self, full_key: str, ciphertext: bytes) -> bytes:
        """Decrypt a blob sealed by `seal` (the bytes of its binary subtype 6 value).

        Raises:
            SessionKeyErasedError: The session's keys were erased.
            EncryptionKeyError: The key cannot be used (wrong master key, no KMS access).
        """
        session = storage_session(full_key)
        sealer = self.sealer()
        sealer.check_not_erased(session)
        clear = sealer.decrypt(session, _ciphertext(ciphertext))
        if not isinstance(clear, bytes):
            raise EncryptionKeyError(f"session_id=<{session}> | key=<{full_key}> | the ciphertext holds no blob")
        return clear

    def erase(self, session_id: str) -> int:
        """Delete the session's data keys (``storage:`` and ``session:``); return how many were deleted."""
        deleted = self.sealer().erase(session_id)
        self._keys.pop(session_id, None)
        return deleted

    def close(self) -> None:
        """Release libmongocrypt's handle and close the key vault client."""
        with self._lock:
            sealer, client = self._sealer, self._client
            self._sealer = self._client = None
        if sealer is not None:
            sealer.close()
        if client is not None:
            client.close()


def _ciphertext(value: bytes) -> Binary:
    return value if is_encrypted(value) else Binary(bytes(value), _ENCRYPTED_SUBTYPE)  # type: ignore[return-value]


def missing_settings(full_key: str) -> EncryptionKeyError:
    """The error for an encrypted blob read by a storage without encryption settings."""
    return EncryptionKeyError(
        f"session_id=<{storage_session(full_key)}> | key=<{full_key}> | this blob is encrypted and this storage has "
        "no encryption settings: pass encryption=EncryptionSettings(...) with access to its key"
    )
