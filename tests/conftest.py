"""Shared fixtures: a real wire-protocol MongoDB server, per-test databases and command counting.

Integration tests talk to the embedded server (secantusdb) started once per test session, or to
the MongoDB named by ``MONGODB_URI`` when it is set.
"""

import os
import uuid
from collections.abc import Iterator

import mongomock
import pytest
from pymongo import MongoClient

from mongodb_session_manager.testing import CommandLog


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
