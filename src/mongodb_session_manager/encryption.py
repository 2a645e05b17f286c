"""Client-side field-level encryption of sessions: settings, one data key per session, the field cipher.

Explicit encryption through pymongo's ``ClientEncryption`` (the ``encryption`` extra: ``pymongo[encryption]``,
whose ``pymongocrypt`` wheels bundle libmongocrypt): values are encrypted in this process before they are
sent and decrypted after they are read, so MongoDB, its backups and anyone reading the collections see
BSON binary subtype 6 ciphertext. It works with any server (no ``mongocryptd``, no automatic encryption).

Keys: every encrypted session gets its own data key in the key vault (``EncryptionSettings.key_vault_namespace``)
when it is created, with the key alt name ``"session:<session_id>"``; its id is stored in clear at the top of
the session document as ``encryption_key_id``. `MongoDBSessionRepository.erase_session_keys` deletes it, after
which the session's encrypted fields are unreadable everywhere, backups included (crypto-shredding). Metadata
fields encrypted deterministically (equality-queryable) use one data key per field shared by all sessions,
``"metadata:<field>"``: equal values must encrypt equally across sessions for a query to find them.

What is encrypted (AEAD_AES_256_CBC_HMAC_SHA_512-Random unless said): each message's ``message.content`` (the
``role`` stays clear) and ``redact_message``, in both layouts and in GridFS; an agent's ``state``,
``conversation_manager_state``, ``_internal_state`` and ``system_prompt``; multi-agent ``state``; each feedback
entry's ``comment``; the Session Viewer password; the configured metadata fields (deterministically for
``deterministic_metadata_fields``). Ids, timestamps, counters, metrics, layout markers, ``model``,
``prompt_metadata``, ``application_name`` and everything indexes and TTL need stay clear.

A value is encrypted as the value codec's form (`documents.encode_value`) wrapped in ``{"v": value}``, so that
scalars, ``None`` and documents are encrypted alike; a deterministic value is encrypted bare (deterministic
encryption takes strings, ints, dates, binaries and object ids only).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import math
import os
import secrets
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson.binary import Binary
from bson.errors import BSONError
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from . import documents as docs
from .errors import (
    EncryptionKeyError,
    SessionDataError,
    SessionException,
    SessionKeyErasedError,
    StorageUnavailableError,
)

if TYPE_CHECKING:
    from pymongo.encryption import ClientEncryption

__all__ = [
    "DEFAULT_KEY_VAULT_NAMESPACE",
    "KEY_ID_FIELD",
    "LOCAL_KEY_BYTES",
    "EncryptionSettings",
    "generate_local_key",
    "is_encrypted",
    "load_local_key",
    "save_local_key",
    "session_key_alt_name",
    "storage_key_alt_name",
]

logger = logging.getLogger(__name__)

DEFAULT_KEY_VAULT_NAMESPACE = "encryption.__keyVault"
"""The key vault (``<database>.<collection>``) of `EncryptionSettings` unless told otherwise: MongoDB's usual name."""
LOCAL_KEY_BYTES = 96
"""The length of a ``local`` KMS master key (libmongocrypt's requirement)."""
KEY_ID_FIELD = "encryption_key_id"
"""Top-level field of an encrypted session's document: the id (UUID, BSON binary subtype 4) of its data key."""
KMS_PROVIDERS = ("local", "aws", "azure", "gcp", "kmip")
"""The KMS provider types pymongo supports; a named provider is ``"<type>:<name>"`` (``"aws:eu"``)."""

RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
_ENCRYPTED_SUBTYPE = 6
_MISSING_KEY = "not all keys requested were satisfied"
_INVALID_TYPE = "BSON type invalid"
_INDEX_CONFLICT_CODES = {85, 86}
AGENT_SEALED_FIELDS = ("state", "conversation_manager_state", "_internal_state", "system_prompt")
_MESSAGE_FIELDS = ("message", "redact_message")
_EXTRA = "mongodb-session-manager[encryption]"


