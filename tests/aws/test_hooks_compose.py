"""Combining hooks: the operation runs once, every notification hook hears about it, interceptors chain."""

import json

import pytest

from mongodb_session_manager import (
    combine_hooks,
    combine_metadata_hooks,
    create_feedback_sns_hook,
    create_metadata_sqs_hook,
    create_metadata_websocket_hook,
)

from .support import (
    API_ENDPOINT,
    create_queue,
    frames,
    new_connection_id,
    receive_all,
    sns_notifications,
    subscribed_queue,
    unique,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def queue_url(sqs):
    return create_queue(sqs, unique("metadata"))


@pytest.fixture
def sqs_hook(moto_url, queue_url):
    hook = create_metadata_sqs_hook(queue_url, endpoint_url=moto_url)
    yield hook
    hook.close()


@pytest.fixture
def websocket_hook(moto_url):
    hook = create_metadata_websocket_hook(API_ENDPOINT, endpoint_url=moto_url)
    yield hook
    hook.close()


def sqs_metadata(sqs, queue_url):
    return [json.loads(message["Body"])["metadata"] for message in receive_all(sqs, queue_url)]


def test_websocket_and_sqs_both_get_the_update_and_mongodb_is_written_once(
    sqs, queue_url, sqs_hook, websocket_hook, make_manager, command_log
):
    combined = combine_metadata_hooks(websocket_hook, sqs_hook)
    manager = make_manager(metadata_hook=combined)
    connection_id = new_connection_id()
    command_log.clear()

    manager.update_metadata({"connection_id": connection_id, "status": "processing"})
    assert combined.flush(timeout=30)

    assert command_log.writes == ["update"]
    assert [frame["metadata"] for frame in frames(connection_id)] == [{"status": "processing"}]
    assert sqs_metadata(sqs, queue_url) == [{"connection_id": connection_id, "status": "processing"}]


def test_interceptors_chain_in_order_and_notifications_see_what_was_written(
    sqs, queue_url, sqs_hook, make_manager, command_log
):
    calls = []

    def audit(original_func, action, session_id, **kwargs):
        calls.append(("audit", action))
        return original_func(**kwargs)

    def stamp(original_func, action, session_id, **kwargs):  # written like the documented hooks: positional
        calls.append(("stamp", action))
        if action == "update":
            return original_func({**kwargs["metadata"], "stamped": True})
        if action == "delete":
            return original_func(kwargs["keys"])
        return original_func()

    manager = make_manager(metadata_hook=combine_metadata_hooks(audit, sqs_hook, stamp))
    command_log.clear()

    manager.update_metadata({"status": "processing"})
    assert manager.get_metadata() == {"metadata": {"status": "processing", "stamped": True}}
    assert sqs_hook.flush(timeout=30)

    assert calls == [("audit", "update"), ("stamp", "update"), ("audit", "get"), ("stamp", "get")]
    assert command_log.writes == ["update"]
    assert sqs_metadata(sqs, queue_url) == [{"status": "processing", "stamped": True}]


def test_an_interceptor_that_refuses_means_no_write_and_no_notification(sqs, queue_url, sqs_hook, make_manager):
    def refuse_priority(original_func, action, session_id, **kwargs):
        if action == "update" and "priority" in kwargs["metadata"]:
            raise ValueError("priority is read-only")
        return original_func(**kwargs)

    manager = make_manager(metadata_hook=combine_metadata_hooks(sqs_hook, refuse_priority))

    with pytest.raises(ValueError, match="read-only"):
        manager.update_metadata({"priority": "high"})
    assert sqs_hook.flush(timeout=30)

    assert manager.get_metadata() == {"metadata": {}}
    assert sqs_metadata(sqs, queue_url) == []


def test_the_documented_hand_combined_pattern_also_works(
    sqs, queue_url, sqs_hook, websocket_hook, make_manager, command_log
):
    def combined_metadata_hook(original_func, action, session_id, **kwargs):
        result = websocket_hook(original_func, action, session_id, **kwargs)
        sqs_hook(lambda: result, action, session_id, **kwargs)
        return result

    manager = make_manager(metadata_hook=combined_metadata_hook)
    connection_id = new_connection_id()
    command_log.clear()

    manager.update_metadata({"connection_id": connection_id, "progress": 10})
    assert websocket_hook.flush(timeout=30) and sqs_hook.flush(timeout=30)

    assert command_log.writes == ["update"]
    assert [frame["metadata"] for frame in frames(connection_id)] == [{"progress": 10}]
    assert sqs_metadata(sqs, queue_url) == [{"connection_id": connection_id, "progress": 10}]


def test_feedback_hooks_combine_too_and_close_drains_them(moto_url, sns, sqs, make_manager):
    topic_arn = sns.create_topic(Name=unique("feedback"))["TopicArn"]
    inbox = subscribed_queue(sns, sqs, topic_arn)
    seen = []

    def audit(original_func, action, session_id, **kwargs):
        seen.append(kwargs["feedback"]["comment"])
        return original_func(kwargs["feedback"])

    combined = combine_hooks(audit, create_feedback_sns_hook(topic_arn, "none", "none", endpoint_url=moto_url))
    manager = make_manager(feedback_hook=combined)

    manager.add_feedback({"rating": "up", "comment": "nice"})
    assert combined.close(timeout=30)

    assert seen == ["nice"]
    [notification] = sns_notifications(sqs, inbox)
    assert notification["Message"].endswith("nice")
    assert manager.get_feedbacks()[0]["comment"] == "nice"


def test_combining_needs_callable_hooks():
    with pytest.raises(ValueError):
        combine_hooks()
    with pytest.raises(TypeError):
        combine_hooks("not a hook")
