"""Chat playground: a chat widget served by a streaming FastAPI backend on mongodb-session-manager."""

from .app import create_app
from .config import Settings

__all__ = ["Settings", "create_app"]
