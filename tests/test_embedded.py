"""Tests for the embedded development server, with real server processes."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pymongo import MongoClient

from mongodb_session_manager import embedded
from mongodb_session_manager.embedded import (
    default_connection_string,
    ensure_embedded_server,
    stop_embedded_server,
)

CHILD_TIMEOUT_S = 60
PREAMBLE = """
import logging, os, sys
from pathlib import Path
from pymongo import MongoClient
from mongodb_session_manager.embedded import default_connection_string
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
"""


@pytest.fixture(autouse=True)
def _stop_server_after_test() -> Iterator[None]:
    """Make sure no in-process server outlives a test."""
    yield
    stop_embedded_server()


def _child_env() -> dict[str, str]:
    """Return the environment for child processes, without any configured MongoDB or data dir."""
    env = dict(os.environ)
    env.pop("MONGODB_URI", None)
    env.pop("MONGODB_SESSION_MANAGER_DATA_DIR", None)
    return env


def _run_child(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (after the shared preamble) in a fresh interpreter and check that it succeeded."""
    result = subprocess.run(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(code)],
        cwd=cwd,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    return result


def _port_answers(uri: str) -> bool:
    """Return True if something accepts TCP connections on the URI's port."""
    parsed = urlparse(uri)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_acknowledged_write_survives_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / ".mongodb-session-manager"
    first = _run_child(
        """
        uri = default_connection_string()
        with MongoClient(uri) as client:
            client.devdb.things.insert_one({"_id": "kept", "value": 42})
        print(uri)
        """,
        tmp_path,
    )
    uri = first.stdout.strip()
    assert uri.startswith("mongodb://127.0.0.1:")
    assert "started embedded development MongoDB server" in first.stderr
    assert (data_dir / "data").is_dir()
    assert not (data_dir / "server.json").exists(), "a clean exit removes server.json"
    assert not _port_answers(uri)

    second = _run_child(
        """
        with MongoClient(default_connection_string()) as client:
            print(client.devdb.things.find_one({"_id": "kept"})["value"])
        """,
        tmp_path,
    )
    assert second.stdout.strip() == "42"


@pytest.mark.slow
def test_acknowledged_write_survives_a_process_that_never_cleaned_up(tmp_path: Path) -> None:
    _run_child(
        """
        with MongoClient(default_connection_string()) as client:
            client.devdb.things.insert_one({"_id": "journaled"})
        os._exit(0)  # no atexit: no clean stop, no checkpoint, stale server.json left behind
        """,
        tmp_path,
    )
    assert (tmp_path / ".mongodb-session-manager" / "server.json").exists()

    second = _run_child(
        """
        with MongoClient(default_connection_string()) as client:
            print(client.devdb.things.count_documents({"_id": "journaled"}))
        """,
        tmp_path,
    )
    assert second.stdout.strip() == "1"


@pytest.mark.slow
def test_second_process_reuses_running_server(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PREAMBLE
            + textwrap.dedent(
                """
                uri = default_connection_string()
                with MongoClient(uri) as client:
                    client.devdb.things.insert_one({"_id": "from-owner"})
                Path("ready.tmp").write_text(uri)
                os.replace("ready.tmp", "ready")
                sys.stdin.readline()
                with MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
                    client.admin.command("ping")  # still serving after the other process exited
                print("owner done")
                """
            ),
        ],
        cwd=tmp_path,
        env=_child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while not (tmp_path / "ready").exists():
            assert owner.poll() is None, owner.communicate()[1]
            assert time.monotonic() < deadline, "owner process did not start the server in time"
            time.sleep(0.05)
        owner_uri = (tmp_path / "ready").read_text()
        info = json.loads((tmp_path / ".mongodb-session-manager" / "server.json").read_text())
        assert info == {"pid": owner.pid, "uri": owner_uri}

        reuser = _run_child(
            """
            uri = default_connection_string()
            with MongoClient(uri) as client:
                assert client.devdb.things.find_one({"_id": "from-owner"}) is not None
            print(uri)
            """,
            tmp_path,
        )
        assert reuser.stdout.strip() == owner_uri
        assert f"pid=<{owner.pid}>" in reuser.stderr
        assert "reusing embedded development MongoDB server" in reuser.stderr

        out, err = owner.communicate(input="\n", timeout=CHILD_TIMEOUT_S)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert owner.returncode == 0, err
    assert out.strip() == "owner done"
    assert not (tmp_path / ".mongodb-session-manager" / "server.json").exists()
    assert not _port_answers(owner_uri)


def test_mongodb_uri_env_wins_without_starting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONGODB_SESSION_MANAGER_DATA_DIR", raising=False)
    monkeypatch.setenv("MONGODB_URI", "mongodb://db.example.invalid:27017/")

    assert default_connection_string() == "mongodb://db.example.invalid:27017/"
    assert not (tmp_path / ".mongodb-session-manager").exists()
    assert embedded._server is None


def test_ensure_is_idempotent_and_stop_closes_the_port(tmp_path: Path) -> None:
    uri = ensure_embedded_server(tmp_path)
    assert ensure_embedded_server(tmp_path) == uri
    with MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
        assert client.admin.command("ping")["ok"] == 1
    assert json.loads((tmp_path / "server.json").read_text()) == {"pid": os.getpid(), "uri": uri}

    stop_embedded_server()
    stop_embedded_server()

    assert not _port_answers(uri)
    assert not (tmp_path / "server.json").exists()
    with open(tmp_path / "server.lock") as lock_file:  # the lock was released
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_data_dir_env_var_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("MONGODB_SESSION_MANAGER_DATA_DIR", str(tmp_path / "custom"))

    uri = default_connection_string()

    assert json.loads((tmp_path / "custom" / "server.json").read_text())["uri"] == uri


def test_missing_secantus_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "secantus", None)  # makes `import secantus` raise ImportError

    with pytest.raises(ImportError, match=r'pip install "mongodb-session-manager\[embedded\]"'):
        ensure_embedded_server(tmp_path)

    with open(tmp_path / "server.lock") as lock_file:  # the failed start released the lock
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.slow
def test_importing_the_module_does_not_import_secantus(tmp_path: Path) -> None:
    result = _run_child("print('secantus' in sys.modules)", tmp_path)
    assert result.stdout.strip() == "False"
