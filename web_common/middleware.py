"""The security layer of both web apps: security headers, the ``Host`` allow-list and request-size caps.

`secure` installs them around the whole app, outside Starlette's own error handling, so that every response
carries the headers: the pages, the API's answers and errors, the refusals below, and the framework's own
404, 405 and 500. All three are plain ASGI (a streamed response stays streamed).
"""

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .hosts import HostAllowList
from .settings import WebSettings

__all__ = ["RequestSizeLimit", "SecurityHeaders", "TrustedHosts", "secure"]

logger = logging.getLogger(__name__)


def secure(app: FastAPI, settings: WebSettings, csp: str) -> FastAPI:
    """Wrap ``app`` in the security layer: headers outermost, then the ``Host`` check, then the size caps.

    Starlette builds its middleware stack on the first request with its error middleware outermost; the
    layer is put around that stack, so even the framework's own 500 carries the headers. An unhandled error
    is answered ``{"detail": "internal server error"}`` (500) and still logged by the server.

    Args:
        app: The app, with its routes and own middleware.
        settings: ``allowed_hosts``, ``max_request_bytes`` and the bound host.
        csp: The app's Content-Security-Policy.

    Returns:
        ``app`` itself (its state, routes and lifespan unchanged).
    """
    build_stack = app.build_middleware_stack
    hosts, variable, max_bytes = settings.host_allow_list, settings.allowed_hosts_variable, settings.max_request_bytes

    def build_secured_stack() -> ASGIApp:
        return SecurityHeaders(TrustedHosts(RequestSizeLimit(build_stack(), max_bytes), hosts, variable), csp)

    app.build_middleware_stack = build_secured_stack  # type: ignore[method-assign]
    app.add_exception_handler(Exception, _internal_error)
    return app


async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    """Answer an unhandled error with a JSON 500 (Starlette's error middleware still re-raises it, to be logged)."""
    return JSONResponse({"detail": "internal server error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


async def _refuse(status_code: int, detail: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``{"detail": detail}`` with ``status_code`` without calling the app."""
    response = JSONResponse({"detail": detail}, status_code=status_code)
    await response(scope, receive, send)


class SecurityHeaders:
    """Add a Content-Security-Policy and related headers to every response; API responses are never cached.

    A header the response already has is kept (a route may set its own ``Cache-Control``).
    """

    def __init__(self, app: ASGIApp, csp: str) -> None:
        """Wrap ``app``; ``csp`` is the Content-Security-Policy sent with every response."""
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                if is_api:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TrustedHosts:
    """Refuse a request whose ``Host`` header is not allowed with 400 (DNS rebinding); the port is ignored."""

    def __init__(self, app: ASGIApp, allowed: HostAllowList, variable: str = "ALLOWED_HOSTS") -> None:
        """Wrap ``app``; ``variable`` is the setting that adds names, named in the refusal."""
        self.app = app
        self.allowed = allowed
        self.variable = variable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the ``Host`` header before the app sees the request (the lifespan passes through)."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        if self.allowed.allows(host):
            await self.app(scope, receive, send)
            return
        logger.warning(
            "host=<%r> | path=<%s> | refused a request for a host not in %s", host, scope["path"], self.variable
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _refuse(status.HTTP_400_BAD_REQUEST, f"host not allowed (see {self.variable})", scope, receive, send)


class RequestSizeLimit:
    """Refuse a URL longer than ``max_bytes`` with 414 and a body longer than ``max_bytes`` with 413.

    A declared ``Content-Length`` is checked before the app runs; a streamed body is counted as the app reads
    it, and reading past the limit raises a 413 ``HTTPException`` (answered by the app's exception handling).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        """Wrap ``app``."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the URL and the declared body size before the app sees the request; count streamed bodies."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url_bytes > self.max_bytes:
            await _refuse(status.HTTP_414_URI_TOO_LONG, "request URL too long", scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None or declared > self.max_bytes:
            await _refuse(status.HTTP_413_CONTENT_TOO_LARGE, _TOO_LARGE, scope, receive, send)
            return

        received = 0
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(status.HTTP_413_CONTENT_TOO_LARGE, _TOO_LARGE)
            return message

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await _refuse(status.HTTP_413_CONTENT_TOO_LARGE, _TOO_LARGE, scope, receive, send)


_TOO_LARGE = "request body too large"


class _BodyTooLarge(HTTPException):
    """A streamed body went past the limit: an ``HTTPException``, so FastAPI's body parsing passes it on."""


def _content_length(scope: Scope) -> int | None:
    """The declared Content-Length (0 when absent), or None when it is not a valid number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return 0
