"""AWS fixtures: moto's server on 127.0.0.1 with boto3 clients pointed at it, and sessions on the wire server."""

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pymongo import MongoClient

from mongodb_session_manager import MongoDBSessionManager

from .support import REGION

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
CLEARED_AWS_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_SQS")


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto server started for this module on 127.0.0.1, with dummy AWS credentials in the environment."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in DUMMY_AWS_ENV.items():
            env.setenv(name, value)
        for name in CLEARED_AWS_ENV:
            env.delenv(name, raising=False)
        missing = tmp_path_factory.mktemp("aws") / "missing"
        env.setenv("AWS_CONFIG_FILE", str(missing))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def sns(moto_url: str) -> Any:
    """An SNS client of the moto server."""
    return boto3.client("sns", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture
def sqs(moto_url: str) -> Any:
    """An SQS client of the moto server."""
    return boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture
def make_manager(client: MongoClient, database_name: str) -> Iterator[Callable[..., MongoDBSessionManager]]:
    """Open managers on a fresh session of the wire server: ``make_manager(metadata_hook=..., feedback_hook=...)``."""
    managers: list[MongoDBSessionManager] = []

    def make(session_id: str | None = None, **hooks: Any) -> MongoDBSessionManager:
        manager = MongoDBSessionManager(
            session_id=session_id or f"session-{uuid.uuid4().hex[:8]}",
            client=client,
            database_name=database_name,
            collection_name="sessions",
            **hooks,
        )
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.close()
