"""Start-up checks of the local programs (Session Viewer, playground, examples): short failures, not tracebacks.

Each check raises `StartupError` with one line that says what failed, where, and what to do:

- `reachable_mongodb`: the configured MongoDB (``MONGODB_URI``) or the embedded development server (started
  if needed) answers a ping within ``serverSelectionTimeoutMS`` (default `SERVER_SELECTION_TIMEOUT_MS`, 5 s,
  rather than pymongo's 30 s); a missing ``embedded`` extra is reported the same way.
- `listening_socket`: the address to serve on is free (the bound socket is handed to the web server).

`short_failures` prints a `StartupError` as ``<program>: <message>`` on stderr and exits with status 1;
with ``--debug`` on the command line or ``LOG_LEVEL=DEBUG`` it lets the traceback through instead.
`require_mongodb` is the one-line form the examples use.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo import MongoClient
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

__all__ = [
    "SERVER_SELECTION_TIMEOUT_MS",
    "StartupError",
    "debug_requested",
    "describe_uri",
    "listening_socket",
    "reachable_mongodb",
    "require_mongodb",
    "short_failures",
]

SERVER_SELECTION_TIMEOUT_MS = 5000
"""How long a local program waits for an unreachable MongoDB (``serverSelectionTimeoutMS`` in the URI wins)."""

_CREDENTIALS = re.compile(r"//[^@/]*@")
_TIMEOUT_IN_URI = re.compile(r"[?&]serverSelectionTimeoutMS=(\d+)", re.IGNORECASE)
_URI_HINT = "check MONGODB_URI, or unset it to use the embedded development server"


class StartupError(Exception):
    """A local program cannot start; the message is one line: what failed, where, and what to do."""


def describe_uri(uri: str) -> str:
    """Return ``uri`` without credentials and options, safe to print."""
    return _CREDENTIALS.sub("//", uri.split("?", 1)[0])


def debug_requested() -> bool:
    """Whether the user asked for tracebacks: ``--debug`` among the arguments, or ``LOG_LEVEL=DEBUG``."""
    return "--debug" in sys.argv[1:] or os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"


def reachable_mongodb(uri: str | None = None, timeout_ms: int | None = None, hint: str = _URI_HINT) -> str:
    """Return the URI of a MongoDB that answers: ``uri``, else ``MONGODB_URI``, else the embedded server.

    Args:
        uri: The configured connection string; None or empty falls back to ``MONGODB_URI`` and then to the
            embedded development server (started in the background if none runs).
        timeout_ms: How long to wait for the server; default ``serverSelectionTimeoutMS`` of the URI, else
            `SERVER_SELECTION_TIMEOUT_MS`.
        hint: What the user should check when the server does not answer.

    Raises:
        StartupError: The server did not answer in time, the URI is invalid, or the embedded server cannot
            start (the ``embedded`` extra is missing, or its process does not answer).
    """
    resolved = uri or os.environ.get("MONGODB_URI") or _embedded_uri()
    in_uri = _TIMEOUT_IN_URI.search(resolved)
    wait_ms = timeout_ms if timeout_ms is not None else int(in_uri.group(1)) if in_uri else SERVER_SELECTION_TIMEOUT_MS
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(resolved, serverSelectionTimeoutMS=wait_ms, connect=False)
    except (ConfigurationError, ValueError, TypeError) as error:
        raise StartupError(f"invalid MongoDB URI {describe_uri(resolved)!r} ({_first_line(error)}); {hint}") from error
    try:
        client.admin.command("ping")
    except OperationFailure as error:  # it answered, with a refusal (authentication, authorization, ...)
        reason = (error.details or {}).get("errmsg") or _first_line(error)
        raise StartupError(f"MongoDB at {describe_uri(resolved)} refused the connection ({reason}); {hint}") from error
    except PyMongoError as error:
        raise StartupError(
            f"MongoDB at {describe_uri(resolved)} did not answer within {wait_ms / 1000:g} s ({_cause(error)}); {hint}"
        ) from error
    finally:
        client.close()
    return resolved


def listening_socket(host: str, port: int, hint: str = "choose another with --port") -> socket.socket:
    """Bind and return a listening TCP socket on ``host:port`` (port 0: a free one), for the web server.

    Raises:
        StartupError: The address is in use or cannot be bound.
    """
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except OSError as error:
        raise StartupError(f"cannot listen on {host}:{port} ({_first_line(error)}); check the host name") from error
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        reason = "the port is in use" if error.errno in _IN_USE else _first_line(error)
        raise StartupError(f"cannot listen on {host}:{port}: {reason}; stop the program using it or {hint}") from error
    sock.set_inheritable(True)
    return sock


@contextmanager
def short_failures(program: str, debug: bool | None = None) -> Iterator[None]:
    """Turn a `StartupError` into ``<program>: <message>`` on stderr and exit status 1.

    Args:
        program: Name to start the line with (``session-viewer``, ``quickstart``, ...).
        debug: Let the exception and its traceback through; default `debug_requested`.
    """
    try:
        yield
    except StartupError as error:
        if debug if debug is not None else debug_requested():
            raise
        print(f"{program}: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def require_mongodb(program: str, uri: str | None = None, timeout_ms: int | None = None) -> str:
    """Return the URI of a MongoDB that answers, or print one line and exit 1 (see `reachable_mongodb`).

    An example calls it first, so that a wrong ``MONGODB_URI`` costs a few seconds and one line.
    """
    with short_failures(program):
        uri = reachable_mongodb(uri, timeout_ms)
    return str(uri)


_IN_USE = {98, 48, 10048}  # EADDRINUSE on Linux, macOS, Windows


def _embedded_uri() -> str:
    """The embedded development server's URI, started if needed; its failures as `StartupError`."""
    try:
        from .embedded import ensure_embedded_server

        return ensure_embedded_server()
    except (ImportError, RuntimeError, ValueError) as error:
        raise StartupError(_first_line(error)) from error


def _cause(error: PyMongoError) -> str:
    """The reason pymongo gives, without its timeouts and topology description."""
    return _first_line(error).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