def session_key_alt_name(session_id: str) -> str:
    """The key alt name of a session's data key in the key vault."""
    return f"session:{session_id}"


def storage_key_alt_name(session_id: str) -> str:
    """The key alt name of the data key ``MongoDBStorage`` uses for a session's blobs (erased with the session's)."""
    return f"storage:{session_id}"


def metadata_key_alt_name(field_name: str) -> str:
    """The key alt name of the data key shared by every session for one deterministically encrypted metadata field."""
    return f"metadata:{field_name}"


def is_encrypted(value: Any) -> bool:
    """Whether ``value`` is a ciphertext of client-side field-level encryption (BSON binary subtype 6)."""
    return isinstance(value, Binary) and value.subtype == _ENCRYPTED_SUBTYPE


def generate_local_key() -> bytes:
    """Return a new random master key for the ``local`` KMS provider (96 bytes from ``secrets``).

    Keep it outside the database (a file readable by the application only, a secret manager): whoever holds
    it and the key vault can read every encrypted session; losing it loses them all.
    """
    return secrets.token_bytes(LOCAL_KEY_BYTES)


def save_local_key(path: str | os.PathLike[str], key: bytes) -> Path:
    """Write a ``local`` master key to a new file readable and writable by its owner only (mode 0600).

    Raises:
        ValueError: ``key`` is not 96 bytes.
        FileExistsError: The file exists (a key is never overwritten).
    """
    _check_local_key("key", key)
    target = Path(path)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key)
    return target


def load_local_key(path: str | os.PathLike[str]) -> bytes:
    """Read a ``local`` master key written by `save_local_key` (96 raw bytes).

    Raises:
        ValueError: The file does not hold exactly 96 bytes.
    """
    key = Path(path).read_bytes()
    _check_local_key(str(path), key)
    return key


def _check_local_key(where: str, key: Any) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != LOCAL_KEY_BYTES:
        size = f"{len(key)} bytes" if isinstance(key, bytes | bytearray) else type(key).__name__
        raise ValueError(f"{where} | a local master key must be {LOCAL_KEY_BYTES} bytes, not {size}")


