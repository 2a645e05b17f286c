"""Embedded local development MongoDB server (optional extra ``embedded``, backed by SecantusDB).

The server runs as its own background process, one per data directory, shared by every local process that
uses that directory and outliving the process that started it. The first process that needs it starts it
(under ``<data_dir>/start.lock``, so two processes racing get one server); the others find it through
``<data_dir>/server.json``. It stops on `stop_embedded_server` (``mongodb-session-manager embedded stop``),
on SIGTERM/SIGINT, or after ``MONGODB_SESSION_MANAGER_IDLE_TIMEOUT`` seconds (default 1800, 0 = never)
without any client connection. Every acknowledged write is journaled, so it survives any stop, even a kill.

The data directory is ``MONGODB_SESSION_MANAGER_DATA_DIR``, else ``$XDG_DATA_HOME/mongodb-session-manager``,
else ``~/.local/share/mongodb-session-manager``: the same wherever a program runs from.
Not for production: set ``MONGODB_URI`` (or pass a connection string) to use your own MongoDB.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from ._embedded_server import EXIT_ALREADY_RUNNING, INFO_FILE, LOCK_FILE, LOG_FILE

__all__ = [
    "default_connection_string",
    "embedded_data_dir",
    "embedded_status",
    "ensure_embedded_server",
    "stop_embedded_server",
]

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "MONGODB_SESSION_MANAGER_DATA_DIR"
IDLE_TIMEOUT_ENV = "MONGODB_SESSION_MANAGER_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT_S = 1800.0
"""The server stops after this many seconds without any client connection (30 minutes)."""

_START_LOCK_FILE = "start.lock"
_START_TIMEOUT_S = 60.0
_POLL_S = 0.05
_PING_TIMEOUT_MS = 1000
_APP_NAME = "mongodb-session-manager embedded"  # our own probes, left out of the connections listed
_SERVER_SCRIPT = Path(__file__).with_name("_embedded_server.py")


def default_connection_string() -> str:
    """Return ``MONGODB_URI`` when set, otherwise the URI of the embedded development server."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        return uri
    return ensure_embedded_server()


def embedded_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the absolute data directory: ``data_dir``, else ``MONGODB_SESSION_MANAGER_DATA_DIR``, else per user.

    The per-user default is ``$XDG_DATA_HOME/mongodb-session-manager`` (``~/.local/share/mongodb-session-manager``
    when ``XDG_DATA_HOME`` is unset), so every program finds the same server wherever it runs from.
    """
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not chosen:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path("~/.local/share").expanduser()
        chosen = base / "mongodb-session-manager"
    return Path(chosen).expanduser().resolve()


def ensure_embedded_server(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Return the URI of the embedded server for ``data_dir``, starting it in the background if none runs.

    Raises:
        ImportError: SecantusDB (the ``embedded`` extra) is not installed.
        RuntimeError: the server did not start, or a server process holds the directory but does not answer.
        ValueError: ``MONGODB_SESSION_MANAGER_IDLE_TIMEOUT`` is not a number of seconds.
    """
    root = embedded_data_dir(data_dir)
    info = _live_info(root)
    if info is not None:
        _log_reuse(info)
        return str(info["uri"])
    idle_timeout = _idle_timeout()
    _require_secantus()
    root.mkdir(parents=True, exist_ok=True)
    _write_gitignore(root)
    with _start_lock(root):
        info = _live_info(root) or _wait_for_other_server(root)
        if info is not None:
            _log_reuse(info)
            return str(info["uri"])
        info = _start_server(root, idle_timeout)
    logger.warning(
        "pid=<%s> | uri=<%s> | data_dir=<%s> | started embedded development MongoDB server "
        "(not for production; set MONGODB_URI to use your own)",
        info["pid"],
        info["uri"],
        root,
    )
    return str(info["uri"])


