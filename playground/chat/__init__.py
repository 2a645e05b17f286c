"""Chat playground: a chat widget served by a streaming FastAPI backend on mongodb-session-manager.

``create_app`` and ``Settings`` are imported on first use, so that ``playground`` can explain a missing
``playground`` extra in one line instead of failing on import.
"""

from typing import Any

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .config import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
