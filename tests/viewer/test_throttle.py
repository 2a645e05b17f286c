"""Wrong viewer passwords are throttled per client and per session: 429 with ``Retry-After``, never for good.

Through the API: sessions written by ``MongoDBSessionManager`` on the wire-protocol server, the app started by
``TestClient``. Time is a fake clock handed to the app's throttle (nothing sleeps); the client's address is set per
request by a small ASGI wrapper, as uvicorn sets it from the connection (or, with ``--proxy-headers``, from the
proxy's ``X-Forwarded-For``).
"""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from pymongo import MongoClient

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import CommandLog
from session_viewer.backend import Settings, create_app
from web_common.throttle import FailureThrottle, PasswordThrottle

COLLECTION = "sessions"
BACKEND_PASSWORD = "correct-horse-battery-staple"
AUTH = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
WRONG_BACKEND = {"Authorization": "Bearer wrong-password-wrong-password"}
SEARCH = "/api/v1/sessions/search"
MAX_FAILURES = 5
WINDOW = 60


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def with_client_address(app: Any) -> Callable[..., Any]:
    """Wrap ``app`` so that the ``X-Test-Client`` header becomes the connection's client address."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            address = headers.get(b"x-test-client", b"203.0.113.1").decode()
            scope = {**scope, "client": (address, 50000)}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def passwords(mongo_uri: str, database_name: str) -> dict[str, str]:
    """Two sessions written by the library; their viewer passwords."""
    with MongoClient(mongo_uri, tz_aware=True) as client:
        managers = {
            session_id: MongoDBSessionManager(
                session_id, client=client, database_name=database_name, collection_name=COLLECTION
            )
            for session_id in ("support-1", "support-2")
        }
        return {session_id: manager.get_session_viewer_password() for session_id, manager in managers.items()}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def start(mongo_uri: str, database_name: str, clock: FakeClock) -> Callable[..., Any]:
    """Factory: a started app whose throttle runs on ``clock``, as a ``TestClient`` context manager."""

    @contextmanager
    def started(client_options: dict[str, Any] | None = None, **overrides: Any) -> Iterator[TestClient]:
        settings = Settings(
            _env_file=None,
            mongodb_uri=mongo_uri,
            database_name=database_name,
            collection_name=COLLECTION,
            backend_password=BACKEND_PASSWORD,
            **overrides,
        )
        app = create_app(settings, client_options=client_options)
        app.state.password_throttle = PasswordThrottle(
            settings.password_max_failures, settings.password_failure_window_seconds, clock=clock
        )
        with TestClient(with_client_address(app), base_url="http://localhost") as client:
            yield client

    return started


@pytest.fixture
def api(start: Callable[..., Any], passwords: dict[str, str]) -> Iterator[TestClient]:
    with start() as client:
        yield client


def session(api: TestClient, session_id: str, password: str, client: str = "203.0.113.1") -> httpx.Response:
    """GET one session's detail with its viewer password, from ``client``."""
    headers = {"X-Session-Password": password, "X-Test-Client": client}
    return api.get(f"/api/v1/sessions/{session_id}", headers=headers)


def backend(api: TestClient, headers: dict[str, str], client: str = "203.0.113.1") -> httpx.Response:
    """GET the search with ``headers`` (a backend password or none), from ``client``."""
    return api.get(SEARCH, headers={**headers, "X-Test-Client": client})


def assert_throttled(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry_after)
    assert response.json() == {"detail": f"too many wrong passwords: try again in {retry_after} seconds"}


# ----------------------------------------------------------------------------- session passwords


def test_after_five_wrong_session_passwords_the_sixth_attempt_is_429_with_retry_after(
    api: TestClient, passwords: dict[str, str]
) -> None:
    for _ in range(MAX_FAILURES):
        assert session(api, "support-1", "wrong-guess").status_code == 401
    assert_throttled(session(api, "support-1", "wrong-guess"), retry_after=WINDOW)


