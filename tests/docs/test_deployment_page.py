"""The deployment page's configuration is the apps' own: every variable it names is read by them, its environment
files load into their settings, its entry points start them (with several workers) and its quoted answers are
theirs.

The variables are checked against the apps' ``Settings`` classes (``session_viewer.backend.config``,
``playground.chat.config``: field names with the class's ``env_prefix``, or the field's aliases), and a variable
counts as read only when setting it changes that field. A few variables belong to other programs; they are listed
in ``OTHER_PROGRAMS`` with the module that reads them, and that module's source must name them.
"""

import importlib
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn.config
from fastapi.testclient import TestClient
from pydantic import AliasChoices, SecretStr, ValidationError
from pydantic_settings import BaseSettings

import mongodb_session_manager.demo_model
from playground.chat.config import Settings as PlaygroundSettings
from session_viewer.backend.config import Settings as ViewerSettings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "user-guide" / "deployment.md"
SETTINGS_CLASSES: dict[str, type[BaseSettings]] = {"viewer": ViewerSettings, "playground": PlaygroundSettings}
OTHER_PROGRAMS = {
    "WEB_CONCURRENCY": uvicorn.config,  # uvicorn's default for --workers
    "FORWARDED_ALLOW_IPS": uvicorn.config,  # uvicorn's default for --forwarded-allow-ips
    "STRANDS_MODEL_PROVIDER": mongodb_session_manager.demo_model,  # create_model(): the playground's model
    "STRANDS_MODEL_ID": mongodb_session_manager.demo_model,
}
ENTRY_POINTS = {
    "viewer": "session_viewer.backend.asgi:app_from_environment",
    "playground": "playground.chat.asgi:app_from_environment",
}
BACKEND_PASSWORD = "a-long-backend-password-for-tests"

_FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_ASSIGNED = re.compile(r"(?<![\w$-])(?P<name>[A-Z][A-Z0-9_]*[A-Z0-9])=(?P<value>\S*)")
_REFERENCED = re.compile(r"\$\{?(?P<name>[A-Z][A-Z0-9_]*[A-Z0-9])")
_INLINE_NAME = re.compile(r"`(?P<name>[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]|ENV)(?:=[^`]*)?`")
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')
_FACTORY = re.compile(r"--factory\s+(?P<target>\S+)|'(?P<gunicorn>[\w.]+:\w+)\(\)'")


@dataclass
class Block:
    """One fenced block of the page."""

    language: str
    title: str
    body: str


def page_text() -> str:
    return PAGE.read_text(encoding="utf-8")


def blocks() -> list[Block]:
    found = []
    for match in _FENCE.finditer(page_text()):
        info = match.group("info").strip()
        title = _TITLE.search(info)
        found.append(Block(info.split()[0] if info else "", title.group("title") if title else "", match["body"]))
    return found


def prose() -> str:
    return _FENCE.sub("", page_text())


def variables_on_the_page() -> set[str]:
    """Every environment variable the page names: assigned or referenced in a block, or in inline code."""
    names = {match["name"] for match in _INLINE_NAME.finditer(prose())}
    for block in blocks():
        names |= {match["name"] for match in _ASSIGNED.finditer(block.body)}
        names |= {match["name"] for match in _REFERENCED.finditer(block.body)}
    return names


def env_names(settings_class: type[BaseSettings]) -> dict[str, str]:
    """The environment variables of ``settings_class`` (upper case) and the field each one sets."""
    prefix = settings_class.model_config.get("env_prefix", "")
    names: dict[str, str] = {}
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            candidates = [choice for choice in alias.choices if isinstance(choice, str)]
        elif isinstance(alias, str):
            candidates = [alias]
        else:
            candidates = [prefix + field_name]
        names.update({candidate.upper(): field_name for candidate in candidates})
    return names


def owners(name: str) -> list[tuple[type[BaseSettings], str]]:
    """The settings classes that read ``name``, each with its field."""
    return [(cls, env_names(cls)[name]) for cls in SETTINGS_CLASSES.values() if name in env_names(cls)]


