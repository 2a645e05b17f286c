"""ASGI entry point for a process manager: ``uvicorn --factory playground.chat.asgi:app_from_environment``.

Each worker process (``--workers N``) builds the app from the environment and ``.env`` (``PLAYGROUND_*``,
``MONGODB_URI``, ``STRANDS_MODEL_*``), as ``playground`` does, but MongoDB is not checked at start-up. See the
deployment page of the documentation.
"""

from fastapi import FastAPI

from web_common.cli import configure_logging

from .app import create_app
from .config import Settings

__all__ = ["app_from_environment"]


def app_from_environment() -> FastAPI:
    """Build the chat playground from the environment (and ``.env``), for ``uvicorn --factory``.

    Raises:
        pydantic.ValidationError: A setting is invalid.
        ValueError: ``ENV=production`` without ``MONGODB_URI``.
    """
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