@dataclass(frozen=True)
class EncryptionSettings:
    """How sessions are encrypted: the KMS that wraps the data keys, the key vault, and the encrypted metadata.

    Give it as ``encryption=`` to `MongoDBSessionRepository`, `MongoDBSessionManager`,
    `create_mongodb_session_manager`, `MongoDBSessionManagerFactory` or `initialize_global_factory` (it needs the
    ``encryption`` extra). Validated when built; the key material never appears in its ``repr``.

    Attributes:
        kms_providers: pymongo's ``kms_providers``: ``{"local": {"key": <96 bytes>}}`` for development (see
            `local` and `generate_local_key`), or ``"aws"``/``"azure"``/``"gcp"``/``"kmip"`` credentials
            (``"aws:<name>"`` for a named one).
        key_vault_namespace: ``"<database>.<collection>"`` of the key vault holding the data keys.
        kms_provider: The provider (a key of ``kms_providers``) that wraps each new session's data key.
        master_key: pymongo's ``master_key`` for that provider (``{"region", "key"}`` for AWS, ...); None for
            ``local``.
        deterministic_metadata_fields: Metadata fields encrypted deterministically: ``list_sessions(metadata=
            {field: value})`` still finds them by equality. Values must be strings, ints, dates or bytes.
        random_metadata_fields: Metadata fields encrypted randomly (not queryable).
        key_vault_uri: A MongoDB URI for a key vault on another cluster; default: the sessions' client.
        key_cache_seconds: How long a process keeps a data key it fetched (libmongocrypt's cache; pymongo
            4.11+): an erased key stays usable that long in processes that had it.
    """

    kms_providers: Mapping[str, Mapping[str, Any]] = field(repr=False)
    key_vault_namespace: str = DEFAULT_KEY_VAULT_NAMESPACE
    kms_provider: str = "local"
    master_key: Mapping[str, Any] | None = field(default=None, repr=False)
    deterministic_metadata_fields: Sequence[str] = ()
    random_metadata_fields: Sequence[str] = ()
    key_vault_uri: str | None = field(default=None, repr=False)
    key_cache_seconds: float = 60

    def __post_init__(self) -> None:
        """Check every setting and freeze the field lists into tuples.

        Raises:
            TypeError: A setting has the wrong type (a bare string for a field list, for example).
            ValueError: An unknown KMS provider, a provider without credentials, a local key that is not 96
                bytes, a key vault namespace that is not ``<database>.<collection>``, a metadata field in both
                lists (or inside another encrypted field), or a cache time that is not a positive number.
        """
        _check_kms(self.kms_providers, self.kms_provider, self.master_key)
        _check_namespace(self.key_vault_namespace)
        deterministic = _field_list("deterministic_metadata_fields", self.deterministic_metadata_fields)
        random_fields = _field_list("random_metadata_fields", self.random_metadata_fields)
        _check_disjoint(deterministic, random_fields)
        if self.key_vault_uri is not None and not isinstance(self.key_vault_uri, str):
            raise TypeError(f"key_vault_uri must be a MongoDB URI string, not {type(self.key_vault_uri).__name__}")
        seconds = self.key_cache_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds < math.inf:
            raise ValueError(f"key_cache_seconds=<{seconds!r}> | key_cache_seconds must be a positive number")
        object.__setattr__(self, "deterministic_metadata_fields", deterministic)
        object.__setattr__(self, "random_metadata_fields", random_fields)

    @classmethod
    def local(cls, key: bytes, **options: Any) -> EncryptionSettings:
        """Settings with a ``local`` master key (96 bytes; `generate_local_key`), for development and tests.

        Args:
            key: The master key.
            **options: Any other field (``key_vault_namespace``, ``deterministic_metadata_fields``, ...).
        """
        return cls(kms_providers={"local": {"key": key}}, kms_provider="local", **options)

    def _fingerprint(self) -> bytes:
        """A digest of every setting: equal settings share one `_Sealer` (and one key cache) per client."""
        canonical = repr(_canonical(tuple(getattr(self, name) for name in self.__dataclass_fields__)))
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), _canonical(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_canonical(item) for item in value)
    return value


def _check_kms(providers: Any, provider: Any, master_key: Any) -> None:
    if not isinstance(providers, Mapping) or not providers:
        raise TypeError("kms_providers must be a non-empty dict such as {'local': {'key': <96 bytes>}}")
    for name, credentials in providers.items():
        kind = str(name).partition(":")[0]
        if not isinstance(name, str) or kind not in KMS_PROVIDERS:
            raise ValueError(f"kms_provider=<{name!r}> | unknown KMS provider; expected one of {list(KMS_PROVIDERS)}")
        if not isinstance(credentials, Mapping):
            raise TypeError(f"kms_provider=<{name}> | its settings must be a dict, not {type(credentials).__name__}")
        if kind == "local":
            _check_local_key(f"kms_provider=<{name}>", credentials.get("key"))
    if provider not in providers:
        raise ValueError(f"kms_provider=<{provider!r}> | must be one of the kms_providers ({sorted(providers)})")
    kind = str(provider).partition(":")[0]
    if kind == "local" and master_key is not None:
        raise ValueError(f"kms_provider=<{provider}> | a local provider takes no master_key")
    if kind in ("aws", "azure", "gcp") and not isinstance(master_key, Mapping):
        raise ValueError(f"kms_provider=<{provider}> | master_key (the KMS key to wrap data keys with) is required")
    if master_key is not None and not isinstance(master_key, Mapping):
        raise TypeError(f"master_key must be a dict, not {type(master_key).__name__}")


