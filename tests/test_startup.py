"""Short, useful start-up failures of the local programs, and one default collection that every one of them uses.

The failures are checked through real processes (the ``session-viewer`` and ``playground`` console scripts, the
quick start): one line on stderr saying what failed, where and what to do, nothing on stdout, a non-zero exit
status, and a traceback only with ``--debug``/``LOG_LEVEL=DEBUG``.
"""

import importlib.util
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mongodb_session_manager import (
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    create_mongodb_session_manager,
    initialize_global_factory,
)
from mongodb_session_manager.cli import cli
from mongodb_session_manager.documents import DEFAULT_COLLECTION, DEFAULT_DATABASE
from mongodb_session_manager.startup import (
    StartupError,
    listening_socket,
    reachable_mongodb,
    require_mongodb,
    short_failures,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
UNREACHABLE = "mongodb://127.0.0.1:1"
BACKEND_PASSWORD = "startup-test-password-0123456789"


def run(command: list[str], cwd: Path, timeout: float = 60, **environment: str) -> subprocess.CompletedProcess:
    """Run ``command`` with the test environment minus any MongoDB, password or log settings, plus ``environment``."""
    drop = ("MONGODB_URI", "BACKEND_PASSWORD", "LOG_LEVEL", "PLAYGROUND_MONGODB_URI", "PLAYGROUND_LOG_LEVEL")
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env["STRANDS_MODEL_PROVIDER"] = "demo"
    env.update(environment)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed start, checked to be the only output."""
    assert result.returncode != 0, result.stderr
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A local port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# ----------------------------------------------------------------------------- one default collection


def test_every_program_uses_the_library_default_database_and_collection():
    from playground.chat.config import Settings as PlaygroundSettings
    from session_viewer.backend.config import Settings as ViewerSettings

    for function in (
        MongoDBSessionRepository.__init__,
        MongoDBSessionManager.__init__,
        MongoDBSessionManagerFactory.__init__,
        create_mongodb_session_manager,
        initialize_global_factory,
    ):
        parameters = inspect.signature(function).parameters
        assert (parameters["database_name"].default, parameters["collection_name"].default) == (
            DEFAULT_DATABASE,
            DEFAULT_COLLECTION,
        ), function.__qualname__
    assert (DEFAULT_DATABASE, DEFAULT_COLLECTION) == ("database_name", "collection_name")  # the seeds' defaults
    for settings in (ViewerSettings(_env_file=None), PlaygroundSettings(_env_file=None)):
        assert (settings.database_name, settings.collection_name) == (DEFAULT_DATABASE, DEFAULT_COLLECTION)
    migrate = {param.name: param.default for param in cli.commands["migrate"].params}
    assert (migrate["database"], migrate["collection"]) == (DEFAULT_DATABASE, DEFAULT_COLLECTION)


def test_the_playground_the_viewer_and_the_fastapi_examples_listen_on_different_ports():
    from playground.chat.config import Settings as PlaygroundSettings
    from session_viewer.backend.config import Settings as ViewerSettings

    ports = {
        "playground": PlaygroundSettings(_env_file=None).port,
        "session-viewer": ViewerSettings(_env_file=None).backend_port,
    }
    for name in ("example_fastapi", "example_fastapi_streaming"):
        spec = importlib.util.spec_from_file_location(f"_ports_{name}", ROOT / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # defines the app; serves nothing
        ports[name] = module.SERVE_PORT
    assert len(set(ports.values())) == len(ports), ports
    assert ports == {
        "playground": 8880,
        "session-viewer": 8882,
        "example_fastapi": 8881,
        "example_fastapi_streaming": 8883,
    }


def test_no_example_names_its_own_database_or_collection():
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert not re.search(r"\b(database_name|collection_name)\s*=", script.read_text()), script.name


@pytest.mark.slow
def test_the_viewer_on_its_defaults_shows_what_the_quickstart_wrote(tmp_path: Path, embedded_dir: Path):
    data_dir = {"MONGODB_SESSION_MANAGER_DATA_DIR": str(embedded_dir)}
    quickstart = run([sys.executable, str(ROOT / "examples" / "quickstart.py")], tmp_path, timeout=120, **data_dir)
    assert quickstart.returncode == 0, quickstart.stderr
    session_id = re.search(r"Session '([^']+)', process 1", quickstart.stdout).group(1)
    assert quickstart.stdout.rstrip().endswith("Read it in the Session Viewer: uv run --extra viewer session-viewer")

    env = {key: value for key, value in os.environ.items() if key not in ("MONGODB_URI", "LOG_LEVEL")}
    env.update(data_dir, BACKEND_PASSWORD=BACKEND_PASSWORD)
    viewer = subprocess.Popen(
        [str(BIN / "session-viewer"), "--port", "0"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        url = None
        for line in viewer.stderr:
            if match := re.search(r"open (http://\S+/)", line):
                url = match.group(1)
                break
        assert url, "the viewer did not say where to open it"
        headers = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
        collections = httpx.get(url + "api/v1/collections", headers=headers, timeout=30).json()
        assert collections["default"] == f"{DEFAULT_DATABASE}.{DEFAULT_COLLECTION}"
        found = httpx.get(url + "api/v1/sessions/search", params={"session_id": session_id}, headers=headers).json()
        assert [session["session_id"] for session in found["sessions"]] == [session_id]
    finally:
        viewer.send_signal(signal.SIGTERM)
        viewer.wait(timeout=30)


# ----------------------------------------------------------------------------- the checks themselves


def test_reachable_mongodb_returns_a_uri_that_answers(mongo_uri: str):
    assert reachable_mongodb(mongo_uri) == mongo_uri


def test_an_unreachable_server_is_one_line_with_the_address_the_wait_and_what_to_check():
    with pytest.raises(StartupError) as raised:
        reachable_mongodb("mongodb://user:secret@127.0.0.1:1/?authSource=admin", timeout_ms=200)
    message = str(raised.value)
    assert message.startswith("MongoDB at mongodb://127.0.0.1:1/ did not answer within 0.2 s (")
    assert "Connection refused" in message and message.endswith(
        "check MONGODB_URI, or unset it to use the embedded development server"
    )
    assert "secret" not in message and "\n" not in message


def test_the_timeout_in_the_uri_is_the_wait():
    with pytest.raises(StartupError, match=r"within 0\.3 s"):
        reachable_mongodb(UNREACHABLE + "/?serverSelectionTimeoutMS=300")


def test_an_invalid_uri_is_one_line():
    with pytest.raises(StartupError, match=r"^invalid MongoDB URI 'http://example\.com' \(.*\); check MONGODB_URI"):
        reachable_mongodb("http://example.com")


def test_a_port_in_use_is_one_line(busy_port: int):
    with pytest.raises(StartupError) as raised:
        listening_socket("127.0.0.1", busy_port, hint="choose another with --port")
    assert str(raised.value) == (
        f"cannot listen on 127.0.0.1:{busy_port}: the port is in use; stop the program using it or choose another "
        "with --port"
    )


def test_short_failures_prints_one_line_and_exits_1_unless_debugging(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited, short_failures("demo", debug=False):
        raise StartupError("what failed; what to do")
    assert exited.value.code == 1
    assert capsys.readouterr().err == "demo: what failed; what to do\n"
    with pytest.raises(StartupError), short_failures("demo", debug=True):
        raise StartupError("shown with its traceback")


def test_require_mongodb_reads_log_level_debug(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOG_LEVEL", "debug")
    with pytest.raises(StartupError):
        require_mongodb("demo", UNREACHABLE, timeout_ms=100)
    monkeypatch.delenv("LOG_LEVEL")
    with pytest.raises(SystemExit):
        require_mongodb("demo", UNREACHABLE, timeout_ms=100)


# ----------------------------------------------------------------------------- the programs, as a user runs them


@pytest.mark.slow
def test_viewer_with_an_unreachable_server_says_so_in_one_line(tmp_path: Path):
    result = run([str(BIN / "session-viewer"), "--port", "0"], tmp_path, MONGODB_URI=UNREACHABLE)
    line = one_line(result)
    assert result.returncode == 1
    assert line.startswith("session-viewer: MongoDB at mongodb://127.0.0.1:1 did not answer within 5 s (")
    assert line.endswith("check MONGODB_URI, or unset it to use the embedded development server")


@pytest.mark.slow
def test_viewer_with_debug_shows_the_traceback(tmp_path: Path):
    result = run(
        [str(BIN / "session-viewer"), "--port", "0", "--debug"],
        tmp_path,
        MONGODB_URI=UNREACHABLE + "/?serverSelectionTimeoutMS=300",
    )
    assert result.returncode == 1
    assert (
        "Traceback" in result.stderr
        and "StartupError: MongoDB at mongodb://127.0.0.1:1/ did not answer" in result.stderr
    )


@pytest.mark.slow
def test_viewer_on_a_port_in_use_says_so_in_one_line(tmp_path: Path, busy_port: int, mongo_uri: str):
    result = run([str(BIN / "session-viewer"), "--port", str(busy_port)], tmp_path, MONGODB_URI=mongo_uri)
    assert one_line(result) == (
        f"session-viewer: cannot listen on 127.0.0.1:{busy_port}: the port is in use; stop the program using it "
        "or choose another with --port or BACKEND_PORT"
    )
    assert result.returncode == 1


@pytest.mark.slow
def test_viewer_with_a_bad_setting_says_which_in_one_line(tmp_path: Path):
    result = run([str(BIN / "session-viewer")], tmp_path, BACKEND_PORT="eighty")
    line = one_line(result)
    assert result.returncode == 2
    assert line.startswith("session-viewer: invalid configuration: BACKEND_PORT: ")
    assert line.endswith("(environment or .env)")


@pytest.mark.slow
def test_viewer_without_the_embedded_extra_says_how_to_get_it(tmp_path: Path):
    blocked = (
        "import sys; sys.modules['secantus'] = None; from session_viewer.backend.cli import main; sys.exit(main())"
    )
    result = run(
        [sys.executable, "-c", blocked, "--port", "0"],
        tmp_path,
        MONGODB_SESSION_MANAGER_DATA_DIR=str(tmp_path / "no-server-here"),
    )
    line = one_line(result)
    assert result.returncode == 1
    assert line.startswith("session-viewer: The embedded development MongoDB server needs SecantusDB: ")
    assert "mongodb-session-manager[embedded]" in line and "MONGODB_URI" in line


@pytest.mark.slow
def test_viewer_without_the_viewer_extra_says_how_to_get_it(tmp_path: Path):
    blocked = "import sys; sys.modules['fastapi'] = None; from session_viewer.backend.cli import main; sys.exit(main())"
    result = run([sys.executable, "-c", blocked], tmp_path)
    assert one_line(result) == (
        "session-viewer: the viewer extra is not installed (no module 'fastapi'); run "
        '"uv run --extra viewer session-viewer" or pip install "mongodb-session-manager[viewer]"'
    )


@pytest.mark.slow
def test_playground_with_an_unreachable_server_says_so_in_one_line(tmp_path: Path):
    result = run([str(BIN / "playground"), "--port", "0"], tmp_path, MONGODB_URI=UNREACHABLE)
    line = one_line(result)
    assert result.returncode == 1
    assert line.startswith("playground: MongoDB at mongodb://127.0.0.1:1 did not answer within 5 s (")
    assert line.endswith(
        "check MONGODB_URI (or PLAYGROUND_MONGODB_URI), or unset it to use the embedded development server"
    )


@pytest.mark.slow
def test_playground_on_a_port_in_use_says_so_in_one_line(tmp_path: Path, busy_port: int, mongo_uri: str):
    result = run([str(BIN / "playground"), "--port", str(busy_port)], tmp_path, MONGODB_URI=mongo_uri)
    assert one_line(result) == (
        f"playground: cannot listen on 127.0.0.1:{busy_port}: the port is in use; stop the program using it "
        "or choose another with --port or PLAYGROUND_PORT"
    )


@pytest.mark.slow
def test_quickstart_with_a_wrong_uri_says_so_in_one_line(tmp_path: Path):
    result = run([sys.executable, str(ROOT / "examples" / "quickstart.py")], tmp_path, MONGODB_URI=UNREACHABLE)
    line = one_line(result)
    assert result.returncode == 1
    assert line.startswith("quickstart: MongoDB at mongodb://127.0.0.1:1 did not answer within 5 s (")
    assert "Connection refused" in line
