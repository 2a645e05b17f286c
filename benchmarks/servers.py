"""The servers a benchmark run talks to: MongoDB and an S3-compatible object store (moto), both on 127.0.0.1.

Both run as separate processes, like the network services they stand in for: an in-process server would share
this interpreter's GIL with the client and blur what each side costs.

* MongoDB: ``MONGODB_URI`` when set; otherwise the embedded development server (SecantusDB, the same server
  ``mongodb_session_manager.embedded`` starts), launched with ``python -m secantus`` on a free port and a
  temporary data directory that is removed afterwards.
* S3: moto's server (``python -m moto.server``) on a free port.

The embedded server's CPU time is readable from this process (`process_cpu_seconds`), so the benchmark can
charge each measured operation the server CPU it caused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient

__all__ = ["MongoServer", "S3Server", "mongodb_server", "process_cpu_seconds", "s3_server"]

_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MongoServer:
    """Where the MongoDB under test lives and what it is."""

    uri: str
    description: str
    embedded: bool
    pid: int | None = None
    """The server's process id when this run started it (its CPU time can then be read), else None."""


@dataclass(frozen=True)
class S3Server:
    """The moto S3 endpoint."""

    endpoint_url: str
    description: str


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) another process has used so far, in seconds.

    Reads the process's CPU-time clock (``clock_gettime`` on the clock id Linux derives from the pid:
    nanosecond resolution, threads that already exited included); where that is refused, falls back to
    ``/proc/<pid>/stat`` (``utime + stime``, in clock ticks of usually 10 ms).

    Raises:
        OSError: The process does not exist (or neither source is available on this OS).
    """
    try:
        return time.clock_gettime((~pid << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except (OSError, OverflowError, AttributeError):
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def mongodb_server() -> Iterator[MongoServer]:
    """Yield the MongoDB to benchmark: ``MONGODB_URI``, or a private embedded server process."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        client: MongoClient[Any]
        with MongoClient(uri, serverSelectionTimeoutMS=10000) as client:
            version = client.server_info().get("version", "?")
        yield MongoServer(uri=uri, description=f"MongoDB {version} (MONGODB_URI)", embedded=False)
        return

    import secantus

    data_dir = tempfile.mkdtemp(prefix="msm-bench-mongodb-")
    port = _free_port()
    command = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--storage-path", data_dir, "--log-level", "ERROR"]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below, after the server stopped
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                log.seek(0)
                error = log.read().decode(errors="replace")
                raise RuntimeError(f"the embedded MongoDB server exited during start-up: {error[-2000:]}")
            try:
                probe: MongoClient[Any]
                with MongoClient(uri, serverSelectionTimeoutMS=500) as probe:
                    probe.admin.command("ping")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        description = f"embedded SecantusDB {secantus.__version__} (separate process, WiredTiger, data in a temp dir)"
        yield MongoServer(uri=uri, description=description, embedded=True, pid=process.pid)
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """Yield a moto S3 server running in its own process on 127.0.0.1."""
    import moto

    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError("moto's server exited during start-up")
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield S3Server(endpoint_url=endpoint, description=f"moto {moto.__version__} S3 server (separate process)")
    finally:
        _stop(process)