def _check_namespace(namespace: Any) -> None:
    if not isinstance(namespace, str):
        raise TypeError(f"key_vault_namespace must be a string, not {type(namespace).__name__}")
    database, dot, collection = namespace.partition(".")
    if not dot or not database or not collection or "$" in namespace or "\x00" in namespace or " " in database:
        raise ValueError(f"key_vault_namespace=<{namespace!r}> | expected '<database>.<collection>'")


def _field_list(name: str, fields: Any) -> tuple[str, ...]:
    if isinstance(fields, str) or not isinstance(fields, Sequence | set | frozenset):
        raise TypeError(f"{name} must be a list of metadata field names, not {type(fields).__name__}")
    try:
        return tuple(docs.validate_metadata_key(key) for key in fields)
    except ValueError as error:
        raise ValueError(f"{name} | {error}") from error


def _check_disjoint(deterministic: tuple[str, ...], random_fields: tuple[str, ...]) -> None:
    everything = [*deterministic, *random_fields]
    for position, first in enumerate(everything):
        for other, second in enumerate(everything):
            if position != other and (first == second or second.startswith(f"{first}.")):
                raise ValueError(
                    f"metadata fields {first!r} and {second!r} overlap: a field is encrypted one way, whole, "
                    "and cannot be in both lists or inside another encrypted field"
                )


def require_encryption_support() -> None:
    """Check that pymongo's encryption support (``pymongocrypt``) is installed.

    Raises:
        ImportError: It is not: install the ``encryption`` extra.
    """
    try:
        import pymongocrypt  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"encryption= needs pymongo's encryption support: pip install '{_EXTRA}' (or uv add '{_EXTRA}')"
        ) from error


# ----------------------------------------------------------------- the sealer: one ClientEncryption per process


