"""Encrypted sessions in the viewer: decrypt with the configured KMS access, or show what cannot be read.

The library encrypts chosen fields of a session in the application (`mongodb_session_manager.encryption`): the
database holds BSON binary subtype 6 ciphertext. The viewer decrypts them with the key access its settings give
(`Settings.encryption`). A value it cannot decrypt (no key access configured, a wrong master key, or the session's
keys erased) never fails the request: it becomes `Unreadable`, shown by the API as ``{"encrypted": "no_key" |
"key_erased", "label": "encrypted, no key" | "key erased"}`` in its place, so that the timeline still loads. Clear
fields (ids, timestamps, counters, metrics, roles, tool names in metrics) need no key.

Metadata filters: a field encrypted deterministically is found by equality through its ciphertext (the viewer
needs the key to compute it); a field encrypted randomly cannot be filtered on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient

from mongodb_session_manager import EncryptionKeyError, MongoDBSessionRepository, SessionKeyErasedError
from mongodb_session_manager import documents as docs
from mongodb_session_manager.encryption import EncryptionSettings, FieldCipher, is_encrypted, sealer_for
from mongodb_session_manager.errors import SessionDataError

from .queries import SearchParameterError

__all__ = [
    "DECRYPTED",
    "KEY_ERASED",
    "LABELS",
    "NOT_ENCRYPTED",
    "NO_KEY",
    "Revealer",
    "Unreadable",
    "ViewerEncryption",
    "api_value",
    "has_ciphertext",
]

logger = logging.getLogger(__name__)

NOT_ENCRYPTED = "none"
"""A session written without encryption."""
DECRYPTED = "decrypted"
"""An encrypted session the viewer decrypted."""
NO_KEY = "no_key"
"""Encrypted, and the viewer has no usable key: none configured, a wrong master key, no access to the KMS."""
KEY_ERASED = "key_erased"
"""Encrypted, and the session's data key was erased (``erase_session_keys``): nobody can decrypt it any more."""
LABELS = {NO_KEY: "encrypted, no key", KEY_ERASED: "key erased"}
"""What the viewer shows in place of a value it cannot decrypt."""

_KEY_UUID = slice(1, 17)
"""Where a ciphertext names its data key: after the one-byte blob subtype, the key's 16-byte UUID."""
_LOOKUP_ID = "<metadata values>"
"""The session id named in errors when decrypting values of many sessions (a field's distinct values)."""


@dataclass(frozen=True)
class Unreadable:
    """A ciphertext the viewer could not decrypt, in place of its value until the API shapes it (`api_value`)."""

    state: str

    def as_api(self) -> dict[str, str]:
        """The API's marker: ``{"encrypted": state, "label": text to show}``."""
        return {"encrypted": self.state, "label": LABELS[self.state]}


def api_value(value: Any) -> Any:
    """``value`` with every `Unreadable` inside it (dicts and lists walked) replaced by its API marker."""
    if isinstance(value, Unreadable):
        return value.as_api()
    if type(value) is dict:
        return {key: api_value(item) for key, item in value.items()}
    if type(value) is list:
        return [api_value(item) for item in value]
    return value


def has_ciphertext(value: Any) -> bool:
    """Whether a stored value (dicts and lists walked) holds a ciphertext."""
    if is_encrypted(value):
        return True
    if isinstance(value, Mapping):
        return any(has_ciphertext(item) for item in value.values())
    if isinstance(value, list):
        return any(has_ciphertext(item) for item in value)
    return False


class Revealer:
    """Decrypts the ciphertexts one request reads; one it cannot decrypt becomes `Unreadable`, never an error.

    A data key found unusable is not tried again for the request's other values (a session with erased keys
    costs one key-vault lookup per request, not one per message). Use one per request, from one thread at a time.
    """

    def __init__(self, cipher: FieldCipher) -> None:
        """Decrypt with ``cipher`` (the library's, on the viewer's key access; its sealer None: no key access)."""
        self.cipher = cipher
        self.unreadable: str | None = None
        """The state of the values it could not decrypt (`KEY_ERASED` wins over `NO_KEY`); None when none."""
        self._failed: dict[bytes, Unreadable] = {}
        self._revealing = _RevealingCipher(self)

    def open(self, session_id: str, value: Any) -> Any:
        """The stored form ``value`` holds when it is a ciphertext (or its `Unreadable`); anything else as it is.

        Raises:
            StorageUnavailableError: The key vault is unreachable (the request fails with 503).
        """
        if not is_encrypted(value):
            return value
        key = bytes(value[_KEY_UUID])
        failed = self._failed.get(key)
        if failed is not None:
            return failed
        try:
            return self.cipher.open(session_id, value)
        except SessionKeyErasedError:
            failed = Unreadable(KEY_ERASED)
        except EncryptionKeyError as error:
            logger.debug("session_id=<%s> | error=<%s> | encrypted value not readable", session_id, error)
            failed = Unreadable(NO_KEY)
        self._failed[key] = failed
        if self.unreadable != KEY_ERASED:
            self.unreadable = failed.state
        return failed

    def open_tree(self, session_id: str, value: Any) -> Any:
        """``value`` with every ciphertext inside it opened by `open` (the library's walk, `FieldCipher.open_tree`)."""
        return self._revealing.open_tree(session_id, value)

    def session_state(self, encrypted: bool) -> str:
        """What the viewer could do with a session: `NOT_ENCRYPTED`, `DECRYPTED`, `NO_KEY` or `KEY_ERASED`.

        Args:
            encrypted: Whether the session document has an ``encryption_key_id``.
        """
        if self.unreadable is not None:
            return self.unreadable
        if not encrypted:
            return NOT_ENCRYPTED
        return DECRYPTED if self.cipher.sealer is not None else NO_KEY

    def reader(self, client: MongoClient[Any], database_name: str, collection_name: str) -> MongoDBSessionRepository:
        """The library's reader of one collection that decrypts through this revealer (markers, not errors)."""
        return _RevealingRepository(self._revealing, client, database_name, collection_name)


