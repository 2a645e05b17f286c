"""The embedded development server: one background process per data directory, shared and outliving its starter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from mongodb_session_manager import embedded
from mongodb_session_manager.embedded import (
    DATA_DIR_ENV,
    IDLE_TIMEOUT_ENV,
    default_connection_string,
    embedded_data_dir,
    embedded_status,
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


@pytest.fixture
def data_dir(embedded_dir: Path) -> Iterator[Path]:
    """The test's own data directory; afterwards its server is stopped and its process is gone."""
    yield embedded_dir
    pid = embedded_status(embedded_dir)["pid"]
    stop_embedded_server(embedded_dir)
    if pid is not None:
        _wait_until(lambda: not _running(pid), f"embedded server pid {pid} has exited")


def _child_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a child process using ``data_dir``, without any configured MongoDB."""
    env = {key: value for key, value in os.environ.items() if key != "MONGODB_URI"}
    env[DATA_DIR_ENV] = str(data_dir)
    env.update(extra)
    return env


def _child(code: str, data_dir: Path, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start ``code`` (after the shared preamble) in a fresh interpreter, with pipes on all three streams."""
    return subprocess.Popen(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(code)],
        cwd=cwd,
        env=_child_env(data_dir, **env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_child(code: str, data_dir: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter and check that it succeeded (the server it starts stays up)."""
    result = subprocess.run(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(code)],
        cwd=cwd,
        env=_child_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    return result


def _running(pid: int) -> bool:
    """Return True while process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return sys.platform != "linux"
    return state != "Z"


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after CHILD_TIMEOUT_S."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def _read_line(process: subprocess.Popen[str]) -> str:
    """Return the next line the child prints, failing with its stderr if it exits first."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=CHILD_TIMEOUT_S)
        pytest.fail(f"child exited ({process.returncode}) before printing: {process.stderr and process.stderr.read()}")
    return line.strip()


def _server_info(data_dir: Path) -> dict:
    return json.loads((data_dir / "server.json").read_text())


def _log_lines(data_dir: Path) -> list[str]:
    return (data_dir / "server.log").read_text().splitlines()


# ----------------------------------------------------------------- settings (no server started)


def test_data_dir_is_per_user_whatever_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    from_here = embedded_data_dir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")

    assert embedded_data_dir() == from_here == tmp_path / "xdg" / "mongodb-session-manager"

    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert embedded_data_dir() == tmp_path / "home" / ".local" / "share" / "mongodb-session-manager"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert embedded_data_dir() == tmp_path / "home" / ".local" / "share" / "mongodb-session-manager"


def test_data_dir_env_var_and_argument_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "custom"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    assert embedded_data_dir() == tmp_path / "custom"
    assert embedded_data_dir(tmp_path / "given") == tmp_path / "given"


def test_mongodb_uri_env_wins_without_starting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "unused"))
    monkeypatch.setenv("MONGODB_URI", "mongodb://db.example.invalid:27017/")

    assert default_connection_string() == "mongodb://db.example.invalid:27017/"
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_bad_idle_timeout_is_refused_before_starting_anything(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IDLE_TIMEOUT_ENV, value)

    with pytest.raises(ValueError, match=rf"^{IDLE_TIMEOUT_ENV} must be a number of seconds >= 0"):
        ensure_embedded_server(tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def test_missing_secantus_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "secantus", None)  # makes `import secantus` fail

    with pytest.raises(ImportError, match=r'pip install "mongodb-session-manager\[embedded\]"'):
        ensure_embedded_server(tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def test_status_and_stop_of_a_directory_without_server(tmp_path: Path) -> None:
    assert stop_embedded_server(tmp_path / "never-used") is False
    status = embedded_status(tmp_path / "never-used")

    assert status["state"] == "stopped"
    assert (status["pid"], status["uri"], status["connections"]) == (None, None, [])
    assert status["data_dir"] == str(tmp_path / "never-used")
    assert not (tmp_path / "never-used").exists()


# ----------------------------------------------------------------- the server process


@pytest.mark.slow
def test_server_outlives_the_process_that_started_it(data_dir: Path, tmp_path: Path) -> None:
    starter = _child(
        """
        uri = default_connection_string()
        with MongoClient(uri) as client:
            client.devdb.things.insert_one({"_id": "from-starter"})
        print(uri, "secantus" in sys.modules, flush=True)
        sys.stdin.readline()
        """,
        data_dir,
        tmp_path,
    )
    reuser: subprocess.Popen[str] | None = None
    try:
        uri, secantus_imported = _read_line(starter).split()
        assert secantus_imported == "False", "the server runs in its own process"
        reuser = _child(
            """
            uri = default_connection_string()
            client = MongoClient(uri, serverSelectionTimeoutMS=5000)  # fails fast if the server went away
            client.devdb.things.insert_one({"_id": "before"})
            print(uri, flush=True)
            sys.stdin.readline()  # the starter exits meanwhile
            client.devdb.things.insert_one({"_id": "after"})
            print(sorted(doc["_id"] for doc in client.devdb.things.find()), flush=True)
            client.close()
            """,
            data_dir,
            tmp_path,
        )
        assert _read_line(reuser) == uri

        _, starter_err = starter.communicate("\n", timeout=CHILD_TIMEOUT_S)
        assert starter.returncode == 0, starter_err
        assert _running(_server_info(data_dir)["pid"])

        out, reuser_err = reuser.communicate("\n", timeout=CHILD_TIMEOUT_S)
    finally:
        for process in (starter, reuser):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert reuser.returncode == 0, reuser_err
    assert out.strip() == "['after', 'before', 'from-starter']"
    assert "started embedded development MongoDB server" in starter_err
    assert f"pid=<{_server_info(data_dir)['pid']}>" in reuser_err
    assert "reusing embedded development MongoDB server" in reuser_err
    assert embedded_status(data_dir)["uri"] == uri


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly_and_data_survives_the_next_start(
    signum: signal.Signals, data_dir: Path, tmp_path: Path
) -> None:
    with open(tmp_path / "server.out", "wb") as output:
        server = subprocess.Popen(embedded._server_command(data_dir, 0), stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: (data_dir / "server.json").exists(), "the server publishes server.json")
        uri = _server_info(data_dir)["uri"]
        with MongoClient(uri) as client:
            client.devdb.things.insert_one({"_id": "kept", "value": 42})

        server.send_signal(signum)
        assert server.wait(timeout=CHILD_TIMEOUT_S) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert not (data_dir / "server.json").exists()
    assert f"reason=<{signum.name}> | stopped" in (tmp_path / "server.out").read_text()

    restarted = _run_child(
        """
        with MongoClient(default_connection_string()) as client:
            print(client.devdb.things.find_one({"_id": "kept"})["value"])
        """,
        data_dir,
        tmp_path,
    )
    assert restarted.stdout.strip() == "42"


@pytest.mark.slow
def test_writes_survive_the_stop_command(data_dir: Path) -> None:
    uri = ensure_embedded_server(data_dir)
    pid = _server_info(data_dir)["pid"]
    with MongoClient(uri) as client:
        client.devdb.things.insert_one({"_id": "kept"})

    assert stop_embedded_server(data_dir) is True
    assert not _running(pid)
    assert not (data_dir / "server.json").exists()
    assert stop_embedded_server(data_dir) is False

    with MongoClient(ensure_embedded_server(data_dir)) as client:
        assert client.devdb.things.count_documents({"_id": "kept"}) == 1
    assert _server_info(data_dir)["pid"] != pid


@pytest.mark.slow
def test_killed_server_leaves_stale_state_that_does_not_block_the_next_start(data_dir: Path) -> None:
    uri = ensure_embedded_server(data_dir)
    pid = _server_info(data_dir)["pid"]
    with MongoClient(uri) as client:
        client.devdb.things.insert_one({"_id": "journaled"})

    os.kill(pid, signal.SIGKILL)  # no clean stop, no checkpoint: server.json stays behind
    _wait_until(lambda: embedded_status(data_dir)["state"] == "stopped", "the killed server has released its lock")
    assert (data_dir / "server.json").exists()

    with MongoClient(ensure_embedded_server(data_dir)) as client:
        assert client.devdb.things.count_documents({"_id": "journaled"}) == 1
    assert _server_info(data_dir)["pid"] != pid


@pytest.mark.slow
def test_stale_server_json_naming_another_live_server_is_not_reused(data_dir: Path, mongo_uri: str) -> None:
    # A killed server's port taken by another server, and its pid by another process (this one).
    (data_dir / "server.json").write_text(json.dumps({"pid": os.getpid(), "uri": mongo_uri}))

    uri = ensure_embedded_server(data_dir)

    assert uri != mongo_uri
    assert _server_info(data_dir)["pid"] != os.getpid()


@pytest.mark.slow
def test_processes_racing_to_start_it_get_one_server(data_dir: Path, tmp_path: Path) -> None:
    racers = [
        _child(
            """
            while not Path("go").exists():
                pass
            print(default_connection_string(), flush=True)
            """,
            data_dir,
            tmp_path,
        )
        for _ in range(3)
    ]
    try:
        (tmp_path / "go").touch()
        results = [racer.communicate(timeout=CHILD_TIMEOUT_S) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    assert [racer.returncode for racer in racers] == [0, 0, 0], [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1
    assert sum("started embedded development MongoDB server" in err for _, err in results) == 1
    assert sum("| serving" in line for line in _log_lines(data_dir)) == 1


@pytest.mark.slow
def test_a_second_server_for_the_same_directory_refuses_to_start(data_dir: Path) -> None:
    ensure_embedded_server(data_dir)
    info = _server_info(data_dir)

    second = subprocess.run(
        embedded._server_command(data_dir, 0), capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )

    assert second.returncode == 3
    assert "another embedded server already serves this data directory" in second.stderr
    assert _server_info(data_dir) == info
    assert embedded_status(data_dir)["state"] == "running"


@pytest.mark.slow
def test_idle_server_stops_by_itself_and_keeps_its_data(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(IDLE_TIMEOUT_ENV, "1")
    with MongoClient(ensure_embedded_server(data_dir)) as client:
        client.devdb.things.insert_one({"_id": "kept"})
    pid = _server_info(data_dir)["pid"]
    assert embedded_status(data_dir)["idle_timeout_s"] == 1

    # Watched without connecting: a status call is a client connection too, which would keep it up.
    _wait_until(lambda: not _running(pid), "the idle server has stopped")

    assert not (data_dir / "server.json").exists()
    assert f"pid=<{pid}> | data_dir=<{data_dir}> | reason=<idle for 1 s> | stopped" in _log_lines(data_dir)[-1]
    monkeypatch.setenv(IDLE_TIMEOUT_ENV, "0")
    with MongoClient(ensure_embedded_server(data_dir)) as client:
        assert client.devdb.things.count_documents({"_id": "kept"}) == 1


@pytest.mark.slow
def test_a_connected_client_keeps_the_server_from_idling(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(IDLE_TIMEOUT_ENV, "1")
    with MongoClient(ensure_embedded_server(data_dir), heartbeatFrequencyMS=500) as client:
        pid = _server_info(data_dir)["pid"]
        for _ in range(6):  # three idle timeouts: its monitor connection counts as a client
            client.admin.command("ping")
            time.sleep(0.5)
        assert embedded_status(data_dir)["pid"] == pid


@pytest.mark.slow
def test_status_says_where_it_is_and_who_is_connected(data_dir: Path) -> None:
    uri = ensure_embedded_server(data_dir)
    with MongoClient(uri, appname="status-test") as client:
        client.devdb.things.insert_one({"_id": 1})
        status = embedded_status(data_dir)

    info = _server_info(data_dir)
    assert status["state"] == "running"
    assert (status["uri"], status["pid"], status["port"]) == (uri, info["pid"], info["port"])
    assert status["data_dir"] == str(data_dir)
    assert status["log_file"] == str(data_dir / "server.log")
    assert status["idle_timeout_s"] == embedded.DEFAULT_IDLE_TIMEOUT_S
    assert status["connections"], "the client above is connected"
    for connection in status["connections"]:  # the status call's own probes are not listed
        assert connection["app_name"] == "status-test"
        assert connection["pid"] == os.getpid()
        assert "pytest" in connection["process"] or "python" in connection["process"]
        assert connection["driver"].startswith("PyMongo ")
    assert "insert" in {connection["last_command"] for connection in status["connections"]}


@pytest.mark.slow
def test_a_server_that_cannot_open_its_storage_fails_with_one_line(data_dir: Path) -> None:
    (data_dir / "data").write_text("not a directory")

    with pytest.raises(RuntimeError) as failure:
        ensure_embedded_server(data_dir)

    message = str(failure.value)
    assert message.startswith("The embedded MongoDB server exited during start-up (status 1): ")
    assert message.endswith(f"Full log: {data_dir / 'server.log'}")
    assert "\n" not in message
    assert embedded_status(data_dir)["state"] == "stopped"


@pytest.mark.slow
def test_importing_the_module_does_not_import_secantus(data_dir: Path, tmp_path: Path) -> None:
    result = _run_child("print('secantus' in sys.modules)", data_dir, tmp_path)
    assert result.stdout.strip() == "False"


# ----------------------------------------------------------------- the command line


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``mongodb-session-manager`` (as ``python -m``) with ``args``."""
    return subprocess.run(
        [sys.executable, "-m", "mongodb_session_manager", *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env=env,
    )


@pytest.mark.slow
def test_cli_status_shows_where_it_is_and_who_is_connected_then_stop_stops_it(data_dir: Path, tmp_path: Path) -> None:
    uri = ensure_embedded_server(data_dir)
    server_pid = _server_info(data_dir)["pid"]
    holder = _child(
        """
        client = MongoClient(default_connection_string(), appname="cli-test-client")
        client.admin.command("ping")
        print(os.getpid(), flush=True)
        sys.stdin.readline()
        client.close()
        """,
        data_dir,
        tmp_path,
    )
    try:
        holder_pid = int(_read_line(holder))
        text = _cli("embedded", "status", "--data-dir", str(data_dir))
        as_json = _cli("embedded", "status", "--json", "--data-dir", str(data_dir))
        holder.communicate("\n", timeout=CHILD_TIMEOUT_S)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"running: {uri} (pid {server_pid}, since ")
    assert lines[1:4] == [
        f"data directory: {data_dir}",
        f"log: {data_dir / 'server.log'}",
        "idle stop: 30 min without clients",
    ]
    assert lines[4].startswith("clients: ")
    holder_line = next(line for line in lines[5:] if line.startswith(f"  pid {holder_pid}  python -c "))
    assert "cli-test-client" in holder_line and "PyMongo" in holder_line
    report = json.loads(as_json.stdout)
    assert (report["state"], report["uri"], report["pid"]) == ("running", uri, server_pid)
    # A connection closing meanwhile (a driver's monitor reconnecting) has no owner left to find: pid None.
    assert {connection["pid"] for connection in report["connections"]} - {None} == {holder_pid}

    env = _child_env(data_dir)  # the data directory from MONGODB_SESSION_MANAGER_DATA_DIR this time
    stopped = _cli("embedded", "stop", env=env)
    assert (stopped.returncode, stopped.stdout) == (
        0,
        f"stopped the embedded MongoDB server (pid {server_pid}, data in {data_dir})\n",
    )
    _wait_until(lambda: not _running(server_pid), "the server has exited")
    assert _cli("embedded", "status", env=env).stdout == f"stopped (data directory {data_dir})\n"
    again = _cli("embedded", "stop", "--json", env=env)
    assert json.loads(again.stdout) == {"stopped": False, "pid": None, "data_dir": str(data_dir)}


@pytest.mark.slow
def test_cli_reports_a_server_that_does_not_answer_in_one_line(data_dir: Path) -> None:
    uri = ensure_embedded_server(data_dir)
    pid = _server_info(data_dir)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        status = _cli("embedded", "status", "--data-dir", str(data_dir))
        stop = _cli("embedded", "stop", "--timeout", "1", "--data-dir", str(data_dir))
    finally:
        os.kill(pid, signal.SIGCONT)  # the SIGTERM sent by stop is delivered now: it exits

    assert status.returncode == 1
    assert status.stdout.startswith(f"not answering: {uri} (pid {pid}, since ")
    assert "connection(s)" not in status.stdout
    assert status.stderr.splitlines() == [
        f"error: the embedded server (pid {pid}) holds {data_dir} but does not answer; "
        "stop it with 'mongodb-session-manager embedded stop'"
    ]
    assert stop.returncode == 1
    assert stop.stderr.splitlines() == [
        f"error: The embedded MongoDB server (pid {pid}, data in {data_dir}) did not stop within 1 s; "
        f"kill it with `kill -9 {pid}` (acknowledged writes are journaled)."
    ]
    _wait_until(lambda: not _running(pid), "the server has handled the pending SIGTERM")
