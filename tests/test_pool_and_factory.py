"""Connection pool singleton and session manager factory, against a real wire-protocol server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager.pool import ConnectionCounter, MongoDBConnectionPool

THREADS = 20
MANAGERS = 50


@pytest.fixture(autouse=True)
def _reset_singletons() -> Iterator[None]:
    """Start and end every test with no pool and no global factory."""
    _close_global_factory()
    MongoDBConnectionPool.close()
    yield
    _close_global_factory()
    MongoDBConnectionPool.close()


def _close_global_factory() -> None:
    """Close the global factory when the factory module can be imported."""
    try:
        from mongodb_session_manager.factory import close_global_factory
    except ImportError:
        return
    close_global_factory()


@pytest.fixture
def client_constructions(monkeypatch: pytest.MonkeyPatch) -> list[MongoClient[Any]]:
    """Record every ``MongoClient`` constructed during the test."""
    constructed: list[MongoClient[Any]] = []
    original_init = MongoClient.__init__

    def counting_init(self: MongoClient[Any], *args: Any, **kwargs: Any) -> None:
        constructed.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(MongoClient, "__init__", counting_init)
    return constructed


def _with_credentials(uri: str, user: str, password: str) -> str:
    """Return ``uri`` with ``user:password@`` inserted after the scheme."""
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest.rsplit('@', 1)[-1]}"


def _wait_until(predicate: Any, timeout_s: float = 15.0) -> None:
    """Poll ``predicate`` until it is true or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.05)


# --- MongoDBConnectionPool -------------------------------------------------------------------


def test_get_client_before_initialize_raises_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"not initialized.*initialize"):
        MongoDBConnectionPool.get_client()


def test_stats_before_initialize_report_not_initialized() -> None:
    assert MongoDBConnectionPool.get_pool_stats() == {
        "status": "not_initialized",
        "hosts": [],
        "options": {},
        "connections": None,
    }