class _Sealer:
    """One ``ClientEncryption`` (and so one data-key cache) per sessions client and settings, built on first use."""

    def __init__(self, client: MongoClient[Any], settings: EncryptionSettings) -> None:
        self.settings = settings
        self._client = client
        self._codec_options = client.codec_options
        self._lock = threading.Lock()
        self._encryption: ClientEncryption[Any] | None = None
        self._key_vault_client: MongoClient[Any] | None = None
        self._owns_key_vault_client = settings.key_vault_uri is not None
        self._indexed = False
        self._vault_name = (settings.key_vault_uri or "", settings.key_vault_namespace)

    @property
    def key_vault(self) -> Any:
        """The key vault collection."""
        database, _, collection = self.settings.key_vault_namespace.partition(".")
        return self._vault_client()[database][collection]

    def _vault_client(self) -> MongoClient[Any]:
        with self._lock:
            if self._key_vault_client is None:
                uri = self.settings.key_vault_uri
                self._key_vault_client = MongoClient(uri, tz_aware=True) if uri is not None else self._client
            return self._key_vault_client

    def client_encryption(self) -> ClientEncryption[Any]:
        """The ``ClientEncryption``, built on first use (no I/O)."""
        if self._encryption is None:
            from pymongo.encryption import ClientEncryption

            vault_client = self._vault_client()
            options: dict[str, Any] = {}
            if "key_expiration_ms" in inspect.signature(ClientEncryption.__init__).parameters:
                options["key_expiration_ms"] = max(1, round(self.settings.key_cache_seconds * 1000))
            providers = {name: dict(credentials) for name, credentials in self.settings.kms_providers.items()}
            with self._lock:
                if self._encryption is None:
                    self._encryption = ClientEncryption(
                        providers, self.settings.key_vault_namespace, vault_client, self._codec_options, **options
                    )
        return self._encryption

    def close(self) -> None:
        """Release libmongocrypt's handle and a key vault client of its own."""
        if self._encryption is not None:
            self._encryption.close()
        if self._owns_key_vault_client and self._key_vault_client is not None:
            self._key_vault_client.close()

    # ----------------------------------------------------------------- keys

    def create_key(self, alt_name: str, where: str) -> tuple[Binary, bool]:
        """Create a data key named ``alt_name``, or find the one that exists; return its id and whether it is new.

        The first creation in the process makes sure the key vault has its unique index on ``keyAltNames``.
        """
        from pymongo.errors import EncryptionError

        self._ensure_key_vault_index(where)
        encryption = self.client_encryption()
        master_key = dict(self.settings.master_key) if self.settings.master_key is not None else None
        try:
            key_id = encryption.create_data_key(
                self.settings.kms_provider, master_key=master_key, key_alt_names=[alt_name]
            )
            return key_id, True
        except EncryptionError as error:
            if not isinstance(error.cause, DuplicateKeyError):
                raise _key_error(error, where, self.settings) from error
        with _storage_errors(where):
            existing = self.key_vault.find_one({"keyAltNames": alt_name}, {"_id": 1})
        if existing is None:  # deleted between the two commands: make a new one
            return self.create_key(alt_name, where)
        return existing["_id"], False

    def _ensure_key_vault_index(self, where: str) -> None:
        """Create the unique, partial index on ``keyAltNames`` MongoDB's documentation recommends, once."""
        if self._indexed:
            return
        with _storage_errors(where):
            try:
                self.key_vault.create_index(
                    "keyAltNames",
                    unique=True,
                    partialFilterExpression={"keyAltNames": {"$exists": True}},
                    name="keyAltNames_1",
                )
            except OperationFailure as error:  # an index on keyAltNames exists with other options: keep it
                if error.code not in _INDEX_CONFLICT_CODES:
                    raise
        self._indexed = True

    def erase(self, session_id: str) -> int:
        """Delete the session's data keys (its own and ``MongoDBStorage``'s) in one command; return how many."""
        names = [session_key_alt_name(session_id), storage_key_alt_name(session_id)]
        with _storage_errors(f"session_id=<{session_id}>"):
            deleted = self.key_vault.delete_many({"keyAltNames": {"$in": names}}).deleted_count
        with _sealers_lock:
            _erased.add((*self._vault_name, session_id))
        return int(deleted)

    def recreated(self, session_id: str) -> None:
        """Forget that this process erased a session's keys (the session was created again, with a new key)."""
        with _sealers_lock:
            _erased.discard((*self._vault_name, session_id))

    def check_not_erased(self, session_id: str) -> None:
        """Refuse a session whose keys this process erased.

        Raises:
            SessionKeyErasedError: It did.
        """
        if _erased and (*self._vault_name, session_id) in _erased:
            raise SessionKeyErasedError(
                f"session_id=<{session_id}> | the session's data key was erased (erase_session_keys): "
                "its encrypted fields can no longer be read or written"
            )

    # ----------------------------------------------------------------- values

    def encrypt(self, session_id: str, value: Any, key_id: Binary | None = None, alt_name: str | None = None) -> Binary:
        """Encrypt a value: randomly with the key ``key_id``, or deterministically with the key ``alt_name``."""
        from pymongo.errors import EncryptionError

        where = f"session_id=<{session_id}>"
        try:
            if key_id is not None:
                return self.client_encryption().encrypt({"v": value}, RANDOM, key_id=key_id)
            return self.client_encryption().encrypt(value, DETERMINISTIC, key_alt_name=alt_name)
        except EncryptionError as error:
            if _INVALID_TYPE in str(error):
                raise SessionDataError(
                    f"{where} | a deterministically encrypted metadata value must be a string, an int, a date or "
                    f"bytes, not {type(value).__name__}"
                ) from error
            raise _key_error(error, where, self.settings) from error
        except (BSONError, OverflowError, TypeError, ValueError) as error:
            raise SessionDataError(f"{where} | value cannot be stored in MongoDB: {error}") from error

    def decrypt(self, session_id: str, value: Binary) -> Any:
        """Decrypt one ciphertext: a randomly encrypted value is unwrapped from its ``{"v": ...}``."""
        from pymongo.errors import EncryptionError

        try:
            decrypted = self.client_encryption().decrypt(value)
        except EncryptionError as error:
            raise _key_error(error, f"session_id=<{session_id}>", self.settings) from error
        return decrypted["v"] if isinstance(decrypted, Mapping) else decrypted