def test_the_right_password_is_refused_while_blocked_and_accepted_after_the_window(
    api: TestClient, passwords: dict[str, str], clock: FakeClock
) -> None:
    for _ in range(MAX_FAILURES):
        session(api, "support-1", "wrong-guess")
    assert_throttled(session(api, "support-1", passwords["support-1"]), retry_after=WINDOW)
    clock.advance(WINDOW - 1)
    assert_throttled(session(api, "support-1", passwords["support-1"]), retry_after=1)
    clock.advance(1)
    assert session(api, "support-1", passwords["support-1"]).status_code == 200


def test_a_blocked_attempt_is_not_checked_against_the_database(
    start: Callable[..., Any], passwords: dict[str, str], command_log: CommandLog
) -> None:
    with start(client_options={"event_listeners": [command_log]}) as api:
        for _ in range(MAX_FAILURES):
            session(api, "support-1", "wrong-guess")
        command_log.clear()
        assert session(api, "support-1", passwords["support-1"]).status_code == 429
        assert session(api, "support-1", "another-guess").status_code == 429
        assert command_log.commands == []


def test_a_session_is_throttled_across_clients_and_others_stay_open(api: TestClient, passwords: dict[str, str]) -> None:
    for number in range(MAX_FAILURES):  # each guess from another address: no client reaches its own limit
        assert session(api, "support-1", "wrong-guess", client=f"198.51.100.{number}").status_code == 401
    assert_throttled(session(api, "support-1", passwords["support-1"], client="192.0.2.9"), retry_after=WINDOW)
    assert session(api, "support-2", passwords["support-2"], client="192.0.2.9").status_code == 200
    assert session(api, "support-2", passwords["support-2"], client="198.51.100.0").status_code == 200
    # The operator is not locked out of the session under attack: the backend password still opens it.
    response = api.get("/api/v1/sessions/support-1", headers={**AUTH, "X-Test-Client": "192.0.2.9"})
    assert response.status_code == 200


def test_a_client_is_throttled_across_sessions(api: TestClient, passwords: dict[str, str]) -> None:
    for number in range(MAX_FAILURES):  # a guess on another (missing) session each time
        assert session(api, f"guess-{number}", "wrong-guess").status_code == 401
    assert_throttled(session(api, "support-2", passwords["support-2"]), retry_after=WINDOW)
    assert session(api, "support-2", passwords["support-2"], client="192.0.2.9").status_code == 200


def test_a_right_session_password_does_not_reset_the_clients_count(api: TestClient, passwords: dict[str, str]) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert backend(api, WRONG_BACKEND).status_code == 401
    assert session(api, "support-2", passwords["support-2"]).status_code == 200
    assert backend(api, WRONG_BACKEND).status_code == 401
    assert_throttled(backend(api, AUTH), retry_after=WINDOW)


def test_concurrent_wrong_attempts_cannot_exceed_the_limit(
    start: Callable[..., Any], passwords: dict[str, str]
) -> None:
    with start() as api:
        app = api.app

        async def burst() -> list[int]:
            transport = httpx.ASGITransport(app=app)  # in the loop of the app's MongoDB client
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
                headers = {"X-Session-Password": "wrong-guess"}
                responses = await asyncio.gather(
                    *(client.get("/api/v1/sessions/support-1", headers=headers) for _ in range(3 * MAX_FAILURES))
                )
            return sorted(response.status_code for response in responses)

        assert api.portal is not None
        statuses = api.portal.call(burst)
    assert statuses == [401] * MAX_FAILURES + [429] * (2 * MAX_FAILURES)


# ----------------------------------------------------------------------------- the backend password


def test_wrong_backend_passwords_are_throttled_per_client(api: TestClient, clock: FakeClock) -> None:
    for _ in range(MAX_FAILURES):
        assert backend(api, WRONG_BACKEND).status_code == 401
    assert_throttled(backend(api, WRONG_BACKEND), retry_after=WINDOW)
    assert_throttled(backend(api, AUTH), retry_after=WINDOW)
    assert backend(api, AUTH, client="192.0.2.9").status_code == 200  # another client is not affected
    assert backend(api, WRONG_BACKEND, client="192.0.2.9").status_code == 401
    clock.advance(WINDOW)
    assert backend(api, AUTH).status_code == 200