def test_initialize_from_many_threads_creates_one_client(
    mongo_uri: str, client_constructions: list[MongoClient[Any]]
) -> None:
    barrier = threading.Barrier(THREADS)
    results: list[MongoClient[Any]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(MongoDBConnectionPool.initialize(connection_string=mongo_uri, maxPoolSize=100))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == THREADS
    assert len({id(client) for client in results}) == 1
    assert len(client_constructions) == 1
    assert MongoDBConnectionPool.get_client() is results[0]
    assert results[0].admin.command("ping")["ok"] == 1


def test_initialize_again_with_same_settings_returns_same_client_silently(
    mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = MongoDBConnectionPool.initialize(connection_string=mongo_uri, maxPoolSize=50)
    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager.pool"):
        assert MongoDBConnectionPool.initialize(connection_string=mongo_uri, maxPoolSize=50) is first
        assert MongoDBConnectionPool.initialize(mongo_uri) is first
        assert MongoDBConnectionPool.initialize() is first
    assert caplog.records == []


def test_initialize_with_different_settings_warns_and_keeps_existing_client(
    mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = MongoDBConnectionPool.initialize(connection_string=mongo_uri)
    other = _with_credentials(mongo_uri, "bob", "hunter2")
    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager.pool"):
        assert MongoDBConnectionPool.initialize(connection_string=other, maxPoolSize=7) is first

    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "connection_string" in message
    assert "maxPoolSize" in message
    assert "hunter2" not in message
    assert "bob" not in message
    assert MongoDBConnectionPool.get_pool_stats()["options"]["maxPoolSize"] == 100


def test_defaults_apply_and_user_options_override_them(mongo_uri: str) -> None:
    MongoDBConnectionPool.initialize(connection_string=mongo_uri, maxPoolSize=40, retryReads=False)

    assert MongoDBConnectionPool.get_pool_stats()["options"] == {
        "maxPoolSize": 40,
        "minPoolSize": 10,
        "maxIdleTimeMS": 30000,
        "waitQueueTimeoutMS": 5000,
        "retryWrites": True,
        "retryReads": False,
    }


def test_options_in_the_uri_are_not_overridden_by_defaults(mongo_uri: str) -> None:
    separator = "&" if "?" in mongo_uri else "?"
    MongoDBConnectionPool.initialize(connection_string=f"{mongo_uri}{separator}maxPoolSize=25&minPoolSize=2")

    options = MongoDBConnectionPool.get_pool_stats()["options"]
    assert options["maxPoolSize"] == 25
    assert options["minPoolSize"] == 2
    assert options["waitQueueTimeoutMS"] == 5000


def test_initialize_without_connection_string_uses_mongodb_uri(mongo_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)

    client = MongoDBConnectionPool.initialize()

    assert client.admin.command("ping")["ok"] == 1


def test_stats_never_contain_credentials(mongo_uri: str) -> None:
    MongoDBConnectionPool.initialize(connection_string=_with_credentials(mongo_uri, "alice", "s3cr3t-pw"))

    stats = MongoDBConnectionPool.get_pool_stats()

    assert stats["status"] == "connected"
    host_port = mongo_uri.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split(",")[0]
    assert host_port in stats["hosts"]
    text = repr(stats)
    for secret in ("alice", "s3cr3t-pw", "mongodb://", "@"):
        assert secret not in text


def test_stats_report_live_connection_counts(mongo_uri: str) -> None:
    client = MongoDBConnectionPool.initialize(connection_string=mongo_uri, minPoolSize=0)
    client.admin.command("ping")

    connections = MongoDBConnectionPool.get_pool_stats()["connections"]

    assert connections["created_total"] >= 1
    assert connections["open"] >= 1
    assert connections["in_use"] == 0


def test_user_event_listeners_still_receive_events(mongo_uri: str) -> None:
    listener = ConnectionCounter()
    client = MongoDBConnectionPool.initialize(connection_string=mongo_uri, event_listeners=[listener])

    client.admin.command("ping")

    assert listener.snapshot()["created_total"] >= 1


def test_close_resets_the_pool_and_is_safe_twice(mongo_uri: str) -> None:
    first = MongoDBConnectionPool.initialize(connection_string=mongo_uri)

    MongoDBConnectionPool.close()
    MongoDBConnectionPool.close()

    with pytest.raises(RuntimeError):
        MongoDBConnectionPool.get_client()
    assert MongoDBConnectionPool.get_pool_stats()["status"] == "not_initialized"
    second = MongoDBConnectionPool.initialize(connection_string=mongo_uri)
    assert second is not first
    assert second.admin.command("ping")["ok"] == 1


# --- MongoDBSessionManagerFactory ------------------------------------------------------------


def test_factory_creates_managers_without_new_connections_or_clients(
    mongo_uri: str, database_name: str, client_constructions: list[MongoClient[Any]]
) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    listener = ConnectionCounter()
    factory = MongoDBSessionManagerFactory(
        connection_string=mongo_uri, database_name=database_name, event_listeners=[listener]
    )
    warm_up = factory.create_session_manager("warm-up")
    assert warm_up.session_repository.read_session("warm-up") is not None
    min_pool_size = factory.get_connection_stats()["options"]["minPoolSize"]
    _wait_until(lambda: listener.snapshot()["created_total"] >= min_pool_size)
    clients_before = len(client_constructions)
    connections_before = listener.snapshot()["created_total"]

    for index in range(MANAGERS):
        session_id = f"session-{index}"
        manager = factory.create_session_manager(session_id)
        assert manager.session_repository.read_session(session_id).session_id == session_id
        manager.get_metadata()

    assert listener.snapshot()["created_total"] - connections_before == 0
    assert len(client_constructions) - clients_before == 0
    assert factory.client.admin.command("ping")["ok"] == 1
    factory.close()


def test_factory_uses_its_defaults_and_per_call_overrides(mongo_uri: str, database_name: str) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    factory = MongoDBSessionManagerFactory(
        connection_string=mongo_uri, database_name=database_name, collection_name="sessions"
    )
    factory.create_session_manager("default-place")
    factory.create_session_manager("other-place", collection_name="archive")

    database = factory.client[database_name]
    assert database["sessions"].find_one({"_id": "default-place"}) is not None
    assert database["archive"].find_one({"_id": "other-place"}) is not None
    assert database["sessions"].find_one({"_id": "other-place"}) is None
    factory.close()


def test_manager_close_leaves_the_shared_client_usable(mongo_uri: str, database_name: str) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    factory = MongoDBSessionManagerFactory(connection_string=mongo_uri, database_name=database_name)
    manager = factory.create_session_manager("closing")

    manager.close()

    assert factory.client.admin.command("ping")["ok"] == 1
    assert MongoDBConnectionPool.get_client() is factory.client
    other = factory.create_session_manager("after-close")
    assert other.session_repository.read_session("after-close") is not None
    factory.close()


def test_factory_close_closes_the_pool_it_created_and_is_safe_twice(mongo_uri: str) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    factory = MongoDBSessionManagerFactory(connection_string=mongo_uri)
    assert factory.owns_pool

    factory.close()
    factory.close()

    assert MongoDBConnectionPool.get_pool_stats()["status"] == "not_initialized"
    assert factory.get_connection_stats()["status"] == "closed"
    with pytest.raises(RuntimeError, match="closed"):
        factory.create_session_manager("too-late")


def test_pool_stays_open_while_another_factory_uses_it(mongo_uri: str) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    first = MongoDBSessionManagerFactory(connection_string=mongo_uri)
    second = MongoDBSessionManagerFactory(connection_string=mongo_uri)
    assert first.client is second.client

    first.close()
    assert second.client.admin.command("ping")["ok"] == 1

    second.close()
    assert MongoDBConnectionPool.get_pool_stats()["status"] == "not_initialized"


def test_factory_close_leaves_a_pool_initialized_directly_open(mongo_uri: str) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    client = MongoDBConnectionPool.initialize(connection_string=mongo_uri)
    factory = MongoDBSessionManagerFactory(connection_string=mongo_uri)
    assert factory.client is client

    factory.close()

    assert MongoDBConnectionPool.get_client() is client
    assert client.admin.command("ping")["ok"] == 1


def test_factory_borrowing_a_client_never_closes_it(mongo_uri: str, database_name: str) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    client: MongoClient[Any] = MongoClient(_with_credentials(mongo_uri, "carol", "pa55word"), connect=False)
    plain: MongoClient[Any] = MongoClient(mongo_uri)
    try:
        factory = MongoDBSessionManagerFactory(client=plain, database_name=database_name)
        assert not factory.owns_pool
        factory.create_session_manager("borrowed").close()
        factory.close()
        assert plain.admin.command("ping")["ok"] == 1
        assert MongoDBConnectionPool.get_pool_stats()["status"] == "not_initialized"

        stats = MongoDBSessionManagerFactory(client=client).get_connection_stats()
        assert stats["status"] == "connected"
        assert set(stats) == {"status", "hosts", "options", "connections"}
        assert stats["connections"] is None
        assert "pa55word" not in repr(stats)
        assert "carol" not in repr(stats)
    finally:
        client.close()
        plain.close()


def test_factory_stats_match_pool_stats(mongo_uri: str) -> None:
    from mongodb_session_manager.factory import MongoDBSessionManagerFactory

    factory = MongoDBSessionManagerFactory(connection_string=mongo_uri, maxPoolSize=33)

    stats = factory.get_connection_stats()

    assert stats["options"]["maxPoolSize"] == 33
    assert stats["connections"] is not None
    assert stats == MongoDBConnectionPool.get_pool_stats()
    factory.close()


# --- global factory and helper ---------------------------------------------------------------


def test_get_global_factory_before_initialize_raises_clear_error() -> None:
    from mongodb_session_manager.factory import get_global_factory

    with pytest.raises(RuntimeError, match="initialize_global_factory"):
        get_global_factory()


def test_global_factory_lifecycle(mongo_uri: str, database_name: str, caplog: pytest.LogCaptureFixture) -> None:
    from mongodb_session_manager.factory import (
        close_global_factory,
        get_global_factory,
        initialize_global_factory,
    )

    factory = initialize_global_factory(connection_string=mongo_uri, database_name=database_name, maxPoolSize=60)
    assert get_global_factory() is factory
    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager.factory"):
        assert initialize_global_factory(connection_string=mongo_uri, database_name="elsewhere") is factory
    assert any("already initialized" in record.getMessage() for record in caplog.records)

    manager = get_global_factory().create_session_manager("global-session")
    assert manager.session_repository.read_session("global-session") is not None
    assert get_global_factory().get_connection_stats()["options"]["maxPoolSize"] == 60

    close_global_factory()
    close_global_factory()

    with pytest.raises(RuntimeError):
        get_global_factory()
    assert MongoDBConnectionPool.get_pool_stats()["status"] == "not_initialized"


def test_create_mongodb_session_manager_borrows_the_given_client(mongo_uri: str, database_name: str) -> None:
    from mongodb_session_manager.factory import create_mongodb_session_manager
    from mongodb_session_manager.manager import MongoDBSessionManager

    client: MongoClient[Any] = MongoClient(mongo_uri)
    try:
        manager = create_mongodb_session_manager("helper-session", database_name=database_name, client=client)
        assert isinstance(manager, MongoDBSessionManager)
        manager.close()
        assert client[database_name]["collection_name"].find_one({"_id": "helper-session"}) is not None
    finally:
        client.close()
