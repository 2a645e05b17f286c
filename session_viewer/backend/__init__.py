"""Session Viewer backend: a FastAPI app that searches sessions and shows their timelines."""

from .app import create_app
from .config import Settings

__all__ = ["Settings", "create_app"]