def shown(value: Any) -> str:
    """A settings value as it would be written in an environment file."""
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _samples(default: Any) -> list[str]:
    """Values to try for a field with ``default``: at least one is valid and differs from it."""
    if isinstance(default, bool):
        return [str(not default).lower()]
    if isinstance(default, int):
        return [str(default + 1)]
    return ["example.com", "https://app.example.com", "DEBUG", "production", "collection", "x" * 24]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No variable of the apps or of ``OTHER_PROGRAMS`` set, and no ``.env`` file in the working directory."""
    for cls in SETTINGS_CLASSES.values():
        for name in env_names(cls):
            monkeypatch.delenv(name, raising=False)
    for name in OTHER_PROGRAMS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


# ----------------------------------------------------------------------------- the page is in place


def test_the_page_is_in_the_navigation_and_linked_from_both_apps() -> None:
    assert "user-guide/deployment.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for readme in (ROOT / "session_viewer" / "README.md", ROOT / "playground" / "chat" / "README.md"):
        assert "docs/user-guide/deployment.md" in readme.read_text(encoding="utf-8"), readme


def test_configuration_files_are_marked_illustrative() -> None:
    configuration = [block for block in blocks() if block.language in ("ini", "nginx")]
    assert {block.language for block in configuration} == {"ini", "nginx"}
    for block in configuration:
        assert block.title.endswith("(illustrative)"), block.title or block.body[:80]


# ----------------------------------------------------------------------------- the variables are real


def test_the_page_names_the_settings_that_must_change() -> None:
    names = variables_on_the_page()
    for name in ("ENV", "MONGODB_URI", "BACKEND_PASSWORD", "ALLOWED_HOSTS", "PLAYGROUND_ALLOWED_HOSTS"):
        assert name in names, name
    assert {"ALLOWED_ORIGINS_STR", "PASSWORD_MAX_FAILURES", "PASSWORD_FAILURE_WINDOW_SECONDS"} <= names


def test_every_variable_on_the_page_is_read_by_an_app_or_a_listed_program() -> None:
    unknown = sorted(name for name in variables_on_the_page() if not owners(name) and name not in OTHER_PROGRAMS)
    assert not unknown, f"not a setting of the viewer or the playground, nor in OTHER_PROGRAMS: {unknown}"


@pytest.mark.parametrize("name", sorted(OTHER_PROGRAMS))
def test_the_listed_programs_read_their_variables(name: str) -> None:
    assert f'"{name}"' in inspect.getsource(OTHER_PROGRAMS[name])


def test_each_app_variable_on_the_page_sets_its_field(clean_environment: pytest.MonkeyPatch) -> None:
    for name in sorted(variables_on_the_page() - set(OTHER_PROGRAMS)):
        for cls, field in owners(name):
            default = getattr(cls(_env_file=None), field)
            for value in _samples(default):
                clean_environment.setenv(name, value)
                try:
                    changed = getattr(cls(_env_file=None), field) != default
                except ValidationError:
                    continue
                finally:
                    clean_environment.delenv(name)
                if changed:
                    break
            else:
                pytest.fail(f"{name} does not set {cls.__module__}.Settings.{field}")


@pytest.mark.parametrize("app", sorted(SETTINGS_CLASSES))
def test_the_environment_files_load_into_the_apps_settings(
    app: str, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = [block for block in blocks() if block.title.partition(" ")[0].endswith(".env") and app in block.title]
    assert len(files) == 1, [block.title for block in files]
    env_file = tmp_path / f"{app}.env"
    env_file.write_text(files[0].body, encoding="utf-8")
    settings = SETTINGS_CLASSES[app](_env_file=env_file)
    lines = [line for line in files[0].body.splitlines() if line.strip() and not line.startswith("#")]
    for line in lines:
        name, _, value = line.partition("=")
        if name in OTHER_PROGRAMS:
            continue
        field = env_names(SETTINGS_CLASSES[app])[name]
        assert shown(getattr(settings, field)) == value, name
    assert settings.production  # type: ignore[attr-defined]
    settings.check_production()  # type: ignore[attr-defined]  # a MONGODB_URI is set: no refusal


# ----------------------------------------------------------------------------- the entry points


def _factory(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def test_the_page_names_the_entry_points_and_they_exist() -> None:
    targets = {match["target"] or match["gunicorn"] for match in _FACTORY.finditer(page_text())}
    assert targets == set(ENTRY_POINTS.values())
    for target in targets:
        assert callable(_factory(target)), target


@pytest.fixture
def viewer_environment(clean_environment: pytest.MonkeyPatch, mongo_uri: str, database_name: str) -> None:
    clean_environment.setenv("MONGODB_URI", mongo_uri)
    clean_environment.setenv("DATABASE_NAME", database_name)
    clean_environment.setenv("BACKEND_PASSWORD", BACKEND_PASSWORD)
    clean_environment.setenv("ALLOWED_HOSTS", "viewer.example.com")


def test_the_viewer_entry_point_serves_the_health_check_the_page_describes(viewer_environment: None) -> None:
    app = _factory(ENTRY_POINTS["viewer"])()
    with TestClient(app, base_url="http://127.0.0.1:8882") as local:
        health = local.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok"}
    pattern = re.search(r"grep -q '(?P<pattern>[^']+)'", page_text())
    assert pattern is not None and pattern["pattern"] in health.text
    with TestClient(app, base_url="https://viewer.example.com") as public:
        assert public.get("/health").status_code == 200
    with TestClient(app, base_url="http://rebinding.example") as other:
        refused = other.get("/health")
    assert refused.status_code == 400
    assert f'`{{"detail": "{refused.json()["detail"]}"}}`' in prose()


def test_the_viewer_entry_point_needs_a_configured_backend_password(
    viewer_environment: None, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.delenv("BACKEND_PASSWORD")
    with pytest.raises(ValueError, match="BACKEND_PASSWORD is not set"):
        _factory(ENTRY_POINTS["viewer"])()


def test_the_playground_entry_point_answers_its_liveness_check(
    clean_environment: pytest.MonkeyPatch, mongo_uri: str, database_name: str
) -> None:
    clean_environment.setenv("MONGODB_URI", mongo_uri)
    clean_environment.setenv("PLAYGROUND_DATABASE_NAME", database_name)
    clean_environment.setenv("STRANDS_MODEL_PROVIDER", "demo")
    with TestClient(_factory(ENTRY_POINTS["playground"])(), base_url="http://127.0.0.1:8880") as local:
        response = local.get("/api/info")
    assert response.status_code == 200
    assert response.json()["demo_model"] is True


@pytest.mark.parametrize("app", sorted(ENTRY_POINTS))
def test_in_production_the_entry_points_refuse_the_embedded_server(
    app: str, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.setenv("ENV", "production")
    clean_environment.setenv("BACKEND_PASSWORD", BACKEND_PASSWORD)
    with pytest.raises(ValueError, match="MONGODB_URI"):
        _factory(ENTRY_POINTS[app])()


# ----------------------------------------------------------------------------- several workers, for real


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    """Factory: run ``uvicorn --factory <entry point> --workers 2`` as the page shows; stopped afterwards.

    Returns the process and the file its output goes to.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(target: str, port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"uvicorn-{port}.log"
        command = [sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*command, "--workers", "2"],
                cwd=tmp_path,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        return process, log

    yield start
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for(condition: Callable[[], Any], process: subprocess.Popen[bytes], log: Path) -> Any:
    """Poll ``condition`` until it returns a true value; the deadline only bounds a broken start."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if result := condition():
            return result
        time.sleep(0.2)
    pytest.fail(f"the server did not get ready:\n{log.read_text(errors='replace')}")


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("app", sorted(ENTRY_POINTS))
def test_the_documented_command_serves_with_several_workers(
    app: str, served: Any, mongo_uri: str, database_name: str
) -> None:
    app_variables = {name for cls in SETTINGS_CLASSES.values() for name in env_names(cls)}
    env = {key: value for key, value in os.environ.items() if key.upper() not in app_variables}
    env.update(
        ENV="production",
        MONGODB_URI=mongo_uri,
        DATABASE_NAME=database_name,
        PLAYGROUND_DATABASE_NAME=database_name,
        BACKEND_PASSWORD=BACKEND_PASSWORD,
        STRANDS_MODEL_PROVIDER="demo",
    )
    port = _free_port()
    process, log = served(ENTRY_POINTS[app], port, env)
    _wait_for(lambda: log.read_text(errors="replace").count("Application startup complete") == 2, process, log)
    path = "/health" if app == "viewer" else "/api/info"
    response = _wait_for(lambda: _get(f"http://127.0.0.1:{port}{path}"), process, log)
    assert response.status_code == 200, response.text
    if app == "viewer":
        assert response.json() == {"status": "ok", "database": "ok"}
