"""The SNS feedback hook against moto: what arrives on each topic (read through subscribed SQS queues)."""

import logging
from datetime import datetime, timedelta

import pytest

from mongodb_session_manager import FeedbackSNSHook, create_feedback_sns_hook

from .support import REGION, closed_port_url, sns_notifications, subscribed_queue, unique

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def topics(sns, sqs):
    """Three topics (good, bad, neutral), each with a queue subscribed: ``{name: (topic_arn, queue_url)}``."""
    created = {}
    for name in ("good", "bad", "neutral"):
        topic_arn = sns.create_topic(Name=unique(f"feedback-{name}"))["TopicArn"]
        created[name] = (topic_arn, subscribed_queue(sns, sqs, topic_arn))
    return created


def sns_hook(moto_url, topics, **options):
    return create_feedback_sns_hook(
        topic_arn_good=options.pop("good", topics["good"][0]),
        topic_arn_bad=options.pop("bad", topics["bad"][0]),
        topic_arn_neutral=options.pop("neutral", topics["neutral"][0]),
        endpoint_url=moto_url,
        **options,
    )


def test_each_feedback_goes_to_the_topic_for_its_rating(moto_url, sqs, topics, make_manager):
    hook = sns_hook(moto_url, topics)
    manager = make_manager(feedback_hook=hook)

    manager.add_feedback({"rating": "up", "comment": "Great response!"})
    manager.add_feedback({"rating": "down", "comment": "The answer was incorrect"})
    manager.add_feedback({"rating": None, "comment": "Okay I guess"})
    assert hook.flush(timeout=30)

    password = manager.get_session_viewer_password()
    expected = {
        "good": ("positive", "Great response!"),
        "bad": ("negative", "The answer was incorrect"),
        "neutral": ("neutral", "Okay I guess"),
    }
    for name, (rating, comment) in expected.items():
        topic_arn, queue_url = topics[name]
        [notification] = sns_notifications(sqs, queue_url)
        assert notification["TopicArn"] == topic_arn
        assert notification["Subject"] == f"Virtual Agents Feedback {rating} on session {manager.session_id}"
        assert notification["Message"] == f"Password: {password}\n\nSession: {manager.session_id}\n\n{comment}"
        assert notification["MessageAttributes"] == {
            "session_id": {"Type": "String", "Value": manager.session_id},
            "rating": {"Type": "String", "Value": rating},
        }
    assert [entry["rating"] for entry in manager.get_feedbacks()] == ["up", "down", None]
    assert hook.stats() == {"sent": 3, "failed": 0, "dropped": 0, "pending": 0}
    hook.close()


def test_a_topic_of_none_turns_that_route_off(moto_url, sqs, topics, make_manager):
    hook = sns_hook(moto_url, topics, bad="none", neutral="NONE")
    manager = make_manager(feedback_hook=hook)

    manager.add_feedback({"rating": "down", "comment": "bad"})
    manager.add_feedback({"rating": None, "comment": "meh"})
    manager.add_feedback({"rating": "up", "comment": "good"})
    assert hook.flush(timeout=30)

    assert [n["Message"].rsplit("\n", 1)[-1] for n in sns_notifications(sqs, topics["good"][1])] == ["good"]
    assert sns_notifications(sqs, topics["bad"][1]) == []
    assert sns_notifications(sqs, topics["neutral"][1]) == []
    assert hook.stats()["sent"] == 1
    assert len(manager.get_feedbacks()) == 3
    hook.close()


def test_subject_is_printable_ascii_of_at_most_100_characters(moto_url, sqs, topics, make_manager):
    hook = sns_hook(moto_url, topics, subject_prefix_bad="[PROD] ⚠️ URGENT: {rating} — ünïcödé\n🚨 ")
    manager = make_manager(session_id="sesión-" + "x" * 80, feedback_hook=hook)

    manager.add_feedback({"rating": "down", "comment": "Response was incomplete 😞"})
    assert hook.flush(timeout=30)

    [notification] = sns_notifications(sqs, topics["bad"][1])
    subject = notification["Subject"]
    assert subject.isascii() and subject.isprintable()
    assert len(subject) == 100
    assert subject.startswith("[PROD] URGENT: negative unicode Virtual Agents Feedback negative on session sesion-xxx")
    assert subject.endswith("...")
    assert notification["Message"].endswith("Response was incomplete 😞")  # the body keeps its Unicode
    hook.close()