def _key_error(error: PyMongoError, where: str, settings: EncryptionSettings) -> SessionException:
    """The typed error for a failed encryption or decryption (``error`` is pymongo's ``EncryptionError``)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, ConnectionFailure):
        return StorageUnavailableError(f"{where} | the key vault is unreachable: {cause}")
    if _MISSING_KEY in str(error):
        return SessionKeyErasedError(
            f"{where} | the data key is not in the key vault {settings.key_vault_namespace}: the session's keys "
            "were erased (erase_session_keys), or the key vault namespace is not the one the session was written with"
        )
    return EncryptionKeyError(
        f"{where} | kms_provider=<{settings.kms_provider}> | the data key cannot be used (wrong master key or no "
        f"access to the KMS?): {error}"
    )


@contextlib.contextmanager
def _storage_errors(where: str) -> Iterator[None]:
    """A key-vault command that cannot reach MongoDB raises `StorageUnavailableError`."""
    try:
        yield
    except ConnectionFailure as error:
        raise StorageUnavailableError(f"{where} | the key vault is unreachable: {error}") from error


_sealers: dict[tuple[int, bytes], _Sealer] = {}
_sealers_lock = threading.Lock()
_erased: set[tuple[str, str, str]] = set()
"""``(key vault uri, namespace, session id)`` of the sessions whose keys this process erased: refused at once by
every sealer of the process, whatever libmongocrypt still caches."""


def sealer_for(client: MongoClient[Any], settings: EncryptionSettings) -> _Sealer:
    """The process's `_Sealer` for a sessions client and settings (equal settings share one; no I/O)."""
    key = (id(client), settings._fingerprint())
    with _sealers_lock:
        sealer = _sealers.get(key)
        if sealer is None:
            sealer = _sealers[key] = _Sealer(client, settings)
            weakref.finalize(client, _forget_sealer, key)
    return sealer


def _forget_sealer(key: tuple[int, bytes]) -> None:
    with _sealers_lock:
        sealer = _sealers.pop(key, None)
    if sealer is not None:
        sealer.close()


# ----------------------------------------------------------------- the field cipher: which field, which key


