"""Create session managers that share one MongoDB client, plus the process-wide "global factory".

A factory either borrows a client you pass (and never closes it) or takes one from
``MongoDBConnectionPool``. In the second case ``close()`` releases the factory's hold on the pool;
the pool is closed when the last factory that created it is closed (a pool you initialized
yourself with ``MongoDBConnectionPool.initialize`` is left for you to close).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from pymongo import MongoClient

from . import documents as docs
from .encryption import EncryptionSettings, require_encryption_support
from .manager import MANAGER_KEYWORDS, MongoDBSessionManager, _check_keywords, _named_parameters
from .pool import MongoDBConnectionPool, describe_client
from .repository import DEFAULT_LIST_LIMIT, DEFAULT_MAX_EMBEDDED_MESSAGES, MongoDBSessionRepository

__all__ = [
    "MongoDBSessionManagerFactory",
    "close_global_factory",
    "create_mongodb_session_manager",
    "get_global_factory",
    "initialize_global_factory",
]

logger = logging.getLogger(__name__)


class MongoDBSessionManagerFactory:
    """Builds ``MongoDBSessionManager`` objects that all use one shared client: no connection per manager."""

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = docs.DEFAULT_DATABASE,
        collection_name: str = docs.DEFAULT_COLLECTION,
        client: MongoClient[Any] | None = None,
        metadata_fields: list[str] | None = None,
        message_storage: str = docs.EMBEDDED,
        max_embedded_messages: int = DEFAULT_MAX_EMBEDDED_MESSAGES,
        ttl_hours: float | None = None,
        application_name: str | None = None,
        encryption: EncryptionSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Borrow ``client`` if given, otherwise take the shared client from ``MongoDBConnectionPool``.

        Args:
            connection_string: MongoDB URI for the pool; ``None`` means ``MONGODB_URI`` or the embedded
                development server. Ignored when ``client`` is given.
            database_name: Default database for created managers.
            collection_name: Default collection for created managers.
            client: A ``MongoClient`` to lend to every manager; the factory never closes it.
            metadata_fields: Default ``metadata_fields`` for created managers.
            message_storage: Default ``message_storage`` (``"embedded"`` or ``"collection"``) for created managers.
            max_embedded_messages: Default ``max_embedded_messages`` for created managers.
            ttl_hours: Default ``ttl_hours`` for created managers: their sessions expire that many hours
                after their last write. None: sessions never expire.
            application_name: Default ``application_name`` for created managers (``create_session_manager``
                may override it per session): stored on each session they create, never changed afterwards.
            encryption: Default ``encryption`` (`EncryptionSettings`) for created managers
                (``create_session_manager`` may override it per session; ``encryption=None`` there turns it off)
                and for the factory's `list_sessions`. All managers of a factory share one data-key cache.
            **kwargs: ``MongoClient`` options for the pool (for example ``maxPoolSize``). Ignored when
                ``client`` is given.

        Raises:
            TypeError: A keyword argument is not a ``MongoClient`` option, or ``encryption`` is not an
                `EncryptionSettings` (nothing is connected).
            ImportError: ``encryption`` without the ``encryption`` extra installed (nothing is connected).
            InvalidApplicationNameError: ``application_name`` is not a non-empty string of at most 128
                characters without NUL (nothing is connected).
            ValueError: ``minPoolSize`` and ``maxPoolSize`` are both given and conflict, or
                ``message_storage``/``max_embedded_messages``/``ttl_hours`` is invalid.
        """
        _check_keywords("MongoDBSessionManagerFactory", kwargs, _FACTORY_KEYWORDS)
        docs.check_message_layout(message_storage, max_embedded_messages)
        docs.check_ttl_hours(ttl_hours)
        if encryption is not None:
            if not isinstance(encryption, EncryptionSettings):
                raise TypeError(f"encryption must be an EncryptionSettings, not {type(encryption).__name__}")
            require_encryption_support()
        self.encryption = encryption
        self.application_name = docs.check_application_name(application_name)
        self.ttl_hours = ttl_hours
        self._repository: MongoDBSessionRepository | None = None
        self.message_storage = message_storage
        self.max_embedded_messages = max_embedded_messages
        self.database_name = database_name
        self.collection_name = collection_name
        self.metadata_fields = metadata_fields
        self._pool_generation: int | None = None
        self._closed = False
        if client is not None:
            if connection_string is not None or kwargs:
                logger.warning("client given | ignoring connection_string and client options; borrowing the client")
            self._client = client
        else:
            self._client, _created, self._pool_generation = MongoDBConnectionPool._acquire(
                connection_string, kwargs, for_factory=True
            )
        logger.debug(
            "database=<%s> | collection=<%s> | borrowed_client=<%s> | session manager factory created",
            database_name,
            collection_name,
            client is not None,
        )

    @property
    def client(self) -> MongoClient[Any]:
        """The shared client every created manager uses."""
        return self._client

    @property
    def owns_pool(self) -> bool:
        """True when the client came from ``MongoDBConnectionPool`` rather than from the caller."""
        return self._pool_generation is not None

    def create_session_manager(
        self,
        session_id: str,
        database_name: str | None = None,
        collection_name: str | None = None,
        **kwargs: Any,
    ) -> MongoDBSessionManager:
        """Return a manager for ``session_id`` on the shared client; opens no new connection.

        Args:
            session_id: The session to load or create.
            database_name: Overrides the factory's database.
            collection_name: Overrides the factory's collection.
            **kwargs: Passed to ``MongoDBSessionManager`` (``metadata_fields``, ``metadata_hook``,
                ``feedback_hook``, ...); ``metadata_fields``, ``message_storage``,
                ``max_embedded_messages``, ``ttl_hours``, ``application_name`` and ``encryption`` default to
                the factory's.

        Raises:
            InvalidIdError: ``session_id`` is not a non-empty string.
            TypeError: A keyword argument ``MongoDBSessionManager`` does not take.
            RuntimeError: If the factory was closed.
        """
        docs.validate_ids(session_id=session_id)
        _check_keywords("MongoDBSessionManagerFactory.create_session_manager", kwargs, MANAGER_KEYWORDS)
        if self._closed:
            raise RuntimeError("MongoDBSessionManagerFactory is closed; create a new factory")
        metadata_fields = kwargs.pop("metadata_fields", self.metadata_fields)
        kwargs.setdefault("message_storage", self.message_storage)
        kwargs.setdefault("max_embedded_messages", self.max_embedded_messages)
        kwargs.setdefault("ttl_hours", self.ttl_hours)
        kwargs.setdefault("application_name", self.application_name)
        kwargs.setdefault("encryption", self.encryption)
        return MongoDBSessionManager(
            session_id=session_id,
            client=self._client,
            database_name=database_name or self.database_name,
            collection_name=collection_name or self.collection_name,
            metadata_fields=metadata_fields,
            **kwargs,
        )

    def list_sessions(
        self,
        prefix: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
        cursor: str | None = None,
        application_name: str | None = None,
    ) -> dict[str, Any]:
        """List the sessions of the factory's database and collection, newest first, one page per call.

        `MongoDBSessionRepository.list_sessions` on the shared client (one aggregate per page); the
        factory's ``metadata_fields`` are the indexed fields ``metadata`` may filter on, besides any
        other ``metadata.<field>`` index of the collection. ``application_name`` lists one application's
        sessions (any application's, not only the factory's default, which is never applied here).

        Raises:
            ValueError: A filter, the limit or the cursor is invalid.
            RuntimeError: If the factory was closed.
        """
        return self._sessions().list_sessions(
            prefix=prefix,
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            updated_before=updated_before,
            metadata=metadata,
            limit=limit,
            cursor=cursor,
            application_name=application_name,
        )

    def erase_session_keys(self, session_id: str) -> int:
        """Delete one session's data keys (crypto-shredding), without opening a manager for it.

        `MongoDBSessionRepository.erase_session_keys` on the shared client: the session's encrypted fields
        become unreadable everywhere, backups included; listing it still works.

        Returns:
            How many data keys were deleted (0 when they already were).

        Raises:
            InvalidIdError: ``session_id`` is not a non-empty string (nothing was sent).
            ValueError: The factory has no ``encryption`` settings.
            RuntimeError: If the factory was closed.
        """
        return self._sessions().erase_session_keys(session_id)

    def _sessions(self) -> MongoDBSessionRepository:
        """The repository the factory's own reads use (built once, on the shared client)."""
        if self._closed:
            raise RuntimeError("MongoDBSessionManagerFactory is closed; create a new factory")
        if self._repository is None:
            self._repository = MongoDBSessionRepository(
                client=self._client,
                database_name=self.database_name,
                collection_name=self.collection_name,
                metadata_fields=self.metadata_fields,
                message_storage=self.message_storage,
                max_embedded_messages=self.max_embedded_messages,
                ttl_hours=self.ttl_hours,
                encryption=self.encryption,
            )
        return self._repository

    def get_connection_stats(self) -> dict[str, Any]:
        """Return connection stats without credentials (same shape as ``MongoDBConnectionPool.get_pool_stats``)."""
        if self._closed:
            return {**describe_client(None), "status": "closed"}
        return MongoDBConnectionPool._stats_for(self._client)

    def close(self) -> None:
        """Stop using the client; a borrowed client stays open. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._pool_generation is not None:
            MongoDBConnectionPool._release(self._pool_generation)
        logger.debug("session manager factory closed")


_FACTORY_KEYWORDS = frozenset(_named_parameters(MongoDBSessionManagerFactory.__init__))

_global_lock = threading.Lock()
_global_factory: MongoDBSessionManagerFactory | None = None


def initialize_global_factory(
    connection_string: str | None = None,
    database_name: str = docs.DEFAULT_DATABASE,
    collection_name: str = docs.DEFAULT_COLLECTION,
    client: MongoClient[Any] | None = None,
    application_name: str | None = None,
    **kwargs: Any,
) -> MongoDBSessionManagerFactory:
    """Create the process-wide factory and return it; if one exists, log a warning and return it unchanged.

    Takes the arguments of ``MongoDBSessionManagerFactory`` (``application_name``, ``encryption``: the defaults of
    every manager it creates).

    Raises:
        TypeError: A keyword argument the factory does not take (nothing is created).
        InvalidApplicationNameError: ``application_name`` is invalid (nothing is created).
    """
    _check_keywords("initialize_global_factory", kwargs, _FACTORY_KEYWORDS)
    global _global_factory
    with _global_lock:
        if _global_factory is not None:
            logger.warning(
                "global session manager factory already initialized; returning the existing one "
                "(call close_global_factory() first to change its settings)"
            )
            return _global_factory
        _global_factory = MongoDBSessionManagerFactory(
            connection_string=connection_string,
            database_name=database_name,
            collection_name=collection_name,
            client=client,
            application_name=application_name,
            **kwargs,
        )
        logger.info(
            "database=<%s> | collection=<%s> | global session manager factory initialized",
            database_name,
            collection_name,
        )
        return _global_factory


def get_global_factory() -> MongoDBSessionManagerFactory:
    """Return the process-wide factory.

    Raises:
        RuntimeError: If ``initialize_global_factory`` has not been called (or the factory was closed).
    """
    with _global_lock:
        if _global_factory is None:
            raise RuntimeError(
                "the global session manager factory is not initialized: call initialize_global_factory(...) "
                "at application start-up"
            )
        return _global_factory


def close_global_factory() -> None:
    """Close the process-wide factory and forget it; safe to call more than once."""
    global _global_factory
    with _global_lock:
        factory, _global_factory = _global_factory, None
    if factory is not None:
        factory.close()
        logger.info("global session manager factory closed")


def create_mongodb_session_manager(
    session_id: str,
    connection_string: str | None = None,
    database_name: str = docs.DEFAULT_DATABASE,
    collection_name: str = docs.DEFAULT_COLLECTION,
    client: MongoClient[Any] | None = None,
    application_name: str | None = None,
    **kwargs: Any,
) -> MongoDBSessionManager:
    """Return ``MongoDBSessionManager(...)`` with these arguments; a convenience kept from earlier versions.

    Raises:
        InvalidIdError: ``session_id`` is not a non-empty string (nothing is connected).
        InvalidApplicationNameError: ``application_name`` is invalid (nothing is connected).
        TypeError: A keyword argument ``MongoDBSessionManager`` does not take (nothing is connected).
    """
    docs.validate_ids(session_id=session_id)
    _check_keywords("create_mongodb_session_manager", kwargs, MANAGER_KEYWORDS)
    return MongoDBSessionManager(
        session_id=session_id,
        connection_string=connection_string,
        database_name=database_name,
        collection_name=collection_name,
        client=client,
        application_name=application_name,
        **kwargs,
    )
