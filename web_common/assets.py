"""The browser files both apps serve: ``web_common/static/`` (``dom.js``: the ``el()`` helper) at one path."""

from pathlib import Path

from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

__all__ = ["COMMON_STATIC_DIR", "COMMON_STATIC_PATH", "mount_common"]

COMMON_STATIC_DIR = Path(__file__).resolve().parent / "static"
"""``web_common/static/``: plain ES modules, no build step."""

COMMON_STATIC_PATH = "/static/common"
"""Where both apps serve the shared files (``/static/common/dom.js``), so that a module imports them by one URL."""


def mount_common(app: Starlette) -> None:
    """Serve `COMMON_STATIC_DIR` at `COMMON_STATIC_PATH` (files only: a directory is a 404, never a listing).

    Mount it before any mount of ``/static`` itself: the first matching mount serves a request.
    """
    app.mount(COMMON_STATIC_PATH, StaticFiles(directory=COMMON_STATIC_DIR), name="common-static")