def stop_embedded_server(data_dir: str | os.PathLike[str] | None = None, timeout: float = 10.0) -> bool:
    """Stop the embedded server of ``data_dir`` (SIGTERM, then wait until it has exited); safe to repeat.

    Returns:
        True if a server was running and has stopped, False if none was running.

    Raises:
        TimeoutError: the server did not exit within ``timeout`` seconds (its pid is in the message).
    """
    root = embedded_data_dir(data_dir)
    deadline = time.monotonic() + timeout
    while (pid := _lock_holder(root)) == 0 and time.monotonic() < deadline:
        time.sleep(_POLL_S)  # a server in its first instants: its pid is not written yet
    if pid is None:
        _remove_stale_info(root)
        return False
    if pid > 0:  # never 0: os.kill(0, ...) would signal this process's own group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    while _lock_holder(root) is not None:
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"The embedded MongoDB server (pid {pid}, data in {root}) did not stop within {timeout:g} s; "
                f"kill it with `kill -9 {pid}` (acknowledged writes are journaled)."
            )
        time.sleep(_POLL_S)
    logger.info("pid=<%s> | data_dir=<%s> | stopped embedded development MongoDB server", pid, root)
    return True


def embedded_status(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Describe the embedded server of ``data_dir``: state, where it listens, its pid and who is connected.

    Returns:
        A dict with ``state`` (``"running"``, ``"stopped"`` or ``"not answering"``: a server process holds
        the directory but does not answer, e.g. while it starts or stops), ``data_dir``, ``log_file``,
        ``uri``, ``port``, ``pid``, ``started_at``, ``idle_timeout_s`` (None while not running) and
        ``connections``: one dict per client connection (``client`` address, ``pid`` and ``process`` of the
        local process that owns it when this user may see it, ``app_name``, ``driver``, ``connected_at``,
        ``last_command``), this call's own connections left out.
    """
    root = embedded_data_dir(data_dir)
    status: dict[str, Any] = {
        "state": "stopped",
        "data_dir": str(root),
        "log_file": str(root / LOG_FILE),
        "uri": None,
        "port": None,
        "pid": None,
        "started_at": None,
        "idle_timeout_s": None,
        "connections": [],
    }
    pid = _lock_holder(root)
    if pid is None:
        return status
    status.update(state="not answering", pid=pid)
    info = _read_info(root)
    if info is None or info.get("pid") != pid:
        return status
    for key in ("uri", "port", "started_at", "idle_timeout_s"):
        status[key] = info.get(key)
    try:
        status["connections"] = _connections(info["uri"])
    except PyMongoError:
        return status
    status["state"] = "running"
    return status


# ----------------------------------------------------------------- starting


def _start_server(root: Path, idle_timeout: float) -> dict[str, Any]:
    """Start the server process for ``root`` (start lock held, no server running); return once it answers."""
    (root / INFO_FILE).unlink(missing_ok=True)  # left by a server that was killed
    log_path = root / LOG_FILE
    if log_path.exists():
        os.replace(log_path, log_path.with_name(LOG_FILE + ".1"))  # keep the previous run's log
    with open(log_path, "ab") as log:
        try:
            status = subprocess.run(
                _server_command(root, idle_timeout, detach=True),  # returns once the forked server serves
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in the caller's process group: Ctrl+C or its exit leave it running
                timeout=_START_TIMEOUT_S,
            ).returncode
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"The embedded MongoDB server did not start within {_START_TIMEOUT_S:g} s; see {log_path}, "
                "or set MONGODB_URI to use your own MongoDB."
            ) from None
    info = _live_info(root) if status == 0 else None
    if info is None:
        raise RuntimeError(_start_failure(root, status))
    return info


def _server_command(root: Path, idle_timeout: float, *, detach: bool = False) -> list[str]:
    """Return the command line of the server process for ``root``."""
    command = [sys.executable, "-P", str(_SERVER_SCRIPT), str(root), "--idle-timeout", f"{idle_timeout:g}"]
    return [*command, "--detach"] if detach else command


def _start_failure(root: Path, status: int) -> str:
    """Say why the server process exited during start-up, from the last line of its log."""
    log_path = root / LOG_FILE
    if status == EXIT_ALREADY_RUNNING:
        return f"Another embedded MongoDB server holds {root}; run `mongodb-session-manager embedded status`."
    if status == 0:
        return f"The embedded MongoDB server started but does not answer; see {log_path}, or set MONGODB_URI."
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    last = lines[-1].strip() if lines else "no output"
    return f"The embedded MongoDB server exited during start-up (status {status}): {last}. Full log: {log_path}"


def _wait_for_other_server(root: Path) -> dict[str, Any] | None:
    """Wait while a server process holds ``root`` without answering; return its info once it answers.

    Returns None once no server process holds the directory (it exited: a new one may start).
    """
    deadline = time.monotonic() + _START_TIMEOUT_S
    while (pid := _lock_holder(root)) is not None:
        info = _live_info(root)
        if info is not None:
            return info
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"The embedded MongoDB server (pid {pid}, data in {root}) does not answer; stop it with "
                "`mongodb-session-manager embedded stop` (or kill it), or set MONGODB_URI."
            )
        time.sleep(_POLL_S)
    return None


@contextlib.contextmanager
def _start_lock(root: Path) -> Iterator[None]:
    """Hold ``<root>/start.lock`` while checking for a server and starting one (one starter at a time)."""
    import fcntl  # POSIX only; imported here so that importing this module works everywhere

    fd = os.open(root / _START_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + 2 * _START_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"Another process has been starting the embedded MongoDB server in {root} for "
                        f"{2 * _START_TIMEOUT_S:g} s; stop it, or set MONGODB_URI."
                    ) from None
                time.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _idle_timeout() -> float:
    """Return the idle timeout in seconds from ``MONGODB_SESSION_MANAGER_IDLE_TIMEOUT`` (0 = never)."""
    raw = os.environ.get(IDLE_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{IDLE_TIMEOUT_ENV} must be a number of seconds >= 0 (0 = never stop), not {raw!r}")
    return seconds


def _require_secantus() -> None:
    """Explain how to get SecantusDB when it is not installed (without importing it)."""
    try:
        found = importlib.util.find_spec("secantus") is not None
    except ValueError:  # a placeholder in sys.modules
        found = False
    if not found:
        raise ImportError(
            "The embedded development MongoDB server needs SecantusDB: "
            'pip install "mongodb-session-manager[embedded]". '
            "Or set MONGODB_URI / pass connection_string to use your own MongoDB."
        )


def _write_gitignore(root: Path) -> None:
    """Keep the data directory out of version control if it is put inside a repository."""
    gitignore = root / ".gitignore"
    if not gitignore.exists():
        with contextlib.suppress(OSError):
            gitignore.write_text("# Created by mongodb-session-manager\n*\n")


def _log_reuse(info: dict[str, Any]) -> None:
    """Log that this process uses a server that was already running."""
    logger.info(
        "pid=<%s> | uri=<%s> | data_dir=<%s> | reusing embedded development MongoDB server",
        info.get("pid"),
        info["uri"],
        info.get("data_dir"),
    )


# ----------------------------------------------------------------- finding the running server


def _lock_holder(root: Path) -> int | None:
    """Return the pid of the server process holding ``<root>/server.lock``, or None when no server runs.

    Returns 0 for a holder that has not written its pid yet (a server in its first microseconds).
    """
    import fcntl

    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: probes never block each other
        except BlockingIOError:
            content = os.pread(fd, 32, 0).strip()
            return int(content) if content.isdigit() else 0
        return None
    finally:
        os.close(fd)


def _live_info(root: Path) -> dict[str, Any] | None:
    """Return ``server.json`` when the process it names holds the directory and answers a ping, else None."""
    info = _read_info(root)
    if info is None or _lock_holder(root) != info.get("pid"):
        return None  # missing, or left by a server that is gone (its port may belong to another one now)
    return info if _answers_ping(info["uri"]) else None


def _read_info(root: Path) -> dict[str, Any] | None:
    """Return the contents of ``server.json``, or None while it is missing or unreadable."""
    try:
        info = json.loads((root / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("uri"), str) else None


def _remove_stale_info(root: Path) -> None:
    """Remove the ``server.json`` of a server that is no longer running (no process holds the lock)."""
    if (root / INFO_FILE).exists() and _lock_holder(root) is None:
        (root / INFO_FILE).unlink(missing_ok=True)


def _probe_client(uri: str) -> MongoClient[dict[str, Any]]:
    """Return a short-lived client for our own probes, named so that `embedded_status` can leave it out."""
    return MongoClient(
        uri,
        directConnection=True,
        appname=_APP_NAME,
        serverSelectionTimeoutMS=_PING_TIMEOUT_MS,
        connectTimeoutMS=_PING_TIMEOUT_MS,
    )


def _answers_ping(uri: str) -> bool:
    """Return True if the MongoDB server at ``uri`` answers a ``ping``."""
    client = _probe_client(uri)
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


# ----------------------------------------------------------------- who is connected


def _connections(uri: str) -> list[dict[str, Any]]:
    """List the server's client connections (``currentOp``), with the local process owning each one."""
    client = _probe_client(uri)
    try:
        operations = client.admin.command("currentOp")["inprog"]
    finally:
        client.close()
    server_port = int(uri.rstrip("/").rsplit(":", 1)[1])
    entries = [op for op in operations if op.get("type") == "op" and _app_name(op) != _APP_NAME]
    ports = {int(str(op.get("client", ":0")).rsplit(":", 1)[1]) for op in entries}
    owners = _local_socket_owners(ports, server_port)
    connections = []
    for op in entries:
        metadata = op.get("clientMetadata") or {}
        port = int(str(op.get("client", ":0")).rsplit(":", 1)[1])
        pid = owners.get(port)
        connections.append(
            {
                "client": op.get("client"),
                "pid": pid,
                "process": _command_line(pid) if pid is not None else None,
                "app_name": _app_name(op),
                "driver": _driver(metadata.get("driver")),
                "connected_at": op.get("currentOpTime"),
                "last_command": op.get("op"),
            }
        )
    return connections


def _app_name(op: dict[str, Any]) -> str | None:
    """Return the application name a client sent in its handshake, if any."""
    application = (op.get("clientMetadata") or {}).get("application") or {}
    name = application.get("name")
    return str(name) if name is not None else None


def _driver(driver: Any) -> str | None:
    """Return ``"PyMongo 4.10.1"`` from a handshake's driver field (``{"name": "PyMongo|c", ...}``)."""
    if not isinstance(driver, dict):
        return None
    parts = [str(driver.get(key) or "").split("|", 1)[0] for key in ("name", "version")]
    return " ".join(part for part in parts if part) or None


def _local_socket_owners(ports: set[int], server_port: int) -> dict[int, int]:
    """Map the local ports of TCP connections to ``server_port`` to the pids owning them (Linux only).

    Reads ``/proc/net/tcp*`` for the sockets and ``/proc/<pid>/fd`` for their owners: processes of
    other users are not visible, and on other systems the result is empty.
    """
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port in ports and remote_port == server_port:
                inodes[f"socket:[{fields[9]}]"] = local_port
    owners: dict[int, int] = {}
    if not inodes:
        return owners
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        with contextlib.suppress(OSError), os.scandir(process / "fd") as descriptors:
            for descriptor in descriptors:
                with contextlib.suppress(OSError):
                    port = inodes.get(os.readlink(descriptor.path))
                    if port is not None:
                        owners[port] = int(process.name)
    return owners


def _command_line(pid: int) -> str | None:
    """Return the command line of process ``pid`` (Linux), shortened, or None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    words = [word.decode(errors="replace") for word in raw.split(b"\0") if word]
    words[:1] = [Path(words[0]).name] if words else []
    line = " ".join(" ".join(words).split())  # one line, even for `python -c "<several lines>"`
    return line if len(line) <= 100 else line[:99] + "…"
