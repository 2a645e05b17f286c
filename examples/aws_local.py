"""A local stand-in for AWS used by the ``aws_*.py`` examples when no AWS resources are configured.

``local_aws()`` starts moto's server (``pip install 'moto[server]'``, a dev dependency) on 127.0.0.1 and yields a
boto3 session with dummy credentials plus the endpoint URL to give the hooks as ``endpoint_url``. Nothing leaves
the machine. Not an example itself: ``python examples/aws_local.py`` just says which examples use it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

REGION = "us-east-1"


@dataclass
class LocalAWS:
    """A running moto server: pass ``boto3_session`` and ``endpoint_url`` to the hooks and to your own clients."""

    boto3_session: boto3.session.Session
    endpoint_url: str

    def client(self, service: str) -> Any:
        """Return a boto3 client of the local server."""
        return self.boto3_session.client(service, endpoint_url=self.endpoint_url)

    def subscribed_queue(self, topic_arn: str, name: str) -> str:
        """Create an SQS queue subscribed to an SNS topic (so we can read what was published); return its URL."""
        sqs, sns = self.client("sqs"), self.client("sns")
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return queue_url

    def receive_all(self, queue_url: str) -> list[dict[str, Any]]:
        """Receive and delete every message waiting in a queue."""
        sqs, messages = self.client("sqs"), []
        while batch := sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)
        return messages

    def websocket_frames(self, connection_id: str) -> list[dict[str, Any]]:
        """What moto's API Gateway received for a connection (moto keeps it in-process; a browser would get it)."""
        from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        connections = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION].connections
        data = connections[connection_id].data.decode("utf-8") if connection_id in connections else ""
        frames, decoder = [], json.JSONDecoder()
        while data:
            frame, end = decoder.raw_decode(data)
            frames.append(frame)
            data = data[end:]
        return frames


@contextmanager
def local_aws() -> Iterator[LocalAWS]:
    """Run moto's server on 127.0.0.1 for the ``with`` block."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        raise SystemExit("The local AWS stand-in needs moto: pip install 'moto[server]'") from error
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )  # dummy credentials: moto accepts any
    try:
        yield LocalAWS(boto3_session=session, endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


if __name__ == "__main__":
    print("Helper for examples/aws_feedback_sns.py, aws_metadata_sqs.py and aws_metadata_websocket.py.")
