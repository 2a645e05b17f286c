"""The distribution: what the sdist and the wheel hold, and the wheel working in a fresh virtual environment.

The package is not published; these tests check what docs/getting-started/installation.md promises: a wheel built
with ``uv build`` installs with its ``embedded`` extra into a new virtual environment and runs the quick start's
library calls from a folder outside the repository, the history coming back in a new process. The install uses
the versions pinned in ``[tool.uv] constraint-dependencies``, so it comes from uv's cache after the first run.
"""

from __future__ import annotations

import email
import email.message
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
UV = os.environ.get("UV") or shutil.which("uv")  # `uv run` names its own binary in UV
TIMEOUT_S = 240

# What the installed package runs: the quick start's library calls (the calculator tool, agent state), then
# the same session id and agent id in a new process. Prints one JSON line.
_QUICKSTART = """
import json, os, sys
from strands import Agent
import mongodb_session_manager
from mongodb_session_manager import create_mongodb_session_manager
from mongodb_session_manager.demo_model import calculator, create_model

manager = create_mongodb_session_manager(
    session_id="installed-wheel", database_name="packaging", collection_name="agent_sessions"
)
agent = Agent(
    agent_id="assistant",
    model=create_model(),
    tools=[calculator],
    session_manager=manager,
    callback_handler=None,
)
restored = len(agent.messages)
if sys.argv[1] == "first":
    agent("Hi! My name is Alice.")
    agent("What is 12 * (3 + 4)?")
    agent.state.set("favourite_number", 84)
    manager.sync_agent(agent)
    answer = None
else:
    answer = str(agent("What is my name?")).strip()
print(json.dumps({
    "pid": os.getpid(),
    "package": mongodb_session_manager.__file__,
    "restored": restored,
    "messages": agent.messages,
    "state": agent.state.get(),
    "answer": answer,
}, default=str))
manager.close()
"""

_STOP = "from mongodb_session_manager.embedded import stop_embedded_server; print(stop_embedded_server())"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the sdist, and the wheel from it (as a package index would), into a temporary folder."""
    if UV is None:
        pytest.skip("uv is not installed (https://docs.astral.sh/uv/)")
    out = tmp_path_factory.mktemp("dist")
    _run([UV, "build", "--out-dir", str(out)], cwd=ROOT)
    return out


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command``; fail the test with its output when it exits non-zero."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    return result


def _only(folder: Path, pattern: str) -> Path:
    """The one file in ``folder`` matching ``pattern``."""
    (found,) = folder.glob(pattern)
    return found


def _wheel_metadata(wheel: Path) -> email.message.Message:
    """The wheel's METADATA, parsed (core metadata is an RFC 822 message)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_string(archive.read(name).decode("utf-8"))


def test_wheel_holds_the_four_packages_their_files_and_the_license(dist: Path) -> None:
    with zipfile.ZipFile(_only(dist, "*.whl")) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {
        "mongodb_session_manager",
        "session_viewer",
        "playground",
        "web_common",
        f"mongodb_session_manager-{PYPROJECT['project']['version']}.dist-info",
    }
    for needed in (
        "mongodb_session_manager/py.typed",
        "mongodb_session_manager/_embedded_server.py",
        "mongodb_session_manager/cli/__init__.py",
        "session_viewer/frontend/index.html",
        "playground/chat/chat.html",
        "web_common/middleware.py",
        "web_common/static/dom.js",
    ):
        assert needed in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_sdist_holds_the_sources_readme_changelog_and_license_and_no_tests_or_docs(dist: Path) -> None:
    with tarfile.open(_only(dist, "*.tar.gz")) as archive:
        names = [member.name.split("/", 1)[1] for member in archive.getmembers() if "/" in member.name]
    tops = {name.split("/")[0] for name in names}
    assert tops == {
        "src",
        "session_viewer",
        "playground",
        "web_common",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "pyproject.toml",
        "PKG-INFO",
        ".gitignore",
    }
    assert {name.split("/")[1] for name in names if name.startswith("src/")} == {"mongodb_session_manager"}
    assert not [name for name in names if "__pycache__" in name or "/tests/" in name or "/.mongodb-session" in name]


