"""The app factory: ``create_app(settings)`` builds the Session Viewer backend."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure, PyMongoError
from strands.types.exceptions import StorageError

from mongodb_session_manager import SessionException, StorageUnavailableError
from web_common.middleware import secure
from web_common.throttle import PasswordThrottle

from .config import Settings
from .database import lifespan_for
from .routes import collections, health, metadata, metrics, sessions, snapshots
from .routes.frontend import mount_frontend

__all__ = ["CONTENT_SECURITY_POLICY", "create_app"]

logger = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Same-origin scripts and styles only: no inline scripts or styles, no CDN."""


def create_app(settings: Settings, client_options: Mapping[str, Any] | None = None) -> FastAPI:
    """Build the app for ``settings``.

    Args:
        settings: Validated settings with a backend password (see :meth:`Settings.resolve_password`).
        client_options: Extra ``AsyncMongoClient`` options, e.g. ``event_listeners`` in tests.

    Raises:
        ValueError: ``settings`` has no backend password: there is no default one.
        ProductionConfigurationError: ``ENV=production`` without ``MONGODB_URI`` (a ``ValueError`` too).
    """
    if settings.backend_password is None:
        raise ValueError("BACKEND_PASSWORD is not set: call Settings.resolve_password() to generate one")
    settings.check_production()
    app = FastAPI(
        title="Session Viewer",
        lifespan=lifespan_for(settings, client_options),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.password_throttle = PasswordThrottle(
        settings.password_max_failures, settings.password_failure_window_seconds
    )

    app.include_router(health.router)
    app.include_router(collections.router)
    app.include_router(metadata.router)
    app.include_router(metrics.router)
    app.include_router(sessions.router)
    app.include_router(snapshots.router)
    mount_frontend(app)

    app.add_exception_handler(PyMongoError, _database_error)
    app.add_exception_handler(SessionException, _database_error)  # the library's errors, when reading messages
    app.add_exception_handler(StorageError, _database_error)  # MongoDBStorage's, when reading snapshot sessions
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_credentials=False,
            allow_methods=["GET"],
            allow_headers=["Authorization", "X-Session-Password"],
            max_age=600,
        )
    return secure(app, settings, CONTENT_SECURITY_POLICY)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    """Answer 503 when MongoDB is unreachable and 500 for any other MongoDB error; details go to the log only."""
    logger.warning("path=<%s> | error=<%s> | database request failed", request.url.path, type(error).__name__)
    if isinstance(error, ConnectionFailure | StorageUnavailableError) or isinstance(error.__cause__, ConnectionFailure):
        return JSONResponse({"detail": "database unavailable"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return JSONResponse({"detail": "database error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
