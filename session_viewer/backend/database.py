"""The MongoDB clients of the app: opened in the lifespan, handed to routes as dependencies.

Sessions are searched with the async client; messages are read through the library
(``MongoDBSessionRepository`` on a sync client from the same settings, called in a worker thread), which
knows where each agent keeps them: in the session document or in ``<collection>.messages``. Which collection a
request reads is `get_namespace`: the configured one, or the one its ``collection`` parameter names among those
``namespaces.Namespaces`` lists. Encrypted sessions are decrypted with the configured key access
(`encryption.ViewerEncryption`); what cannot be decrypted is marked, never an error (`get_reader`).
"""

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.collection import AsyncCollection

from mongodb_session_manager import MongoDBSessionRepository

from .config import Settings
from .encryption import Revealer, ViewerEncryption
from .fields import FieldCatalog
from .namespaces import Namespaces, UnknownNamespaceError, split_namespace
from .snapshots import SnapshotSessions

__all__ = [
    "Namespace",
    "connection_string",
    "describe_uri",
    "get_collection",
    "get_field_catalog",
    "get_namespace",
    "get_reader",
    "get_repository",
    "get_revealer",
    "lifespan_for",
]

logger = logging.getLogger(__name__)

_CREDENTIALS = re.compile(r"//[^@/]*@")


def connection_string(settings: Settings) -> str:
    """Return the configured ``MONGODB_URI``, or the URI of the embedded development server (started if needed)."""
    if settings.mongodb_uri:
        return settings.mongodb_uri
    from mongodb_session_manager.embedded import ensure_embedded_server

    return ensure_embedded_server()


def describe_uri(uri: str) -> str:
    """Return ``uri`` without credentials and options, safe to print or log."""
    without_options = uri.split("?", 1)[0]
    return _CREDENTIALS.sub("//", without_options)


def lifespan_for(
    settings: Settings, client_options: Mapping[str, Any] | None = None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Build the app lifespan that opens the clients at start-up and closes them at shutdown.

    Nothing is sent to MongoDB at start-up: the clients connect on first use, and the repositories create
    no index (the viewer only reads, and may run as a read-only user).

    Args:
        settings: Where to connect and which collection to read.
        client_options: Extra ``MongoClient``/``AsyncMongoClient`` options (tests pass ``event_listeners``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        uri = connection_string(settings)
        options = {
            "tz_aware": True,
            "appname": "session-viewer",
            "serverSelectionTimeoutMS": settings.server_selection_timeout_ms,
            **(client_options or {}),
        }
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, **options)
        sync_client: MongoClient[dict[str, Any]] = MongoClient(uri, **options)
        app.state.mongo_client = client
        app.state.sync_client = sync_client
        app.state.namespaces = Namespaces(f"{settings.database_name}.{settings.collection_name}")
        app.state.repositories = {}
        app.state.encryption = ViewerEncryption(
            settings.encryption, sync_client, settings.deterministic_fields, settings.random_fields
        )
        app.state.field_catalogs = {}
        app.state.snapshot_sessions = SnapshotSessions(
            client, settings.database_name, settings.snapshot_collection_name, settings.encryption
        )
        logger.info(
            "uri=<%s> | collection=<%s.%s> | session viewer connected",
            describe_uri(uri),
            settings.database_name,
            settings.collection_name,
        )
        try:
            yield
        finally:
            try:
                await app.state.snapshot_sessions.storage.close()  # its own clients of other loops, if any
                await client.close()
            finally:
                sync_client.close()

    return lifespan


async def get_namespace(
    request: Request,
    collection: Annotated[
        str | None,
        Query(description="<database>.<collection> to read (default: the configured one); see /api/v1/collections"),
    ] = None,
) -> str:
    """Dependency: the namespace this request reads, validated against the listed ones.

    Raises:
        HTTPException: 400 when ``collection`` is malformed or holds no sessions.
    """
    try:
        return await request.app.state.namespaces.resolve(request.app.state.mongo_client, collection)
    except UnknownNamespaceError as error:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail=str(error)) from error


Namespace = Annotated[str, Depends(get_namespace)]


def get_collection(request: Request, namespace: Namespace) -> AsyncCollection[dict[str, Any]]:
    """Dependency: the sessions collection this request reads."""
    database, collection = split_namespace(namespace)
    return request.app.state.mongo_client[database][collection]


def get_repository(request: Request, namespace: Namespace) -> MongoDBSessionRepository:
    """Dependency: the library's repository on that collection, for reading messages in any layout.

    It is synchronous: call it in a thread. One per listed namespace, made on first use; making it sends nothing.
    """
    repositories: dict[str, MongoDBSessionRepository] = request.app.state.repositories
    if namespace not in repositories:
        database, collection = split_namespace(namespace)
        repositories[namespace] = MongoDBSessionRepository(
            client=request.app.state.sync_client,
            database_name=database,
            collection_name=collection,
            create_indexes=False,
            encryption=request.app.state.settings.encryption,
        )
    return repositories[namespace]


def get_revealer(request: Request) -> Revealer:
    """Dependency: this request's decryption of encrypted values (a marker for each one it cannot decrypt)."""
    encryption: ViewerEncryption = request.app.state.encryption
    return encryption.revealer()


def get_reader(
    request: Request, namespace: Namespace, revealer: Annotated[Revealer, Depends(get_revealer)]
) -> MongoDBSessionRepository:
    """Dependency: the library's reader of that collection for this request, decrypting through its revealer.

    Synchronous, like `get_repository`: call it in a thread. Making it sends nothing.
    """
    database, collection = split_namespace(namespace)
    return revealer.reader(request.app.state.sync_client, database, collection)


def get_field_catalog(request: Request, namespace: Namespace) -> FieldCatalog:
    """Dependency: the filterable metadata fields of that collection (one catalog per listed namespace)."""
    catalogs: dict[str, FieldCatalog] = request.app.state.field_catalogs
    if namespace not in catalogs:
        settings = request.app.state.settings
        catalogs[namespace] = FieldCatalog(settings.enum_fields, settings.enum_max_values, request.app.state.encryption)
    return catalogs[namespace]
