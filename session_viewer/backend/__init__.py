"""Session Viewer backend: a FastAPI app that searches sessions and shows their timelines.

``create_app`` and ``Settings`` are imported on first use, so that ``session-viewer`` can explain a missing
``viewer`` extra in one line instead of failing on import.
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
