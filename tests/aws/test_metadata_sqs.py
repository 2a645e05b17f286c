"""The SQS metadata hook against moto: the messages that reach the queue, and what happens when SQS misbehaves."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from mongodb_session_manager import InvalidMetadataKeyError, MetadataSQSHook, create_metadata_sqs_hook

from .fake_endpoint import fake_endpoint
from .support import closed_port_url, create_queue, receive_all, unique

pytestmark = pytest.mark.timeout(120)


def events(sqs, queue_url):
    """Bodies (parsed) and attributes of the messages in the queue."""
    return [
        (json.loads(message["Body"]), {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()})
        for message in receive_all(sqs, queue_url)
    ]


def test_updates_and_deletes_carry_only_the_selected_fields(moto_url, sqs, make_manager):
    queue_url = create_queue(sqs, unique("metadata"))
    hook = create_metadata_sqs_hook(queue_url, metadata_fields=["status", "priority"], endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)

    manager.update_metadata({"status": "processing", "priority": "high", "internal_data": "not synced"})
    manager.update_metadata({"internal_data": "still not synced"})  # no selected field: nothing is sent
    manager.delete_metadata(["status", "internal_data"])
    assert hook.flush(timeout=30)

    (update, update_attributes), (delete, delete_attributes) = sorted(
        events(sqs, queue_url), key=lambda event: event[0]["operation"], reverse=True
    )
    assert update | {"timestamp": None} == {
        "session_id": manager.session_id,
        "event": "metadata_update",
        "operation": "update",
        "metadata": {"status": "processing", "priority": "high"},
        "timestamp": None,
    }
    assert delete | {"timestamp": None} == {
        "session_id": manager.session_id,
        "event": "metadata_update",
        "operation": "delete",
        "metadata": {"status": None},
        "deleted_keys": ["status"],
        "timestamp": None,
    }
    for event in (update, delete):
        assert datetime.fromisoformat(event["timestamp"]).utcoffset() == timedelta(0)
    assert update_attributes == {"session_id": manager.session_id, "event": "metadata_update", "operation": "update"}
    assert delete_attributes["operation"] == "delete"
    assert manager.get_metadata() == {"metadata": {"priority": "high"}}


def test_without_field_selection_every_field_is_sent_as_json(moto_url, sqs, make_manager):
    queue_url = create_queue(sqs, unique("metadata"))
    hook = MetadataSQSHook(queue_url, endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)
    due = datetime(2025, 1, 26, 10, 30, tzinfo=UTC)

    manager.update_metadata({"status": "done", "task.due": due, "tags": ["a", "b"], "note": "café ☕"})
    assert hook.flush(timeout=30)

    [(event, _)] = events(sqs, queue_url)
    assert event["metadata"] == {
        "status": "done",
        "task.due": "2025-01-26T10:30:00+00:00",
        "tags": ["a", "b"],
        "note": "café ☕",
    }


def test_a_fifo_queue_receives_a_sessions_changes_in_order(moto_url, sqs, make_manager):
    queue_url = create_queue(sqs, unique("metadata") + ".fifo", FifoQueue="true")
    hook = create_metadata_sqs_hook(queue_url, endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)

    for progress in range(1, 8):
        manager.update_metadata({"progress": progress})
    assert hook.flush(timeout=30)

    assert [event["metadata"]["progress"] for event, _ in events(sqs, queue_url)] == list(range(1, 8))


def test_a_failed_operation_sends_nothing(moto_url, sqs, make_manager):
    queue_url = create_queue(sqs, unique("metadata"))
    hook = create_metadata_sqs_hook(queue_url, endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)

    with pytest.raises(InvalidMetadataKeyError):
        manager.update_metadata({"$status": "refused"})
    assert hook.flush(timeout=30)

    assert events(sqs, queue_url) == []
    assert hook.stats()["sent"] == 0


def test_reading_metadata_passes_through(moto_url, sqs, make_manager):
    queue_url = create_queue(sqs, unique("metadata"))
    hook = create_metadata_sqs_hook(queue_url, endpoint_url=moto_url)
    manager = make_manager(metadata_hook=hook)
    manager.update_metadata({"status": "ready"})

    assert manager.get_metadata() == {"metadata": {"status": "ready"}}
    assert hook.flush(timeout=30)
    assert len(events(sqs, queue_url)) == 1


def test_update_metadata_does_not_wait_for_sqs(make_manager):
    with fake_endpoint(400, "com.amazonaws.sqs#QueueDoesNotExist") as endpoint:
        endpoint.hold()
        hook = create_metadata_sqs_hook(f"{endpoint.url}/123456789012/held", endpoint_url=endpoint.url)
        manager = make_manager(metadata_hook=hook)

        manager.update_metadata({"status": "processing"})  # returns while SQS holds the request

        assert endpoint.request_arrived.wait(timeout=30)
        assert hook.stats()["pending"] == 1
        assert manager.get_metadata() == {"metadata": {"status": "processing"}}
        endpoint.release()
        assert hook.flush(timeout=30)
    assert hook.stats()["failed"] == 1


def test_when_too_many_notifications_are_pending_new_ones_are_dropped_with_a_warning(make_manager, caplog):
    with fake_endpoint(400, "com.amazonaws.sqs#QueueDoesNotExist") as endpoint:
        endpoint.hold()
        hook = create_metadata_sqs_hook(
            f"{endpoint.url}/123456789012/held", endpoint_url=endpoint.url, max_workers=1, max_pending=1
        )
        manager = make_manager(metadata_hook=hook)

        with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
            manager.update_metadata({"step": 1})
            manager.update_metadata({"step": 2})
        endpoint.release()
        assert hook.flush(timeout=30)

    assert manager.get_metadata() == {"metadata": {"step": 2}}
    assert hook.stats()["dropped"] == 1
    [record] = [r for r in caplog.records if "notification dropped" in r.getMessage()]
    assert f"session_id=<{manager.session_id}>" in record.getMessage()
    hook.close()


def test_with_aws_down_the_metadata_is_still_stored(make_manager, caplog):
    hook = create_metadata_sqs_hook("http://127.0.0.1/123456789012/queue", endpoint_url=closed_port_url())
    manager = make_manager(metadata_hook=hook)

    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
        manager.update_metadata({"status": "processing"})
        manager.delete_metadata(["status"])
        assert hook.flush(timeout=60)

    assert manager.get_metadata() == {"metadata": {}}
    assert hook.stats()["failed"] == 2
    failures = [r.getMessage() for r in caplog.records if "notification failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(f"session_id=<{manager.session_id}>" in message for message in failures)
    hook.close()