class _RevealingCipher(FieldCipher):
    """The library's field cipher with its ``open`` (every reader's decryption) going through a `Revealer`."""

    def __init__(self, revealer: Revealer) -> None:
        super().__init__(revealer.cipher.sealer)
        self._revealer = revealer

    def open(self, session_id: str, value: Any) -> Any:
        """The revealer's `Revealer.open`: an `Unreadable` for a value it cannot decrypt."""
        return self._revealer.open(session_id, value)


class _RevealingRepository(MongoDBSessionRepository):
    """A read-only `MongoDBSessionRepository` whose readers decrypt through a `Revealer` (sends nothing when made)."""

    def __init__(
        self, cipher: _RevealingCipher, client: MongoClient[Any], database_name: str, collection_name: str
    ) -> None:
        sealer = cipher.sealer
        super().__init__(
            client=client,
            database_name=database_name,
            collection_name=collection_name,
            create_indexes=False,
            encryption=sealer.settings if sealer is not None else None,
        )
        self._cipher = cipher


class ViewerEncryption:
    """The viewer's key access (or none) and what it knows of the encrypted metadata fields; one per app."""

    def __init__(
        self,
        settings: EncryptionSettings | None,
        client: MongoClient[Any],
        deterministic_fields: Sequence[str] = (),
        random_fields: Sequence[str] = (),
    ) -> None:
        """Prepare the decryption (nothing is sent).

        Args:
            settings: The key access (None: the viewer holds no key and shows markers).
            client: The viewer's synchronous client (the key vault is read through it unless ``settings`` names
                another cluster).
            deterministic_fields: Metadata fields encrypted deterministically (used without ``settings``).
            random_fields: Metadata fields encrypted randomly (used without ``settings``).
        """
        self.settings = settings
        self.cipher = FieldCipher(sealer_for(client, settings) if settings is not None else None)
        self.deterministic_fields = frozenset(
            settings.deterministic_metadata_fields if settings else deterministic_fields
        )
        self.random_fields = frozenset(settings.random_metadata_fields if settings else random_fields)

    def revealer(self) -> Revealer:
        """A `Revealer` for one request."""
        return Revealer(self.cipher)

    def filter_error(self, field: str) -> str | None:
        """Why metadata field ``field`` cannot be filtered on; None when it can."""
        if field in self.random_fields:
            return f"{field!r} is encrypted randomly: it cannot be filtered on"
        if field in self.deterministic_fields and self.settings is None:
            return (
                f"{field!r} is encrypted: filtering on it needs the key (ENCRYPTION_LOCAL_KEY_FILE or "
                "ENCRYPTION_KMS_PROVIDERS_FILE)"
            )
        return None

    def check_filters(self, filters: Mapping[str, Any]) -> None:
        """Refuse filters on encrypted fields the viewer cannot filter on (nothing is sent).

        Raises:
            SearchParameterError: A field is encrypted randomly, or deterministically without the key.
        """
        for field in filters:
            problem = self.filter_error(field)
            if problem is not None:
                raise SearchParameterError(problem)

    def needs_encrypting(self, filters: Mapping[str, Any]) -> bool:
        """Whether a filter names a deterministically encrypted field (its value must be encrypted to match)."""
        return self.settings is not None and any(field in self.deterministic_fields for field in filters)

    def query_values(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        """The filters with each deterministically encrypted field's value as the values to match (one I/O each).

        Such a field becomes a list, ``[ciphertext, value]``: encrypted sessions store the ciphertext, sessions
        written before encryption was enabled the value itself (a mixed collection). Synchronous: call it in a
        worker thread.

        Raises:
            SearchParameterError: A value that deterministic encryption cannot take (a float, a boolean).
        """
        values: dict[str, Any] = {}
        for field, value in filters.items():
            if field not in self.deterministic_fields:
                values[field] = value
                continue
            stored = docs.encode_value(value)
            try:
                matches, ciphertext = self.cipher.metadata_query_value(field, stored)
            except SessionDataError as error:
                raise SearchParameterError(
                    f"{field!r} is encrypted deterministically: filter it with a string or an integer"
                ) from error
            values[field] = [ciphertext, stored] if matches else [stored]
        return values

    def open_values(self, values: list[Any]) -> list[Any]:
        """Distinct stored values of a metadata field, ciphertexts decrypted; those it cannot decrypt left out."""
        revealer = self.revealer()
        opened = [revealer.open(_LOOKUP_ID, value) for value in values]
        return [value for value in opened if not isinstance(value, Unreadable)]
