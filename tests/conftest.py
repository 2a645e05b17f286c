"""Shared fixtures: a real wire-protocol MongoDB server, per-test databases and command counting.

Integration tests talk to the embedded server (secantusdb) started once per test session, or to
the MongoDB named by ``MONGODB_URI`` when it is set. The embedded development server of
`mongodb_session_manager.embedded` keeps its data in a temporary directory for the whole session
(never the user's own), and is stopped at the end.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import mongomock
import pytest
from pymongo import MongoClient

from mongodb_session_manager.embedded import DATA_DIR_ENV, stop_embedded_server
from mongodb_session_manager.testing import CommandLog


@pytest.fixture(scope="session", autouse=True)
def _embedded_server_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point ``MONGODB_SESSION_MANAGER_DATA_DIR`` at a temporary directory; stop its server at the end."""
    path = tmp_path_factory.mktemp("embedded-session")
    previous = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(path)
    try:
        yield path
    finally:
        stop_embedded_server(path)
        if previous is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = previous


@pytest.fixture
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh data directory for one test's embedded server (pass it as ``MONGODB_SESSION_MANAGER_DATA_DIR``).

    The server started there, if any, is stopped after the test.
    """
    path = tmp_path_factory.mktemp("embedded")
    yield path
    stop_embedded_server(path)


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a real MongoDB wire-protocol server for the whole test session."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    from secantus import SecantusDBServer

    server = SecantusDBServer(storage_path=str(tmp_path_factory.mktemp("mongodb")), port=0)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def database_name(mongo_uri: str) -> Iterator[str]:
    """A fresh database name for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    with MongoClient(mongo_uri) as client:
        client.drop_database(name)


@pytest.fixture
def command_log() -> CommandLog:
    """A command listener to pass as ``event_listeners=[command_log]`` (``mongodb_session_manager.testing``)."""
    return CommandLog()


@pytest.fixture
def client(mongo_uri: str, command_log: CommandLog) -> Iterator[MongoClient]:
    """A client of the wire-protocol server whose commands are recorded in ``command_log``."""
    with MongoClient(mongo_uri, event_listeners=[command_log], heartbeatFrequencyMS=500) as mongo_client:
        yield mongo_client


@pytest.fixture(params=["mongomock", "wire"])
def any_client(request: pytest.FixtureRequest) -> Iterator[MongoClient]:
    """A client of each backend (mongomock and the wire-protocol server), for plain-logic tests."""
    if request.param == "mongomock":
        yield mongomock.MongoClient()
    else:
        yield request.getfixturevalue("client")