def test_a_right_backend_password_clears_the_clients_failures(api: TestClient) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert backend(api, WRONG_BACKEND).status_code == 401
    assert backend(api, AUTH).status_code == 200
    for _ in range(MAX_FAILURES):
        assert backend(api, WRONG_BACKEND).status_code == 401
    assert backend(api, WRONG_BACKEND).status_code == 429


def test_requests_without_a_password_are_not_counted(api: TestClient, passwords: dict[str, str]) -> None:
    for _ in range(3 * MAX_FAILURES):
        assert backend(api, {}).status_code == 401
        assert backend(api, {"Authorization": f"Basic {BACKEND_PASSWORD}"}).status_code == 401
        assert session(api, "support-1", "").status_code == 401
    assert backend(api, AUTH).status_code == 200
    assert session(api, "support-1", passwords["support-1"]).status_code == 200


def test_the_limits_come_from_the_settings(start: Callable[..., Any], clock: FakeClock) -> None:
    with start(password_max_failures=2, password_failure_window_seconds=10) as api:
        assert backend(api, WRONG_BACKEND).status_code == 401
        assert backend(api, WRONG_BACKEND).status_code == 401
        assert_throttled(backend(api, WRONG_BACKEND), retry_after=10)
        clock.advance(10)
        assert backend(api, AUTH).status_code == 200


def test_create_app_throttles_with_the_settings_limits(mongo_uri: str, database_name: str) -> None:
    settings = Settings(
        _env_file=None, mongodb_uri=mongo_uri, database_name=database_name, backend_password=BACKEND_PASSWORD
    )
    with TestClient(create_app(settings), base_url="http://localhost") as api:
        statuses = [api.get(SEARCH, headers=WRONG_BACKEND).status_code for _ in range(MAX_FAILURES + 1)]
    assert statuses == [401] * MAX_FAILURES + [429]


def test_the_settings_are_read_from_the_environment_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSWORD_MAX_FAILURES", "3")
    monkeypatch.setenv("PASSWORD_FAILURE_WINDOW_SECONDS", "120")
    settings = Settings(_env_file=None)
    assert (settings.password_max_failures, settings.password_failure_window_seconds) == (3, 120)
    monkeypatch.setenv("PASSWORD_MAX_FAILURES", "0")
    with pytest.raises(ValidationError, match="password_max_failures"):
        Settings(_env_file=None)


# ----------------------------------------------------------------------------- the throttle itself (pure logic)


def test_memory_is_bounded_by_forgetting_the_least_recently_failed_key(clock: FakeClock) -> None:
    throttle = FailureThrottle(max_failures=2, window_seconds=WINDOW, max_keys=3, clock=clock)
    for key in ("a", "b", "a", "c", "d"):
        throttle.record_failure(key)
    assert len(throttle) == 3
    assert throttle.retry_after("a") == WINDOW  # recently failed: kept, and blocked
    throttle.record_failure("b")  # "b" was the least recently failed: forgotten, so this is its first failure
    assert throttle.retry_after("b") is None
    for index in range(1000):
        throttle.record_failure(f"client-{index}")
    assert len(throttle) == 3


def test_expired_failures_are_forgotten(clock: FakeClock) -> None:
    throttle = FailureThrottle(max_failures=2, window_seconds=WINDOW, clock=clock)
    throttle.record_failure("a")
    clock.advance(30)
    assert throttle.record_failure("a") == 30  # blocked until the first failure is WINDOW old
    clock.advance(30)
    assert throttle.retry_after("a") is None  # one failure still counts: one more try
    assert throttle.record_failure("a") == 30
    clock.advance(WINDOW)
    assert throttle.retry_after("a") is None
    assert len(throttle) == 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FailureThrottle(max_failures=0)