def test_prefix_templates_are_filled_with_session_rating_and_utc_timestamp(moto_url, sqs, topics, make_manager):
    hook = sns_hook(
        moto_url,
        topics,
        subject_prefix_bad="[{rating}] ",
        body_prefix_bad="🚨 NEGATIVE FEEDBACK ALERT 🚨\nSession: {session_id}\nTimestamp: {timestamp}\n---\n",
    )
    manager = make_manager(feedback_hook=hook)

    manager.add_feedback({"rating": "down", "comment": "Response was incomplete"})
    assert hook.flush(timeout=30)

    [notification] = sns_notifications(sqs, topics["bad"][1])
    assert notification["Subject"] == f"[negative] Virtual Agents Feedback negative on session {manager.session_id}"
    alert, session_line, timestamp_line, separator, body = notification["Message"].split("\n", 4)
    assert alert == "🚨 NEGATIVE FEEDBACK ALERT 🚨"
    assert (session_line, separator) == (f"Session: {manager.session_id}", "---")
    timestamp = datetime.fromisoformat(timestamp_line.removeprefix("Timestamp: "))
    assert timestamp.utcoffset() == timedelta(0)
    assert body == (
        f"Password: {manager.get_session_viewer_password()}\n\nSession: {manager.session_id}\n\nResponse was incomplete"
    )
    hook.close()


@pytest.mark.parametrize("template", ["{user} ", "{session_id ", "{0} ", "{session_id.upper} "])
def test_a_malformed_or_unknown_template_is_refused_when_the_hook_is_created(moto_url, template):
    with pytest.raises(ValueError, match="subject_prefix_bad"):
        FeedbackSNSHook("none", "none", "none", subject_prefix_bad=template, endpoint_url=moto_url)


def test_an_unknown_topic_is_logged_and_the_feedback_is_still_stored(moto_url, topics, make_manager, caplog):
    missing_topic = f"arn:aws:sns:{REGION}:123456789012:{unique('missing')}"
    hook = sns_hook(moto_url, topics, bad=missing_topic)
    manager = make_manager(feedback_hook=hook)

    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
        manager.add_feedback({"rating": "down", "comment": "lost alert"})
        assert hook.flush(timeout=30)

    assert [entry["comment"] for entry in manager.get_feedbacks()] == ["lost alert"]
    assert hook.stats()["failed"] == 1
    [record] = [r for r in caplog.records if "notification failed" in r.getMessage()]
    assert f"session_id=<{manager.session_id}>" in record.getMessage()
    assert missing_topic in record.getMessage()
    hook.close()


def test_with_aws_down_add_feedback_returns_and_the_feedback_is_stored(topics, make_manager, caplog):
    hook = sns_hook(closed_port_url(), topics)
    manager = make_manager(feedback_hook=hook)

    with caplog.at_level(logging.WARNING, logger="mongodb_session_manager"):
        manager.add_feedback({"rating": "up", "comment": "stored anyway"})
        assert manager.get_feedbacks()[0]["comment"] == "stored anyway"
        assert hook.flush(timeout=60)

    assert hook.stats()["failed"] == 1
    assert any(
        f"session_id=<{manager.session_id}>" in r.getMessage() and "EndpointConnectionError" in r.getMessage()
        for r in caplog.records
    )
    hook.close()


def test_a_closed_hook_lets_feedback_through_without_notifying(moto_url, sqs, topics, make_manager):
    hook = sns_hook(moto_url, topics)
    manager = make_manager(feedback_hook=hook)
    assert hook.close(timeout=10)

    manager.add_feedback({"rating": "up", "comment": "after close"})

    assert sns_notifications(sqs, topics["good"][1]) == []
    assert manager.get_feedbacks()[0]["comment"] == "after close"
