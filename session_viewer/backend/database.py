"""The MongoDB client of the app: opened in the lifespan, handed to routes as a dependency."""

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from .config import Settings

__all__ = ["connection_string", "describe_uri", "get_collection", "lifespan_for"]

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
    """Build the app lifespan that opens the async client at start-up and closes it at shutdown.

    Args:
        settings: Where to connect and which collection to read.
        client_options: Extra ``AsyncMongoClient`` options (tests pass ``event_listeners``).
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
        app.state.mongo_client = client
        app.state.collection = client[settings.database_name][settings.collection_name]
        logger.info(
            "uri=<%s> | collection=<%s.%s> | session viewer connected",
            describe_uri(uri),
            settings.database_name,
            settings.collection_name,
        )
        try:
            yield
        finally:
            await client.close()

    return lifespan


def get_collection(request: Request) -> AsyncCollection[dict[str, Any]]:
    """Dependency: the sessions collection."""
    return request.app.state.collection