def test_metadata_is_ready_for_an_index(dist: Path) -> None:
    metadata = _wheel_metadata(_only(dist, "*.whl"))
    assert metadata["Name"] == "mongodb-session-manager"
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Author"] and metadata["Keywords"]
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # the License-Expression says it
    assert set(metadata.get_all("Provides-Extra")) == {"embedded", "aws", "viewer", "playground", "zstd", "encryption"}
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (ROOT / "README.md").read_text(encoding="utf-8").strip()


def test_uv_run_installs_only_the_library_and_the_embedded_server() -> None:
    """The quick start's `uv run` (default groups only) pulls no test, docs or app tooling: a short first run."""
    assert UV is not None
    exported = _run([UV, "export", "--no-hashes", "--no-header", "--no-emit-project", "--no-annotate"], cwd=ROOT)
    names = {line.split("==")[0].strip().lower() for line in exported.stdout.splitlines() if "==" in line}
    assert {"strands-agents", "pymongo", "click", "secantusdb"} <= names
    tooling = {"pytest", "playwright", "mkdocs", "matplotlib", "moto", "mongomock", "fastapi", "mypy", "ruff"}
    assert not names & {*tooling, "pymongocrypt"}


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A new virtual environment (this Python) with the wheel and its ``embedded`` extra; its server stops after."""
    assert UV is not None
    tmp_path = tmp_path_factory.mktemp("installed")
    venv = tmp_path / "venv"
    _run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(PYPROJECT["tool"]["uv"]["constraint-dependencies"]) + "\n")
    wheel = _only(dist, "*.whl")
    _run(
        [UV, "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), f"{wheel}[embedded]"],
        cwd=tmp_path,
    )
    env = {key: value for key, value in os.environ.items() if key not in {"MONGODB_URI", "PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(
        MONGODB_SESSION_MANAGER_DATA_DIR=str(tmp_path / "data"),
        MONGODB_SESSION_MANAGER_IDLE_TIMEOUT="300",  # never outlives a crashed run for long
        STRANDS_MODEL_PROVIDER="demo",
    )
    yield python, env
    subprocess.run([str(python), "-c", _STOP], cwd=tmp_path, env=env, capture_output=True, timeout=TIMEOUT_S)


def test_installed_wheel_runs_the_quick_start_outside_the_repository(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    python, env = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = work / "quickstart_check.py"
    script.write_text(_QUICKSTART)

    first = json.loads(_run([str(python), str(script), "first"], cwd=work, env=env).stdout)
    resumed = json.loads(_run([str(python), str(script), "resume"], cwd=work, env=env).stdout)
    stopped = _run([str(python), "-c", _STOP], cwd=work, env=env).stdout.strip()

    venv = python.parent.parent
    assert Path(first["package"]).is_relative_to(venv)  # the installed wheel, not the checkout
    tool_calls = [block["toolUse"]["name"] for m in first["messages"] for block in m["content"] if "toolUse" in block]
    assert tool_calls == ["calculator"]
    assert first["restored"] == 0
    assert resumed["pid"] != first["pid"]
    assert resumed["restored"] == len(first["messages"])
    assert resumed["messages"][: len(first["messages"])] == first["messages"]
    assert resumed["state"] == {"favourite_number": 84}
    assert "Alice" in resumed["answer"]
    assert stopped == "True"  # the server this environment started, stopped by the public API
    assert _run([str(venv / "bin" / "mongodb-session-manager"), "--help"], cwd=work, env=env).stdout


def test_quickstart_example_needs_nothing_beyond_the_embedded_extra(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    python, env = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "examples" / "quickstart.py", work)

    result = _run([str(python), "quickstart.py"], cwd=work, env=env)

    assert "Your name is Alice" in result.stdout
