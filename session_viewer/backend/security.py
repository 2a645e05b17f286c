"""Access control as FastAPI dependencies: the backend password, or one session's viewer password."""

import logging
import secrets
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
from pymongo.asynchronous.collection import AsyncCollection

from .database import get_collection

__all__ = ["require_backend_password", "require_session_access"]

logger = logging.getLogger(__name__)

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def _bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(provided: str | None, expected: str | None) -> bool:
    """Compare secrets in constant time; a missing side never matches."""
    if provided is None or not expected:
        return False
    return secrets.compare_digest(provided.encode("utf-8"), expected.encode("utf-8"))


def _has_backend_password(request: Request, authorization: str | None) -> bool:
    settings = request.app.state.settings
    return _matches(_bearer_token(authorization), settings.backend_password.get_secret_value())


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_UNAUTHORIZED_HEADERS)


async def require_backend_password(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Dependency: allow only requests carrying ``Authorization: Bearer <BACKEND_PASSWORD>``."""
    if not _has_backend_password(request, authorization):
        logger.info("path=<%s> | refused request without the backend password", request.url.path)
        raise _unauthorized("backend password required")


async def require_session_access(
    session_id: str,
    request: Request,
    collection: Annotated[AsyncCollection[Any], Depends(get_collection)],
    authorization: Annotated[str | None, Header()] = None,
    x_session_password: Annotated[str | None, Header()] = None,
) -> None:
    """Dependency: allow the backend password, or ``X-Session-Password`` of this very session.

    A missing session and a wrong password look the same (401) to a caller without the backend password.
    """
    if _has_backend_password(request, authorization):
        return
    if x_session_password:
        document = await collection.find_one({"_id": session_id}, {"session_viewer_password": 1})
        stored = document.get("session_viewer_password") if document else None
        if _matches(x_session_password, stored if isinstance(stored, str) else None):
            return
    logger.info("session_id=<%s> | refused session access", session_id)
    raise _unauthorized("backend password or this session's viewer password required")
