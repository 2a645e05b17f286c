"""Embedded local development MongoDB server (optional extra ``embedded``, backed by SecantusDB).

One server per data directory: the first process takes ``<data_dir>/server.lock``, starts the server and
publishes its URI in ``<data_dir>/server.json``; other processes using the same directory reuse it.
Not for production: set ``MONGODB_URI`` (or pass a connection string) to use your own MongoDB.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

__all__ = ["default_connection_string", "ensure_embedded_server", "stop_embedded_server"]

logger = logging.getLogger(__name__)

_DEFAULT_DATA_DIR = ".mongodb-session-manager"
_DATA_DIR_ENV = "MONGODB_SESSION_MANAGER_DATA_DIR"
_REUSE_TIMEOUT_S = 10.0
_RETRY_INTERVAL_S = 0.1
_PING_TIMEOUT_MS = 1000

_state_lock = threading.Lock()
_server: Any = None
_uri: str | None = None
_lock_fd: int | None = None
_info_path: Path | None = None


def default_connection_string() -> str:
    """Return ``MONGODB_URI`` when set, otherwise the URI of the embedded development server."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        return uri
    return ensure_embedded_server()


def ensure_embedded_server(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start the embedded server for ``data_dir`` or reuse the one another process runs there; return its URI."""
    global _uri
    with _state_lock:
        if _uri is not None:
            return _uri
        root = _resolve_data_dir(data_dir)
        root.mkdir(parents=True, exist_ok=True)
        _write_gitignore(root)
        deadline = time.monotonic() + _REUSE_TIMEOUT_S
        while True:
            if _try_lock(root / "server.lock"):
                _uri = _start_server(root)
                return _uri
            info = _read_info(root / "server.json")
            if info is not None and _answers_ping(info["uri"]):
                logger.info(
                    "pid=<%s> | uri=<%s> | data_dir=<%s> | reusing embedded development MongoDB server",
                    info.get("pid"),
                    info["uri"],
                    root,
                )
                return str(info["uri"])
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"Another process holds the embedded MongoDB server lock in {root} but its server did not "
                    f"answer within {_REUSE_TIMEOUT_S:.0f} s. Stop that process, or set MONGODB_URI."
                )
            time.sleep(_RETRY_INTERVAL_S)


def stop_embedded_server() -> None:
    """Stop the embedded server this process started, if any; safe to call more than once."""
    global _server, _uri, _info_path
    with _state_lock:
        server, info_path = _server, _info_path
        _server = _uri = _info_path = None
        try:
            if info_path is not None:
                info_path.unlink(missing_ok=True)
            if server is not None:
                _stop_server(server)
                logger.debug("stopped embedded development MongoDB server")
        finally:
            _release_lock()


def _stop_server(server: Any) -> None:
    """Stop ``server``, first waking its accept thread so the port really closes and stop() does not stall."""
    # SecantusDB 0.7.0b3 only closes the listening socket in stop(); on Linux that does not wake a thread
    # blocked in accept(), so the port keeps accepting until the next client arrives and stop() waits 2 s.
    listener = getattr(server, "_socket", None)
    if listener is not None:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
    # Its storage persists the oplog position on close through a per-thread session that it refuses to open once
    # closing has begun: open this thread's session first, or a stop from another thread than the start (an app
    # that opened its first session in a worker thread) logs "Storage is closed".
    with contextlib.suppress(Exception):
        server.storage._session()
    server.stop()


def _resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """Return the absolute data directory: the argument, else the env var, else ``./.mongodb-session-manager``."""
    chosen = data_dir if data_dir is not None else os.environ.get(_DATA_DIR_ENV) or _DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


def _write_gitignore(root: Path) -> None:
    """Keep the data directory out of version control, like pytest and ruff do with their caches."""
    gitignore = root / ".gitignore"
    if not gitignore.exists():
        with contextlib.suppress(OSError):
            gitignore.write_text("# Created by mongodb-session-manager\n*\n")


def _try_lock(lock_path: Path) -> bool:
    """Take an exclusive non-blocking flock on ``lock_path`` and keep it; return False if another holds it."""
    global _lock_fd
    import fcntl  # POSIX only; imported here so that importing this module works everywhere

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _lock_fd = fd
    return True


def _start_server(root: Path) -> str:
    """Start the server on ``root/data`` (lock already held), publish ``server.json`` and register cleanup."""
    global _server, _info_path
    info_path = root / "server.json"
    try:
        info_path.unlink(missing_ok=True)  # left behind by a process that did not exit cleanly
        server = _import_server_class()(
            host="127.0.0.1",
            port=0,
            storage_path=str(root / "data"),
            sync_on_commit=True,  # every acknowledged write is journaled and fsynced
            durable=True,  # never let SECANTUS_TEST_FAST_STORAGE switch the journal off
        )
        try:
            server.start()
        except BaseException:
            server.stop()  # closes the storage opened by the constructor
            raise
    except BaseException:
        _release_lock()
        raise
    _server, _info_path = server, info_path
    atexit.unregister(stop_embedded_server)  # register once even after a stop/start cycle
    atexit.register(stop_embedded_server)
    _write_json_atomically(info_path, {"pid": os.getpid(), "uri": server.uri})
    logger.warning(
        "uri=<%s> | data_dir=<%s> | started embedded development MongoDB server "
        "(not for production; set MONGODB_URI to use your own)",
        server.uri,
        root,
    )
    return str(server.uri)


def _release_lock() -> None:
    """Release the data directory lock if this process holds it."""
    global _lock_fd
    if _lock_fd is not None:
        os.close(_lock_fd)  # closing the descriptor releases the flock
        _lock_fd = None


def _import_server_class() -> Any:
    """Import SecantusDB lazily, explaining how to get it when it is missing."""
    try:
        from secantus import SecantusDBServer
    except ImportError as exc:
        raise ImportError(
            "The embedded development MongoDB server needs SecantusDB: "
            'pip install "mongodb-session-manager[embedded]". '
            "Or set MONGODB_URI / pass connection_string to use your own MongoDB."
        ) from exc
    return SecantusDBServer


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` so readers never see a partial file."""
    tmp_path = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp_path.write_text(json.dumps(payload))
    os.replace(tmp_path, path)


def _read_info(path: Path) -> dict[str, Any] | None:
    """Return the contents of ``server.json``, or None while it is missing or unreadable."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("uri"), str) else None


def _answers_ping(uri: str) -> bool:
    """Return True if the MongoDB server at ``uri`` answers a ``ping``."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=_PING_TIMEOUT_MS, connectTimeoutMS=_PING_TIMEOUT_MS
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True
