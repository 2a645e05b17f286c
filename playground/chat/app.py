"""The app factory: ``create_app(settings)`` builds the playground backend, which also serves the chat page."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import FileResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strands.models import Model

from mongodb_session_manager import close_global_factory, initialize_global_factory
from mongodb_session_manager.demo_model import create_model

from . import api
from .config import Settings

__all__ = ["STATIC_DIR", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent
"""``playground/chat/``: the page, script and stylesheet (no build step, no third-party files)."""

STATIC_FILES = {"chat.html": "text/html", "chat-widget.js": "text/javascript", "chat.css": "text/css"}

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def create_app(settings: Settings, model: Model | None = None) -> FastAPI:
    """Build the playground app.

    Args:
        settings: Where to store the sessions and how to answer.
        model: The model every request's agent uses; default ``create_model()`` (a real provider when configured,
            else the offline demo model), made at start-up.
    """

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
        return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """Add a strict Content-Security-Policy and friends to every response (plain ASGI: streaming stays streaming)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
