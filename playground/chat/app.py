"""The app factory: ``create_app(settings)`` builds the playground backend, which also serves the chat page."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import FileResponse, RedirectResponse
from strands.models import Model

from mongodb_session_manager import close_global_factory, initialize_global_factory
from mongodb_session_manager.demo_model import create_model
from web_common.assets import mount_common
from web_common.middleware import secure

from . import api
from .config import Settings

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent
"""``playground/chat/``: the page, its stylesheet and ``js/`` (no build step, no third-party files)."""

STATIC_FILES = {"chat.html": "text/html", "chat.css": "text/css"}
"""The page and its stylesheet, served at ``/<name>``; no other file of `STATIC_DIR` is served."""

SCRIPTS = frozenset(path.name for path in (STATIC_DIR / "js").glob("*.js"))
"""The widget's ES modules, served at ``/js/<name>`` (the shared ``el()`` helper at ``/static/common/dom.js``)."""

NO_CACHE = {"Cache-Control": "no-cache"}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Nothing but the app's own script, stylesheet and API."""


def create_app(settings: Settings, model: Model | None = None) -> FastAPI:
    """Build the playground app.

    Args:
        settings: Where to store the sessions and how to answer.
        model: The model every request's agent uses; default ``create_model()`` (a real provider when configured,
            else the offline demo model), made at start-up.

    Raises:
        ProductionConfigurationError: ``ENV=production`` without ``MONGODB_URI`` (a ``ValueError``).
    """
    settings.check_production()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        initialize_global_factory(
            connection_string=settings.mongodb_uri,
            database_name=settings.database_name,
            collection_name=settings.collection_name,
            message_storage=settings.message_storage,
            serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
        )
        app.state.model = model if model is not None else create_model()
        logger.info("collection=<%s.%s> | chat playground started", settings.database_name, settings.collection_name)
        try:
            yield
        finally:
            close_global_factory()

    app = FastAPI(
        title="mongodb-session-manager chat playground",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI would load scripts from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.include_router(api.router)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/chat.html")

    @app.api_route("/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def static_file(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
        return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name], headers=NO_CACHE)

    @app.api_route("/js/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def script(name: str) -> FileResponse:
        if name not in SCRIPTS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
        return FileResponse(STATIC_DIR / "js" / name, media_type="text/javascript", headers=NO_CACHE)

    mount_common(app)

    return secure(app, settings, CONTENT_SECURITY_POLICY)
