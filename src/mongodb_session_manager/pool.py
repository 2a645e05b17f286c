"""Process-wide MongoDB client singleton shared by every session manager.

One ``MongoClient`` per process is the intended shape: pymongo's client already is a thread-safe
connection pool, so handing the same client to every ``MongoDBSessionManager`` means no request
ever pays for a new connection.

Re-initialisation policy: the first successful ``initialize`` wins. Later calls return the same
client; if they ask for a different connection string or a different value of an option they
pass, a warning is logged (naming the option keys, never their values) and the existing client
is still returned. Replacing a live client would break every manager already holding it; call
``MongoDBConnectionPool.close()`` first to really change settings.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from pymongo import MongoClient
from pymongo.monitoring import (
    ConnectionCheckedInEvent,
    ConnectionCheckedOutEvent,
    ConnectionCheckOutFailedEvent,
    ConnectionCheckOutStartedEvent,
    ConnectionClosedEvent,
    ConnectionCreatedEvent,
    ConnectionPoolListener,
    ConnectionReadyEvent,
    PoolClearedEvent,
    PoolClosedEvent,
    PoolCreatedEvent,
    PoolReadyEvent,
)

__all__ = ["DEFAULT_POOL_OPTIONS", "ConnectionCounter", "MongoDBConnectionPool", "describe_client"]

logger = logging.getLogger(__name__)

DEFAULT_POOL_OPTIONS: dict[str, Any] = {
    "maxPoolSize": 100,
    "minPoolSize": 10,
    "maxIdleTimeMS": 30000,
    "waitQueueTimeoutMS": 5000,
    "retryWrites": True,
    "retryReads": True,
}

_MISSING = object()


class ConnectionCounter(ConnectionPoolListener):
    """Counts connection pool events of one client so stats can report live connection numbers."""

    def __init__(self) -> None:
        """Start all counters at zero."""
        self._lock = threading.Lock()
        self._created = 0
        self._closed = 0
        self._checked_out = 0
        self._checked_in = 0

    def snapshot(self) -> dict[str, int]:
        """Return open, in-use and total-created connection counts."""
        with self._lock:
            return {
                "open": self._created - self._closed,
                "in_use": self._checked_out - self._checked_in,
                "created_total": self._created,
            }

    def connection_created(self, event: ConnectionCreatedEvent) -> None:
        """Count a new connection."""
        with self._lock:
            self._created += 1

    def connection_closed(self, event: ConnectionClosedEvent) -> None:
        """Count a closed connection."""
        with self._lock:
            self._closed += 1

    def connection_checked_out(self, event: ConnectionCheckedOutEvent) -> None:
        """Count a connection handed to an operation."""
        with self._lock:
            self._checked_out += 1

    def connection_checked_in(self, event: ConnectionCheckedInEvent) -> None:
        """Count a connection returned to the pool."""
        with self._lock:
            self._checked_in += 1

    def pool_created(self, event: PoolCreatedEvent) -> None:
        """Ignore."""

    def pool_ready(self, event: PoolReadyEvent) -> None:
        """Ignore."""

    def pool_cleared(self, event: PoolClearedEvent) -> None:
        """Ignore."""

    def pool_closed(self, event: PoolClosedEvent) -> None:
        """Ignore."""

    def connection_ready(self, event: ConnectionReadyEvent) -> None:
        """Ignore."""

    def connection_check_out_started(self, event: ConnectionCheckOutStartedEvent) -> None:
        """Ignore."""

    def connection_check_out_failed(self, event: ConnectionCheckOutFailedEvent) -> None:
        """Ignore."""


def describe_client(client: MongoClient[Any] | None, counter: ConnectionCounter | None = None) -> dict[str, Any]:
    """Return credential-free stats for ``client``: status, hosts, effective pool options, live counts.

    ``connections`` is ``None`` when no ``ConnectionCounter`` watches the client (for example a
    client the caller built and lent to a factory).
    """
    if client is None:
        return {"status": "not_initialized", "hosts": [], "options": {}, "connections": None}
    pool_options = client.options.pool_options
    max_idle_s = pool_options.max_idle_time_seconds
    wait_queue_s = pool_options.wait_queue_timeout
    return {
        "status": "connected",
        "hosts": _hosts(client),
        "options": {
            "maxPoolSize": pool_options.max_pool_size,
            "minPoolSize": pool_options.min_pool_size,
            "maxIdleTimeMS": None if max_idle_s is None else round(max_idle_s * 1000),
            "waitQueueTimeoutMS": None if wait_queue_s is None else round(wait_queue_s * 1000),
            "retryWrites": client.options.retry_writes,
            "retryReads": client.options.retry_reads,
        },
        "connections": None if counter is None else counter.snapshot(),
    }


class MongoDBConnectionPool:
    """Thread-safe process-wide holder of one shared ``MongoClient``; all methods are classmethods."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _client: ClassVar[MongoClient[Any] | None] = None
    _counter: ClassVar[ConnectionCounter | None] = None
    _uri_digest: ClassVar[str | None] = None
    _options: ClassVar[dict[str, Any]] = {}
    _generation: ClassVar[int] = 0
    _factory_refs: ClassVar[int] = 0
    _owned_by_factories: ClassVar[bool] = False

    @classmethod
    def initialize(cls, connection_string: str | None = None, **kwargs: Any) -> MongoClient[Any]:
        """Create the shared client on first call and return it; later calls return the same client.

        Args:
            connection_string: MongoDB URI. ``None`` means ``MONGODB_URI`` or, when unset, the
                embedded development server (resolved only when the client is first created).
            **kwargs: ``MongoClient`` options. They override the pool defaults (``maxPoolSize`` 100,
                ``minPoolSize`` 10, ``maxIdleTimeMS`` 30000, ``waitQueueTimeoutMS`` 5000,
                ``retryWrites`` and ``retryReads`` True); options set in the URI are kept too. A default
                bound follows a bound you give: ``maxPoolSize=7`` alone means ``minPoolSize`` 7.

        Returns:
            The shared ``MongoClient``. If the pool already exists with a different connection string
            or a different value for an option passed here, a warning is logged and the existing
            client is returned unchanged.

        Raises:
            ValueError: ``minPoolSize`` and ``maxPoolSize`` are both given and the minimum is larger.
        """
        client, _created, _generation = cls._acquire(connection_string, kwargs, for_factory=False)
        return client

    @classmethod
    def get_client(cls) -> MongoClient[Any]:
        """Return the shared client.

        Raises:
            RuntimeError: If ``initialize`` has not been called (or the pool was closed).
        """
        with cls._lock:
            if cls._client is None:
                raise RuntimeError(
                    "MongoDBConnectionPool is not initialized: call "
                    "MongoDBConnectionPool.initialize(connection_string=...) first"
                )
            return cls._client

    @classmethod
    def is_initialized(cls) -> bool:
        """Return True while a shared client exists."""
        with cls._lock:
            return cls._client is not None

    @classmethod
    def get_pool_stats(cls) -> dict[str, Any]:
        """Return pool stats without credentials: status, hosts, effective options and live connection counts."""
        with cls._lock:
            return describe_client(cls._client, cls._counter)

    @classmethod
    def _stats_for(cls, client: MongoClient[Any]) -> dict[str, Any]:
        """Return ``describe_client`` stats for ``client``, with live counts when it is the pool's client."""
        with cls._lock:
            return describe_client(client, cls._counter if client is cls._client else None)

    @classmethod
    def close(cls) -> None:
        """Close the shared client and reset the singleton; safe to call more than once."""
        with cls._lock:
            client = cls._client
            cls._reset_locked()
        if client is not None:
            client.close()
            logger.info("connection pool closed")

    @classmethod
    def _acquire(
        cls, connection_string: str | None, kwargs: dict[str, Any], *, for_factory: bool
    ) -> tuple[MongoClient[Any], bool, int]:
        """Return (client, created, generation), creating the client if needed; factories also take a reference."""
        with cls._lock:
            created = cls._client is None
            if cls._client is None:
                client = cls._create_locked(connection_string, kwargs)
                cls._owned_by_factories = for_factory
            else:
                client = cls._client
                cls._warn_if_different_locked(connection_string, kwargs)
            if for_factory:
                cls._factory_refs += 1
            return client, created, cls._generation

    @classmethod
    def _release(cls, generation: int) -> None:
        """Drop one factory reference; close the pool when the last factory that created it lets go."""
        with cls._lock:
            if cls._client is None or generation != cls._generation:
                return
            cls._factory_refs = max(0, cls._factory_refs - 1)
            if cls._factory_refs or not cls._owned_by_factories:
                return
            client = cls._client
            cls._reset_locked()
        client.close()
        logger.info("connection pool closed")

    @classmethod
    def _create_locked(cls, connection_string: str | None, kwargs: dict[str, Any]) -> MongoClient[Any]:
        """Build the shared client; the caller holds ``_lock``."""
        if connection_string is None:
            from .embedded import default_connection_string

            connection_string = default_connection_string()
        options = _with_defaults(connection_string, kwargs)
        counter = ConnectionCounter()
        client_options = dict(options)
        client_options["event_listeners"] = [*(options.get("event_listeners") or []), counter]
        client_options.setdefault("tz_aware", True)
        client: MongoClient[Any] = MongoClient(connection_string, **client_options)
        cls._client = client
        cls._counter = counter
        cls._uri_digest = _digest(connection_string)
        cls._options = {key.lower(): value for key, value in options.items()}
        cls._generation += 1
        cls._factory_refs = 0
        stats = describe_client(client)
        logger.info(
            "hosts=<%s> | max_pool_size=<%s> | min_pool_size=<%s> | connection pool initialized",
            ",".join(stats["hosts"]),
            stats["options"]["maxPoolSize"],
            stats["options"]["minPoolSize"],
        )
        return client

    @classmethod
    def _warn_if_different_locked(cls, connection_string: str | None, kwargs: dict[str, Any]) -> None:
        """Log a warning when a repeated ``initialize`` asks for other settings; the caller holds ``_lock``."""
        differences = [key for key, value in kwargs.items() if cls._options.get(key.lower(), _MISSING) != value]
        if connection_string is not None and _digest(connection_string) != cls._uri_digest:
            differences.insert(0, "connection_string")
        if differences:
            logger.warning(
                "different=<%s> | connection pool already initialized with other settings; "
                "keeping the existing client (call MongoDBConnectionPool.close() first to change them)",
                ",".join(differences),
            )

    @classmethod
    def _reset_locked(cls) -> None:
        """Forget the shared client; the caller holds ``_lock``."""
        cls._client = None
        cls._counter = None
        cls._uri_digest = None
        cls._options = {}
        cls._factory_refs = 0
        cls._owned_by_factories = False


