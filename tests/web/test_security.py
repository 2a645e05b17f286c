"""The shared security layer of both web apps (``web_common``): headers on every response, the ``Host``
allow-list, request-size caps and the ``ENV=production`` guard.

Each test runs against both apps as ``create_app`` builds them (the viewer on the test database, the playground
with the offline demo model); the start-up refusals run the real console scripts.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from mongodb_session_manager.demo_model import DemoModel
from playground.chat import Settings as PlaygroundSettings
from playground.chat import create_app as create_playground
from playground.chat.app import CONTENT_SECURITY_POLICY as PLAYGROUND_CSP
from playground.chat.config import chat_request_bytes
from session_viewer.backend import Settings as ViewerSettings
from session_viewer.backend import create_app as create_viewer
from session_viewer.backend.app import CONTENT_SECURITY_POLICY as VIEWER_CSP
from web_common.hosts import HostAllowList, default_hosts, parse_host_list, request_host
from web_common.settings import ProductionConfigurationError

BIN = Path(sys.executable).parent
BACKEND_PASSWORD = "security-test-password-0123456789"
AUTH = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
LOCAL = "http://localhost"
SETTINGS_VARIABLES = ("ENV", "ALLOWED_HOSTS", "PLAYGROUND_ALLOWED_HOSTS", "MAX_REQUEST_BYTES", "BACKEND_HOST")


class App:
    """One of the two apps: how to build it, its CSP, its setting names and routes the tests use."""

    def __init__(self, name: str, csp: str, prefix: str, wrong_method: tuple[str, str], api: str) -> None:
        self.name, self.csp, self.prefix, self.wrong_method, self.api = name, csp, prefix, wrong_method, api

    def settings(self, mongo_uri: str | None, database_name: str, **values: Any) -> Any:
        """Settings for the test database, without any ``.env``."""
        common = {"_env_file": None, "mongodb_uri": mongo_uri, "database_name": database_name}
        if self.name == "viewer":
            return ViewerSettings(**common, backend_password=BACKEND_PASSWORD, **values)
        return PlaygroundSettings(**common, demo_token_delay_ms=0, **values)

    def create(self, settings: Any) -> FastAPI:
        """``create_app`` of this app."""
        if self.name == "viewer":
            return create_viewer(settings)
        return create_playground(settings, model=DemoModel())


VIEWER = App("viewer", VIEWER_CSP, "", ("DELETE", "/api/v1/sessions/search"), "/api/v1/collections")
PLAYGROUND = App("playground", PLAYGROUND_CSP, "PLAYGROUND_", ("DELETE", "/api/info"), "/api/info")
APPS = [pytest.param(VIEWER, id="viewer"), pytest.param(PLAYGROUND, id="playground")]


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def started(mongo_uri: str, database_name: str) -> Callable[..., Any]:
    """Factory: ``started(app, **settings)`` is a started ``TestClient`` of ``app`` on localhost."""

    @contextmanager
    def start(app: App, base_url: str = LOCAL, routes: bool = False, **values: Any) -> Iterator[TestClient]:
        built = app.create(app.settings(mongo_uri, database_name, **values))
        if routes:
            for path in ("/api/boom", "/boom/now"):
                built.add_api_route(path, _boom)
        with TestClient(built, base_url=base_url, raise_server_exceptions=False) as client:
            yield client

    return start


def _boom() -> None:
    raise RuntimeError("a bug")


def assert_secured(response: Any, app: App) -> None:
    """The security headers every response carries; API responses are never cached."""
    headers = response.headers
    assert headers["content-security-policy"] == app.csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    if response.request.url.path.startswith("/api/"):
        assert headers["cache-control"] == "no-store"


def get(client: TestClient, path: str, **kwargs: Any) -> Any:
    return client.get(path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)


# ----------------------------------------------------------------------------- headers on every response


@pytest.mark.parametrize("app", APPS)
def test_the_framework_s_own_500_404_and_405_carry_the_security_headers(started: Callable, app: App) -> None:
    with started(app, routes=True) as client:
        for path in ("/api/boom", "/boom/now"):
            crashed = get(client, path)
            assert crashed.status_code == 500
            assert crashed.json() == {"detail": "internal server error"}  # never the exception's text
            assert_secured(crashed, app)
        for path in ("/api/no/such/route", "/no/such/page"):
            missing = get(client, path)
            assert missing.status_code == 404
            assert_secured(missing, app)
        method, path = app.wrong_method
        wrong = client.request(method, path, headers=AUTH)
        assert wrong.status_code == 405
        assert_secured(wrong, app)
        assert_secured(get(client, app.api), app)


def test_a_route_s_own_cache_control_is_kept(started: Callable) -> None:
    with started(PLAYGROUND) as client:
        page = client.get("/chat.html")
    assert page.headers["cache-control"] == "no-cache"
    assert_secured(page, PLAYGROUND)


# ----------------------------------------------------------------------------- the Host allow-list


@pytest.mark.parametrize("app", APPS)
def test_by_default_only_the_loopback_names_are_answered(started: Callable, app: App) -> None:
    with started(app) as client:
        for host in ("localhost", "LOCALHOST:8882", "localhost.", "127.0.0.1:1234", "[::1]:8880", "[::1]"):
            assert get(client, app.api, headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "testserver", "[::1", "a:b:c"):
            refused = get(client, app.api, headers={"Host": host})
            assert refused.status_code == 400, host
            assert refused.json() == {"detail": f"host not allowed (see {app.prefix}ALLOWED_HOSTS)"}
            assert_secured(refused, app)


@pytest.mark.parametrize("app", APPS)
def test_testclient_s_default_host_is_refused_everywhere(started: Callable, app: App) -> None:
    with started(app, base_url="http://testserver") as client:
        for path in ("/", "/health", app.api, "/no/such/page"):
            assert client.get(path).status_code == 400, path


@pytest.mark.parametrize("app", APPS)
def test_the_setting_adds_names_and_subdomains(started: Callable, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{app.prefix}ALLOWED_HOSTS", "chat.example.com, *.corp.example, 10.0.0.7")
    with started(app) as client:
        for host in ("chat.example.com", "CHAT.example.com:443", "a.corp.example", "b.a.corp.example", "10.0.0.7:80"):
            assert get(client, app.api, headers={"Host": host}).status_code == 200, host
        assert get(client, app.api, headers={"Host": "localhost"}).status_code == 200  # still
        for host in ("corp.example", "xcorp.example", "example.com", "10.0.0.8"):
            assert get(client, app.api, headers={"Host": host}).status_code == 400, host


def test_each_app_reads_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", "viewer.example")
    monkeypatch.setenv("PLAYGROUND_ALLOWED_HOSTS", "chat.example")
    viewer, playground = ViewerSettings(_env_file=None), PlaygroundSettings(_env_file=None)
    assert viewer.host_allow_list.allows("viewer.example") and not viewer.host_allow_list.allows("chat.example")
    assert playground.host_allow_list.allows("chat.example") and not playground.host_allow_list.allows("viewer.example")


@pytest.mark.parametrize("app", APPS)
def test_a_star_allows_any_host(started: Callable, app: App) -> None:
    with started(app, allowed_hosts="*") as client:
        assert get(client, app.api, headers={"Host": "anything.example"}).status_code == 200


@pytest.mark.parametrize("app", APPS)
def test_the_bound_host_is_allowed_unless_it_is_every_interface(started: Callable, app: App) -> None:
    host_field = "backend_host" if app.name == "viewer" else "host"
    with started(app, **{host_field: "192.168.1.5"}) as client:
        assert get(client, app.api, headers={"Host": "192.168.1.5:8000"}).status_code == 200
    with started(app, **{host_field: "0.0.0.0"}) as client:
        assert get(client, app.api, headers={"Host": "0.0.0.0"}).status_code == 400
        assert get(client, app.api, headers={"Host": "192.168.1.5"}).status_code == 400
        assert get(client, app.api, headers={"Host": "localhost"}).status_code == 200


@pytest.mark.parametrize("entry", ["example.com:8080", "http://example.com", "a.*.example", "*example.com", "a b"])
def test_malformed_allowed_hosts_are_refused_at_start_up(entry: str) -> None:
    with pytest.raises(ValidationError, match="is not a host name"):
        ViewerSettings(_env_file=None, allowed_hosts=f"localhost, {entry}")
    with pytest.raises(ValidationError, match="is not a host name"):
        PlaygroundSettings(_env_file=None, allowed_hosts=entry)


def test_a_request_without_a_host_header_is_refused() -> None:
    """HTTP/1.0 may omit the header; a browser never does. Nothing but ``*`` answers it."""
    settings = ViewerSettings(_env_file=None, backend_password=BACKEND_PASSWORD)
    assert raw_request(create_viewer(settings), "GET", "/health", headers=[])[0] == 400
    anything = settings.model_copy(update={"allowed_hosts": "*"})
    assert raw_request(create_viewer(anything), "GET", "/no/such/page", headers=[])[0] == 404


def test_host_header_parsing() -> None:
    assert [request_host(h) for h in ("Example.COM:80", "[0:0::1]:8080", "[::1]", "host.", "a:", "[::1]x", "")] == [
        "example.com",
        "::1",
        "::1",
        "host",
        None,
        None,
        None,
    ]
    assert parse_host_list(" A.example ,, [::1], *.B.example., 0:0::1 ") == ["a.example", "::1", "*.b.example", "::1"]
    assert default_hosts("0.0.0.0") == default_hosts("::") == ["localhost", "127.0.0.1", "::1"]
    assert default_hosts("My-Host") == ["localhost", "127.0.0.1", "::1", "my-host"]
    allow = HostAllowList(["*.example.com"])
    assert allow.allows("a.example.com") and not allow.allows("example.com") and not allow.allows(".example.com")
    assert not allow.allows(None)


# ----------------------------------------------------------------------------- request-size caps


def test_the_playground_s_default_cap_holds_the_longest_message_of_escaped_emoji(started: Callable) -> None:
    settings = PlaygroundSettings(_env_file=None)
    body = json.dumps({"session_id": "chat-" + "0" * 32, "message": "\N{GRINNING FACE}" * settings.max_message_chars})
    assert len(body) > 12 * settings.max_message_chars  # every character a \\uXXXX\\uXXXX pair
    assert settings.max_request_bytes == 65536 >= chat_request_bytes(settings.max_message_chars) > len(body)
    with started(PLAYGROUND) as client:
        reply = client.post("/api/chat/stream", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200
    assert '"type": "done"' in reply.text


def test_a_playground_cap_too_small_for_its_longest_message_is_refused() -> None:
    with pytest.raises(ValidationError, match="PLAYGROUND_MAX_REQUEST_BYTES \\(16384\\) must be at least 48512"):
        PlaygroundSettings(_env_file=None, max_request_bytes=16384)
    assert PlaygroundSettings(_env_file=None, max_request_bytes=16384, max_message_chars=1000).max_request_bytes


def test_the_playground_refuses_large_bodies_and_long_urls(started: Callable) -> None:
    with started(PLAYGROUND, max_request_bytes=2048, max_message_chars=100) as client:
        message = {"session_id": "chat-1", "message": "x" * 3000}
        declared = client.post("/api/chat/stream", json=message)
        assert declared.status_code == 413
        assert declared.json() == {"detail": "request body too large"}
        assert_secured(declared, PLAYGROUND)
        chunks = (json.dumps(message)[i : i + 500].encode() for i in range(0, 3100, 500))
        streamed = client.post("/api/chat/stream", content=chunks, headers={"Content-Type": "application/json"})
        assert "content-length" not in streamed.request.headers  # chunked: counted as it is read
        assert streamed.status_code == 413
        assert streamed.json() == {"detail": "request body too large"}
        long_url = client.get("/api/sessions/chat-1/history", params={"x": "y" * 2100})
        assert long_url.status_code == 414
        assert long_url.json() == {"detail": "request URL too long"}
        assert_secured(long_url, PLAYGROUND)


def test_a_gigabyte_announced_is_refused_before_the_app_reads_anything() -> None:
    settings = PlaygroundSettings(_env_file=None)
    status, received = raw_request(
        create_playground(settings, model=DemoModel()),
        "POST",
        "/api/chat/stream",
        headers=[(b"host", b"localhost"), (b"content-length", str(10**9).encode())],
    )
    assert (status, received) == (413, 0)


def raw_request(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """Call ``app`` as a server would, without a lifespan; returns the status and how often it read the body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    reads, sent = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], reads