class FieldCipher:
    """Encrypts and decrypts the fields of session documents for one repository (internal).

    Built with the repository's `_Sealer`, or with None when the repository has no encryption settings: it
    then never encrypts, and reading an encrypted value raises `EncryptionKeyError`. The ``seal_*`` methods take
    the session's data key id (from its ``encryption_key_id``); the ``open_*`` methods take values as read and
    return them with every ciphertext replaced by the value codec's form it holds (`documents.decode_value`
    then rebuilds the value).
    """

    def __init__(self, sealer: _Sealer | None) -> None:
        """Bind to a sealer (None: no encryption settings)."""
        self.sealer = sealer
        settings = sealer.settings if sealer is not None else None
        self._deterministic = frozenset(settings.deterministic_metadata_fields if settings else ())
        self._random = frozenset(settings.random_metadata_fields if settings else ())

    # ----------------------------------------------------------------- writing

    def seal(self, session_id: str, key_id: Binary, value: Any) -> Binary:
        """Encrypt one stored-form value randomly with the session's data key."""
        sealer = self._require_sealer(session_id)
        sealer.check_not_erased(session_id)
        return sealer.encrypt(session_id, value, key_id=key_id)

    def seal_element(self, session_id: str, key_id: Binary, element: Mapping[str, Any]) -> dict[str, Any]:
        """A message element with ``message.content`` and ``redact_message`` encrypted (``role`` stays clear)."""
        sealed = dict(element)
        for name in _MESSAGE_FIELDS:
            value = sealed.get(name)
            if value is None:
                continue
            if type(value) is dict and "content" in value:
                sealed[name] = {**value, "content": self.seal(session_id, key_id, value["content"])}
            else:
                sealed[name] = self.seal(session_id, key_id, value)
        return sealed

    def seal_agent_data(self, session_id: str, key_id: Binary, data: Mapping[str, Any]) -> dict[str, Any]:
        """``agent_data`` fields with the three states and ``system_prompt`` encrypted."""
        return {
            name: self.seal(session_id, key_id, value) if name in AGENT_SEALED_FIELDS else value
            for name, value in data.items()
        }

    def seal_feedback(self, session_id: str, key_id: Binary, entry: Any) -> Any:
        """A stored feedback entry with its ``comment`` encrypted."""
        return _replace_member(entry, "comment", lambda comment: self.seal(session_id, key_id, comment))

    def seal_metadata(self, session_id: str, key_id: Binary | None, key: str, value: Any) -> Any:
        """The stored form of one metadata update (``key`` as given to ``update_metadata``), encrypted where configured.

        ``key_id`` None (a session written before encryption was enabled) leaves every field clear.

        Raises:
            SessionDataError: ``key`` addresses a path inside an encrypted field (set the field whole), or a
                deterministic field's value is not a string, int, date or bytes.
        """
        if key_id is None or (not self._deterministic and not self._random):
            return value
        for name in self._deterministic | self._random:
            if key.startswith(f"{name}."):
                raise SessionDataError(
                    f"session_id=<{session_id}> | metadata=<{key!r}> | metadata field {name!r} is encrypted: "
                    "set it whole, not a path inside it"
                )
        return self._seal_path(session_id, key_id, key, value)

    def _seal_path(self, session_id: str, key_id: Binary, path: str, value: Any) -> Any:
        if path in self._deterministic:
            sealer = self._require_sealer(session_id)
            sealer.check_not_erased(session_id)
            return self._deterministic_value(sealer, session_id, path, value)
        if path in self._random:
            return self.seal(session_id, key_id, value)
        prefix = f"{path}."
        children = {
            name[len(prefix) :].split(".")[0] for name in self._deterministic | self._random if name.startswith(prefix)
        }
        for child in sorted(children):  # a dict holding encrypted fields: encrypt them inside it

            def seal_child(item: Any, child_path: str = f"{prefix}{child}") -> Any:
                return self._seal_path(session_id, key_id, child_path, item)

            value = _replace_member(value, child, seal_child)
        return value

    def _deterministic_value(self, sealer: _Sealer, session_id: str, field_name: str, value: Any) -> Binary:
        """Encrypt a deterministic field's value with its shared key, creating the key on first use."""
        alt_name = metadata_key_alt_name(field_name)
        try:
            return sealer.encrypt(session_id, value, alt_name=alt_name)
        except SessionKeyErasedError:  # the field's key does not exist yet
            sealer.create_key(alt_name, f"session_id=<{session_id}>")
            return sealer.encrypt(session_id, value, alt_name=alt_name)

    def metadata_query_value(self, key: str, value: Any) -> tuple[bool, Any]:
        """The stored form to match a ``list_sessions`` metadata filter against.

        Returns:
            ``(True, value)`` with the value to compare, or ``(False, None)`` when it cannot match anything
            (a deterministic field whose key does not exist yet: no session stored a value for it).

        Raises:
            ValueError: ``key`` is a randomly encrypted field (not queryable).
        """
        if key in self._random:
            raise ValueError(f"metadata=<{key!r}> | metadata field {key!r} is encrypted randomly: it cannot be queried")
        if key not in self._deterministic or self.sealer is None:
            return True, value
        try:
            return True, self.sealer.encrypt(f"<query {key}>", value, alt_name=metadata_key_alt_name(key))
        except SessionKeyErasedError:
            return False, None

    @property
    def encrypts_metadata(self) -> bool:
        """Whether some metadata fields are encrypted."""
        return bool(self._deterministic or self._random)

    @property
    def deterministic_metadata_fields(self) -> list[str]:
        """The deterministically encrypted metadata fields (their keys are shared: erasure removes the values)."""
        return sorted(self._deterministic)

    # ----------------------------------------------------------------- reading

    def open(self, session_id: str, value: Any) -> Any:
        """Decrypt ``value`` when it is a ciphertext; anything else is returned as it is.

        Raises:
            EncryptionKeyError: It is a ciphertext and this repository has no encryption settings, or its
                key cannot be used (wrong master key, no KMS access).
            SessionKeyErasedError: Its key was erased.
        """
        if not is_encrypted(value):
            return value
        sealer = self._require_sealer(session_id)
        sealer.check_not_erased(session_id)
        return sealer.decrypt(session_id, value)

    def open_tree(self, session_id: str, value: Any) -> Any:
        """``value`` with every ciphertext anywhere inside it (documents, arrays) decrypted."""
        if is_encrypted(value):
            return self.open(session_id, value)
        if type(value) is dict:
            return {key: self.open_tree(session_id, item) for key, item in value.items()}
        if type(value) is list:
            return [self.open_tree(session_id, item) for item in value]
        return value

    def open_element(self, session_id: str, element: Mapping[str, Any]) -> Mapping[str, Any]:
        """A stored message element with ``message``/``redact_message`` (or their ``content``) decrypted."""
        opened: dict[str, Any] | None = None
        for name in _MESSAGE_FIELDS:
            value = element.get(name)
            if is_encrypted(value):
                value = self.open(session_id, value)
            elif type(value) is dict and is_encrypted(value.get("content")):
                value = {**value, "content": self.open(session_id, value["content"])}
            else:
                continue
            if opened is None:
                opened = dict(element)
            opened[name] = value
        return opened if opened is not None else element

    def open_fields(self, session_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """A document (``agent_data``, a config row) with each of its top-level ciphertexts decrypted."""
        return {name: self.open(session_id, value) for name, value in data.items()}

    def _require_sealer(self, session_id: str) -> _Sealer:
        if self.sealer is None:
            raise EncryptionKeyError(
                f"session_id=<{session_id}> | this value is encrypted and this repository has no encryption "
                "settings: pass encryption=EncryptionSettings(...) with access to the session's key"
            )
        return self.sealer


def without_ciphertexts(value: Any) -> Any:
    """``value`` without its encrypted members: a listing shows what it can without any key (dicts and lists walked)."""
    if type(value) is dict:
        return {key: without_ciphertexts(item) for key, item in value.items() if not is_encrypted(item)}
    if type(value) is list:
        return [without_ciphertexts(item) for item in value if not is_encrypted(item)]
    return value


def _replace_member(value: Any, name: str, replace: Callable[[Any], Any]) -> Any:
    """``value`` (a stored-form dict, plain or a ``__msm_map__`` pair list) with member ``name`` replaced.

    Anything else, or a dict without ``name`` (or with ``name`` None), is returned as it is.
    """
    if type(value) is not dict:
        return value
    pairs = value.get(docs.MAP_MARKER) if len(value) == 1 else None
    if isinstance(pairs, list):
        return {
            docs.MAP_MARKER: [
                [pair[0], replace(pair[1])] if _is_pair(pair, name) and pair[1] is not None else pair for pair in pairs
            ]
        }
    if value.get(name) is None:
        return value
    return {**value, name: replace(value[name])}


def _is_pair(pair: Any, name: str) -> bool:
    return isinstance(pair, list) and len(pair) == 2 and pair[0] == name
