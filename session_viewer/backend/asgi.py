"""ASGI entry point for a process manager: ``uvicorn --factory session_viewer.backend.asgi:app_from_environment``.

Each worker process (``--workers N``) builds the app from the environment and ``.env``, as ``session-viewer``
does, with two differences: a ``BACKEND_PASSWORD`` must be configured (each worker would generate its own), and
MongoDB is not checked at start-up (the first request or ``GET /health`` finds an unreachable one). See the
deployment page of the documentation.
"""

from fastapi import FastAPI

from web_common.cli import configure_logging

from .app import create_app
from .config import Settings

__all__ = ["app_from_environment"]


def app_from_environment() -> FastAPI:
    """Build the Session Viewer from the environment (and ``.env``), for ``uvicorn --factory``.

    Raises:
        pydantic.ValidationError: A setting is invalid.
        ValueError: ``BACKEND_PASSWORD`` is not set, or ``ENV=production`` without ``MONGODB_URI``.
    """
    settings = Settings()
    if settings.backend_password is None:
        raise ValueError(
            "BACKEND_PASSWORD is not set: with several workers each would generate its own; set it (16+ characters)"
        )
    configure_logging(settings.log_level)
    return create_app(settings)
