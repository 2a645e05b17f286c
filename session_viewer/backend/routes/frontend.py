"""The frontend: ``/`` serves ``frontend/index.html``, ``/static/<path>`` serves ``frontend/<path>``.

``/static/common/<path>`` serves the files the playground shares (``web_common/static/``, e.g. ``dom.js``).
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from web_common.assets import mount_common

__all__ = ["FRONTEND_DIR", "mount_frontend"]

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
"""``session_viewer/frontend/``: static files, no build step."""


def mount_frontend(app: FastAPI, directory: Path = FRONTEND_DIR) -> None:
    """Serve the frontend's index page at ``/`` and its files under ``/static``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        page = directory / "index.html"
        if not page.is_file():
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="frontend not found")
        return FileResponse(page, media_type="text/html")

    app.include_router(router)
    mount_common(app)  # before /static: the first matching mount serves
    app.mount("/static", StaticFiles(directory=directory, check_dir=False), name="static")
