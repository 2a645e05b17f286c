"""Access control as FastAPI dependencies: the backend password, or one session's viewer password.

Wrong passwords are throttled (``web_common.throttle``): after ``PASSWORD_MAX_FAILURES`` wrong ones within
``PASSWORD_FAILURE_WINDOW_SECONDS`` from one client, or for one session, further attempts are answered 429 with
``Retry-After`` without checking the password, until the oldest counted failure is older than the window. Only a
presented password counts (a request with none is a plain 401). A blocked session still opens with the backend
password, whose guesses count per client, so an attacker cannot lock the operator out of a session.

An encrypted session's viewer password is stored encrypted: the viewer decrypts it with its key access. Without
that access (or after the session's keys were erased) no session password matches: only the backend password
opens the session.
"""

import asyncio
import logging
import secrets
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
from pymongo.asynchronous.collection import AsyncCollection

from mongodb_session_manager.encryption import is_encrypted
from web_common.throttle import PasswordThrottle

from .database import get_collection, get_revealer
from .encryption import Revealer

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


def _too_many_attempts(retry_after: int) -> HTTPException:
    """429 with ``Retry-After``: the password was not checked."""
    return HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many wrong passwords: try again in {retry_after} seconds",
        headers={"Retry-After": str(retry_after)},
    )


def _throttle(request: Request) -> PasswordThrottle:
    throttle: PasswordThrottle = request.app.state.password_throttle
    return throttle


def _client(request: Request) -> str:
    """The client's address (the real one behind a proxy only with uvicorn's ``--proxy-headers``)."""
    return request.client.host if request.client else "unknown"


def _refuse_blocked_client(request: Request, client: str) -> None:
    """Raise 429 when ``client`` has too many recent failures."""
    retry_after = _throttle(request).clients.retry_after(client)
    if retry_after is not None:
        logger.debug("client=<%s> | retry_after=<%d> | throttled password attempt", client, retry_after)
        raise _too_many_attempts(retry_after)


def _refuse_blocked_session(request: Request, session_id: str) -> None:
    """Raise 429 when ``session_id`` has too many recent wrong session passwords."""
    retry_after = _throttle(request).resources.retry_after(session_id)
    if retry_after is not None:
        logger.debug("session_id=<%s> | retry_after=<%d> | throttled session password", session_id, retry_after)
        raise _too_many_attempts(retry_after)


def _record_failure(request: Request, client: str, session_id: str | None = None) -> None:
    """Count a wrong password of ``client`` (and against ``session_id`` when given)."""
    throttle = _throttle(request)
    if throttle.clients.record_failure(client) is not None:
        logger.warning("client=<%s> | too many wrong passwords, throttled", client)
    if session_id is not None and throttle.resources.record_failure(session_id) is not None:
        logger.warning("session_id=<%s> | too many wrong passwords for this session, throttled", session_id)


def _admit_backend_password(request: Request, client: str, authorization: str | None) -> bool:
    """Whether the request carries the backend password; a throttled client is refused first (429, unchecked).

    The right password clears the client's failures; a wrong bearer token counts as one.
    """
    _refuse_blocked_client(request, client)
    if _has_backend_password(request, authorization):
        _throttle(request).clients.clear(client)
        return True
    if _bearer_token(authorization) is not None:
        _record_failure(request, client)
    return False


async def require_backend_password(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Dependency: allow only requests carrying ``Authorization: Bearer <BACKEND_PASSWORD>``.

    Raises:
        HTTPException: 429 while the client is throttled (the password is not checked), else 401 without the
            right password.
    """
    client = _client(request)
    if _admit_backend_password(request, client, authorization):
        return
    logger.info("path=<%s> | refused request without the backend password", request.url.path)
    raise _unauthorized("backend password required")


async def require_session_access(
    session_id: str,
    request: Request,
    collection: Annotated[AsyncCollection[Any], Depends(get_collection)],
    revealer: Annotated[Revealer, Depends(get_revealer)],
    authorization: Annotated[str | None, Header()] = None,
    x_session_password: Annotated[str | None, Header()] = None,
) -> None:
    """Dependency: allow the backend password, or ``X-Session-Password`` of this very session.

    A missing session and a wrong password look the same (401) to a caller without the backend password. A
    right session password does not clear the client's failures: knowing one session's password must not reset
    the budget for guessing others.

    Raises:
        HTTPException: 429 while the client or (for a session password) the session is throttled, the password
            unchecked; else 401 without a right password.
    """
    client = _client(request)
    if _admit_backend_password(request, client, authorization):
        return
    _refuse_blocked_session(request, session_id)
    if x_session_password:
        document = await collection.find_one({"_id": session_id}, {"session_viewer_password": 1})
        stored = document.get("session_viewer_password") if document else None
        if is_encrypted(stored):  # an encrypted session's: decrypted with the viewer's key access, if it has one
            stored = await asyncio.to_thread(revealer.open, session_id, stored)
        # Concurrent attempts may have failed while this one waited: check again, then compare and count at once.
        _refuse_blocked_client(request, client)
        _refuse_blocked_session(request, session_id)
        if _matches(x_session_password, stored if isinstance(stored, str) else None):
            return
        _record_failure(request, client, session_id)
    logger.info("session_id=<%s> | refused session access", session_id)
    raise _unauthorized("backend password or this session's viewer password required")
