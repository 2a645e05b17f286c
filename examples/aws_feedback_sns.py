"""Feedback alerts on Amazon SNS: each thumbs up/down goes to its own topic, with the Session Viewer password.

Run it with ``uv run --group dev python examples/aws_feedback_sns.py`` (the dev group has moto, the local AWS).

* With ``FEEDBACK_TOPIC_ARN_GOOD``, ``FEEDBACK_TOPIC_ARN_BAD`` and ``FEEDBACK_TOPIC_ARN_NEUTRAL`` set (and AWS
  credentials with ``sns:Publish`` on them), it publishes to your topics; their subscribers get the alerts.
* Otherwise it starts a local moto server, creates three topics with an SQS queue subscribed to each, and prints
  what arrived on every topic.

With no ``MONGODB_URI`` the feedback is stored in the embedded development MongoDB server.
"""

import json
import logging
import os
import uuid

from aws_local import local_aws
from mongodb_session_manager import MongoDBSessionManager, create_feedback_sns_hook, is_feedback_sns_hook_available
from mongodb_session_manager.startup import require_mongodb

TOPIC_VARIABLES = ("FEEDBACK_TOPIC_ARN_GOOD", "FEEDBACK_TOPIC_ARN_BAD", "FEEDBACK_TOPIC_ARN_NEUTRAL")
TEMPLATES = {
    "subject_prefix_good": "[DEMO] ✅ ",
    "subject_prefix_bad": "[DEMO] ⚠️ URGENT: ",  # the emoji are dropped: SNS subjects are ASCII only
    "body_prefix_bad": "🚨 NEGATIVE FEEDBACK ALERT 🚨\nSession: {session_id}\nTimestamp: {timestamp}\n---\n",
}
FEEDBACK = [
    {"rating": "up", "comment": "Great response!"},
    {"rating": "down", "comment": "The answer was incorrect"},
    {"rating": None, "comment": "It was fine"},
]


def give_feedback(feedback_hook) -> None:
    """Store three feedbacks through a session whose feedback hook publishes to SNS."""
    session_id = f"aws-feedback-{uuid.uuid4().hex[:8]}"
    with MongoDBSessionManager(session_id=session_id, feedback_hook=feedback_hook) as session_manager:
        for feedback in FEEDBACK:
            session_manager.add_feedback(feedback)  # stored in MongoDB; the SNS publish happens in the background
        print(f"Session {session_id!r} stored {len(session_manager.get_feedbacks())} feedbacks")
    feedback_hook.close(timeout=30)  # let the queued alerts go out before the process exits


def with_your_topics() -> None:
    good, bad, neutral = (os.environ[name] for name in TOPIC_VARIABLES)
    give_feedback(create_feedback_sns_hook(good, bad, neutral, **TEMPLATES))
    print("Published to your SNS topics: check their subscribers.")


def with_local_moto() -> None:
    print("No FEEDBACK_TOPIC_ARN_* configured: starting a local moto server (no AWS account needed).")
    with local_aws() as aws:
        sns = aws.client("sns")
        topics = {name: sns.create_topic(Name=f"feedback-{name}")["TopicArn"] for name in ("good", "bad", "neutral")}
        inboxes = {name: aws.subscribed_queue(arn, f"inbox-{name}") for name, arn in topics.items()}
        hook = create_feedback_sns_hook(
            topics["good"],
            topics["bad"],
            topics["neutral"],
            **TEMPLATES,
            boto3_session=aws.boto3_session,
            endpoint_url=aws.endpoint_url,
        )
        give_feedback(hook)
        for name, queue_url in inboxes.items():
            for message in aws.receive_all(queue_url):
                notification = json.loads(message["Body"])
                rating = notification["MessageAttributes"]["rating"]["Value"]
                print(f"\n--- topic feedback-{name} (rating attribute: {rating})")
                print(f"Subject: {notification['Subject']}")
                print(notification["Message"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if not is_feedback_sns_hook_available():
        raise SystemExit("boto3 is missing: pip install 'mongodb-session-manager[aws]'")
    require_mongodb("aws_feedback_sns")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    if all(os.environ.get(name) for name in TOPIC_VARIABLES):
        with_your_topics()
    else:
        with_local_moto()
