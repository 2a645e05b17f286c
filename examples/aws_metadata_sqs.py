"""Metadata changes on Amazon SQS: selected fields of every update and delete, for backends and SSE fan-out.

Run it with ``uv run --group dev python examples/aws_metadata_sqs.py`` (the dev group has moto, the local AWS).

* With ``METADATA_QUEUE_URL`` set (and AWS credentials with ``sqs:SendMessage`` on it), it sends to your queue.
* Otherwise it starts a local moto server, creates a queue, and prints the messages that arrived.

With no ``MONGODB_URI`` the metadata is stored in the embedded development MongoDB server.
"""

import json
import logging
import os
import uuid

from aws_local import local_aws
from mongodb_session_manager import MongoDBSessionManager, create_metadata_sqs_hook, is_metadata_sqs_hook_available
from mongodb_session_manager.startup import require_mongodb

SYNCED_FIELDS = ["status", "priority", "agent_state"]


def change_metadata(metadata_hook) -> None:
    """Update and delete metadata through a session whose metadata hook sends to SQS."""
    session_id = f"aws-sqs-{uuid.uuid4().hex[:8]}"
    with MongoDBSessionManager(session_id=session_id, metadata_hook=metadata_hook) as session_manager:
        session_manager.update_metadata({"status": "processing", "priority": "high", "internal_data": "not synced"})
        session_manager.update_metadata({"agent_state": "thinking"})
        session_manager.delete_metadata(["priority", "internal_data"])
        print(f"Session {session_id!r} metadata in MongoDB: {session_manager.get_metadata()['metadata']}")
    metadata_hook.close(timeout=30)  # let the queued messages go out before the process exits


def with_your_queue() -> None:
    change_metadata(create_metadata_sqs_hook(os.environ["METADATA_QUEUE_URL"], metadata_fields=SYNCED_FIELDS))
    print("Sent to your SQS queue: check its consumers.")


def with_local_moto() -> None:
    print("No METADATA_QUEUE_URL configured: starting a local moto server (no AWS account needed).")
    with local_aws() as aws:
        queue_url = aws.client("sqs").create_queue(QueueName="metadata-sync")["QueueUrl"]
        hook = create_metadata_sqs_hook(
            queue_url, metadata_fields=SYNCED_FIELDS, boto3_session=aws.boto3_session, endpoint_url=aws.endpoint_url
        )
        change_metadata(hook)
        print(f"\nMessages on {queue_url}:")
        for message in aws.receive_all(queue_url):
            body = json.loads(message["Body"])
            print(f"  {body['operation']:<6} {json.dumps(body['metadata'])}  at {body['timestamp']}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if not is_metadata_sqs_hook_available():
        raise SystemExit("boto3 is missing: pip install 'mongodb-session-manager[aws]'")
    require_mongodb("aws_metadata_sqs")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    if os.environ.get("METADATA_QUEUE_URL"):
        with_your_queue()
    else:
        with_local_moto()
