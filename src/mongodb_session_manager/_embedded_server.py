"""The embedded development MongoDB server process (SecantusDB), one per data directory.

`mongodb_session_manager.embedded` starts it as ``python -P <this file> DATA_DIR --idle-timeout S --detach``.
It runs as a script (not ``-m``) so that it imports only the standard library and SecantusDB, not the
package and strands: it starts in about a second. While it runs it holds an exclusive ``flock`` on
``DATA_DIR/server.lock`` (which holds its pid), so a second server for the same directory refuses to
start, and ``DATA_DIR/server.json`` says where it listens. It stops cleanly (exit status 0) on SIGTERM or
SIGINT and after ``--idle-timeout`` seconds without any client connection (0: never).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOCK_FILE = "server.lock"
INFO_FILE = "server.json"
LOG_FILE = "server.log"
STORAGE_DIR = "data"
EXIT_ALREADY_RUNNING = 3
"""Exit status when another server already holds the data directory."""

_LOCK_RETRY_S = 1.0  # a client probing the lock holds it for microseconds: retry that long before refusing
_POLL_S = 0.25

logger = logging.getLogger("mongodb_session_manager.embedded.server")


def main(argv: list[str] | None = None) -> int:
    """Run the server for the data directory in ``argv`` until it is told to stop or stays idle; return 0.

    With ``--detach`` the process forks: the parent exits as soon as the child serves (0) or fails
    (1, or 3 when another server holds the directory), and the child, no longer anyone's child but
    init's, serves. Whoever started it then has no child process to wait for.
    """
    parser = argparse.ArgumentParser(description="Embedded development MongoDB server (SecantusDB).")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--idle-timeout", type=float, default=0.0, help="seconds without clients, 0 = never")
    parser.add_argument("--detach", action="store_true", help="return once serving; serve in a forked process")
    args = parser.parse_args(argv)
    ready_fd = None
    if args.detach:
        read_end, ready_fd = os.pipe()
        if os.fork():
            os.close(ready_fd)
            return _wait_until_ready(read_end)
        os.close(read_end)
    stop = threading.Event()
    reason: list[str] = []

    def request_stop(signum: int, _frame: Any) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = args.data_dir.resolve()
    if take_lifetime_lock(root / LOCK_FILE) is None:
        logger.error("data_dir=<%s> | another embedded server already serves this data directory", root)
        _tell(ready_fd, b"busy")
        return EXIT_ALREADY_RUNNING
    serve(root, idle_timeout=args.idle_timeout, stop=stop, reason=reason, on_ready=lambda: _tell(ready_fd, b"ready"))
    return 0  # the lock is released when the process exits: a free lock means the server is gone


def _wait_until_ready(read_end: int) -> int:
    """Return 0 once the forked server says it serves, 3 if the directory is taken, 1 if it died first."""
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()  # until the server writes its answer and closes, or exits
    return {b"ready": 0, b"busy": EXIT_ALREADY_RUNNING}.get(answer, 1)


def _tell(fd: int | None, answer: bytes) -> None:
    """Send ``answer`` to the process waiting for this server to be ready, if any."""
    if fd is not None:
        os.write(fd, answer)
        os.close(fd)


def take_lifetime_lock(lock_path: Path) -> int | None:
    """Take an exclusive ``flock`` on ``lock_path``, write this pid in it, return the descriptor (None: taken)."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + _LOCK_RETRY_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def serve(
    root: Path,
    *,
    idle_timeout: float,
    stop: threading.Event,
    reason: list[str],
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Open the storage, listen on 127.0.0.1, publish ``server.json`` and serve until ``stop`` or idle."""
    from secantus import SecantusDBServer

    server = SecantusDBServer(
        host="127.0.0.1",
        port=0,
        storage_path=str(root / STORAGE_DIR),
        sync_on_commit=True,  # every acknowledged write is journaled and fsynced
        durable=True,  # never let SECANTUS_TEST_FAST_STORAGE switch the journal off
    )
    info_path = root / INFO_FILE
    try:
        server.start()
        info = {
            "pid": os.getpid(),
            "uri": server.uri,
            "port": server.port,
            "data_dir": str(root),
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "idle_timeout_s": idle_timeout,
        }
        write_json_atomically(info_path, info)
        logger.info("pid=<%s> | uri=<%s> | data_dir=<%s> | serving", os.getpid(), server.uri, root)
        on_ready()
        if not _wait_until_stopped(server, stop, idle_timeout):
            reason.append(f"idle for {idle_timeout:g} s")
    finally:
        if _read_pid(info_path) == os.getpid():
            info_path.unlink(missing_ok=True)  # first, so that no new client picks a server that is stopping
        _stop(server)
    logger.info("pid=<%s> | data_dir=<%s> | reason=<%s> | stopped", os.getpid(), root, ", ".join(reason))


def _wait_until_stopped(server: Any, stop: threading.Event, idle_timeout: float) -> bool:
    """Wait for ``stop``; return True when it was set, False after ``idle_timeout`` s with no connection."""
    metrics = server.metrics
    seen_total = metrics.connections_total
    idle_since = time.monotonic()
    while not stop.wait(_POLL_S):
        total = metrics.connections_total
        if metrics.connections_current or total != seen_total:
            seen_total, idle_since = total, time.monotonic()
        elif idle_timeout > 0 and time.monotonic() - idle_since >= idle_timeout:
            return False
    return True


def _stop(server: Any) -> None:
    """Stop ``server``, first waking its accept thread so that ``stop()`` does not wait 2 s for it."""
    # SecantusDB 0.7.0b3 only closes the listening socket in stop(); on Linux that does not wake a thread
    # blocked in accept(), so stop() waits 2 s for that thread to notice.
    listener = getattr(server, "_socket", None)
    if listener is not None:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
    server.stop()  # closes every connection, then the storage (a checkpoint)


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` so that readers never see a partial file."""
    tmp_path = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp_path.write_text(json.dumps(payload))
    os.replace(tmp_path, path)


def _read_pid(path: Path) -> int | None:
    """Return the pid recorded in the JSON file ``path``, or None."""
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


if __name__ == "__main__":
    sys.exit(main())
