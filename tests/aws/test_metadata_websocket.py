"""The WebSocket metadata hook against moto's API Gateway Management API.

moto keeps what ``post_to_connection`` sent in its in-process backend (each connection's ``data``, frames
concatenated) and has no API to read it back, so these tests read that state directly: the moto server runs in
this process. moto treats every connection id as connected, so a gone client is played by a small local endpoint
that answers ``410 GoneException`` as API Gateway does.
"""

import logging

import pytest

from mongodb_session_manager import MetadataWebSocketHook, create_metadata_websocket_hook

from .fake_endpoint import fake_endpoint
from .support import API_ENDPOINT, REGION, closed_port_url, frames, new_connection_id

pytestmark = pytest.mark.timeout(120)


def test_updates_and_deletes_are_pushed_to_the_connection_stored_in_the_metadata(moto_url, make_manager):
    hook = create_metadata_websocket_hook(api_gateway_endpoint=API_ENDPOINT, region=REGION, endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)
    connection_id = new_connection_id()

    manager.update_metadata({"connection_id": connection_id})  # the $connect handler: nothing to push yet
    manager.update_metadata({"status": "processing", "progress": 50})  # connection id read from the session
    manager.delete_metadata(["progress"])
    assert hook.flush(timeout=30)

    update, delete = frames(connection_id)
    assert update | {"timestamp": None} == {
        "event": "metadata_update",
        "session_id": manager.session_id,
        "operation": "update",
        "metadata": {"status": "processing", "progress": 50},
        "timestamp": None,
    }
    assert delete["operation"] == "delete"
    assert delete["metadata"] == {"progress": None}
    assert delete["deleted_keys"] == ["progress"]
    assert manager.get_metadata() == {"metadata": {"connection_id": connection_id, "status": "processing"}}


def test_the_connection_id_in_the_update_itself_is_used_and_never_pushed(moto_url, make_manager):
    hook = MetadataWebSocketHook(API_ENDPOINT, endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)
    connection_id = new_connection_id()

    manager.update_metadata({"ws_connection_id": connection_id, "agent_state": "thinking"})
    assert hook.flush(timeout=30)

    [frame] = frames(connection_id)
    assert frame["metadata"] == {"agent_state": "thinking"}


def test_only_selected_fields_are_pushed(moto_url, make_manager):
    hook = create_metadata_websocket_hook(API_ENDPOINT, metadata_fields=["status"], endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)
    connection_id = new_connection_id()

    manager.update_metadata({"connection_id": connection_id, "status": "ready", "secret": "x"})
    manager.update_metadata({"secret": "y"})
    assert hook.flush(timeout=30)

    assert [frame["metadata"] for frame in frames(connection_id)] == [{"status": "ready"}]


def test_a_session_without_a_connection_id_pushes_nothing(moto_url, make_manager):
    hook = create_metadata_websocket_hook(API_ENDPOINT, endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)

    manager.update_metadata({"status": "processing"})
    assert hook.flush(timeout=30)

    assert hook.stats() == {"sent": 0, "failed": 0, "dropped": 0, "pending": 0}
    assert manager.get_metadata() == {"metadata": {"status": "processing"}}


def test_a_gone_connection_is_logged_not_raised(make_manager, caplog):
    with fake_endpoint(410, "GoneException", "the connection is gone") as endpoint:
        hook = create_metadata_websocket_hook(API_ENDPOINT, endpoint_url=endpoint.url)
        manager = make_manager(metadata_hook=hook)

        with caplog.at_level(logging.INFO, logger="mongodb_session_manager"):
            manager.update_metadata({"connection_id": "gone123", "status": "processing"})
            assert hook.flush(timeout=30)

        [(method, path, _)] = endpoint.requests
    assert (method, path) == ("POST", "/@connections/gone123")
    [record] = [r for r in caplog.records if "websocket connection gone" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert f"session_id=<{manager.session_id}>" in record.getMessage()
    assert "connection_id=<gone123>" in record.getMessage()
    assert hook.stats()["failed"] == 1
    assert manager.get_metadata()["metadata"]["status"] == "processing"
    hook.close()


def test_with_aws_down_the_metadata_is_still_stored(make_manager, caplog):
    hook = create_metadata_websocket_hook(API_ENDPOINT, endpoint_url=closed_port_url())
    manager = make_manager(metadata_hook=hook)

    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
        manager.update_metadata({"connection_id": "abc", "status": "processing"})
        assert hook.flush(timeout=60)

    assert manager.get_metadata()["metadata"] == {"connection_id": "abc", "status": "processing"}
    assert any(f"session_id=<{manager.session_id}>" in r.getMessage() for r in caplog.records)
    hook.close()


def test_a_wss_endpoint_is_used_over_https_and_gives_the_region():
    hook = MetadataWebSocketHook("wss://abc123.execute-api.eu-west-1.amazonaws.com/prod/")
    assert hook.api_gateway_endpoint == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    assert hook.client.meta.region_name == "eu-west-1"
    assert hook.client.meta.endpoint_url == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    hook.close()