def _digest(connection_string: str) -> str:
    """Return a hash of the URI so the raw string (which may hold a password) is never kept."""
    return hashlib.sha256(connection_string.encode()).hexdigest()


def _with_defaults(connection_string: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Return ``kwargs`` plus every pool default that neither they nor the URI set.

    A default pool bound follows the other bound the user gave: ``maxPoolSize=7`` alone gets
    ``minPoolSize=7`` (not the default 10), ``minPoolSize=150`` alone gets ``maxPoolSize=150``.

    Raises:
        ValueError: The user gave both bounds (as arguments or in the URI) and ``minPoolSize`` is
            larger than ``maxPoolSize``.
    """
    given = {**_uri_options(connection_string), **{key.lower(): value for key, value in kwargs.items()}}
    options = {key: value for key, value in DEFAULT_POOL_OPTIONS.items() if key.lower() not in given}
    max_size, min_size = _as_int(given.get("maxpoolsize")), _as_int(given.get("minpoolsize"))
    if "minpoolsize" in given and "maxpoolsize" in given:
        if max_size and min_size is not None and min_size > max_size:  # maxPoolSize 0 means no limit
            raise ValueError(
                f"minPoolSize={min_size} and maxPoolSize={max_size} conflict: minPoolSize must be smaller "
                "than or equal to maxPoolSize"
            )
    elif max_size:
        options["minPoolSize"] = min(DEFAULT_POOL_OPTIONS["minPoolSize"], max_size)
    elif min_size is not None:
        options["maxPoolSize"] = max(DEFAULT_POOL_OPTIONS["maxPoolSize"], min_size)
    options.update(kwargs)
    return options


def _as_int(value: Any) -> int | None:
    """Return an option value as an int, or None when it is absent or not a number (pymongo then says why)."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _uri_options(connection_string: str) -> dict[str, str]:
    """Return the options given in the URI's query string, by lower-cased name."""
    query = connection_string.rsplit("@", 1)[-1].partition("?")[2]
    return {key.lower(): value for key, value in parse_qsl(query, keep_blank_values=True)}


def _hosts(client: MongoClient[Any]) -> list[str]:
    """Return the ``host:port`` of every known server (seeds or discovered members), never credentials."""
    hosts = []
    for host, port in client.topology_description.server_descriptions():
        if port is None:
            hosts.append(str(host))
        elif ":" in str(host):
            hosts.append(f"[{host}]:{port}")
        else:
            hosts.append(f"{host}:{port}")
    return sorted(hosts)