# ----------------------------------------------------------------------------- ENV=production


@pytest.mark.parametrize("app", APPS)
def test_production_without_a_mongodb_uri_refuses_to_build_the_app(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV", "Production")
    settings = app.settings(None, "any")
    assert settings.production
    with pytest.raises(ProductionConfigurationError, match=r"^ENV=production and MONGODB_URI is not set: "):
        app.create(settings)
    app.create(settings.model_copy(update={"mongodb_uri": "mongodb://db.example:27017"}))  # builds: sends nothing
    monkeypatch.setenv("ENV", "development")
    app.create(app.settings(None, "any"))  # the embedded server outside production


def run_cli(program: str, tmp_path: Path, **environment: str) -> subprocess.CompletedProcess:
    """Run a console script with no MongoDB, password or app settings but ``environment``."""
    drop = ("MONGODB_URI", "PLAYGROUND_MONGODB_URI", "BACKEND_PASSWORD", "LOG_LEVEL", *SETTINGS_VARIABLES)
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(STRANDS_MODEL_PROVIDER="demo", MONGODB_SESSION_MANAGER_DATA_DIR=str(tmp_path / "embedded"))
    env.update(environment)
    return subprocess.run(
        [str(BIN / program), "--port", "0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
@pytest.mark.parametrize("program", ["session-viewer", "playground"])
def test_the_clis_refuse_the_embedded_server_in_production(program: str, tmp_path: Path) -> None:
    result = run_cli(program, tmp_path, ENV="production")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{program}: ENV=production and MONGODB_URI is not set: the embedded development MongoDB server is not for "
        "production; set MONGODB_URI to your MongoDB deployment"
    ]
    assert not (tmp_path / "embedded").exists()  # no embedded server was started


@pytest.mark.slow
@pytest.mark.parametrize(("program", "health"), [("session-viewer", "health"), ("playground", "api/info")])
def test_the_clis_allow_the_host_given_with_host(program: str, health: str, tmp_path: Path, mongo_uri: str) -> None:
    drop = ("PLAYGROUND_MONGODB_URI", "LOG_LEVEL", *SETTINGS_VARIABLES)
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(STRANDS_MODEL_PROVIDER="demo", MONGODB_URI=mongo_uri, BACKEND_PASSWORD=BACKEND_PASSWORD)
    command = [str(BIN / program), "--host", "127.0.0.2", "--port", "0"]
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = next((m.group(1) for line in server.stderr if (m := re.search(r"open (http://\S+/)", line))), None)
        assert url and url.startswith("http://127.0.0.2:"), url
        assert httpx.get(url + health, timeout=30).status_code == 200  # Host: 127.0.0.2:<port>
        assert httpx.get(url + health, headers={"Host": "rebound.example"}, timeout=30).status_code == 400
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
