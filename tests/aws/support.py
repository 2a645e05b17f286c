"""Helpers for the AWS tests: unique resource names, queues subscribed to topics, reading back what arrived."""

import json
import socket
import uuid
from typing import Any

from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID

REGION = "us-east-1"
API_ENDPOINT = f"https://abc123.execute-api.{REGION}.amazonaws.com/prod"
"""A WebSocket API connection URL; the tests point the client at moto with ``endpoint_url``."""


def frames(connection_id: str) -> list[dict[str, Any]]:
    """The JSON frames moto received for a connection, in order (read from moto's in-process backend)."""
    connections = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION].connections
    if connection_id not in connections:
        return []
    data, decoder, found = connections[connection_id].data.decode("utf-8"), json.JSONDecoder(), []
    while data:
        frame, end = decoder.raw_decode(data)
        found.append(frame)
        data = data[end:]
    return found


def new_connection_id() -> str:
    """A fresh API Gateway-style connection id."""
    return uuid.uuid4().hex[:12]


def unique(name: str) -> str:
    """A resource name no other test of the module uses (moto's state lives as long as the server)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def create_queue(sqs: Any, name: str, **attributes: str) -> str:
    """Create an SQS queue and return its URL."""
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def subscribed_queue(sns: Any, sqs: Any, topic_arn: str) -> str:
    """Create a queue subscribed to ``topic_arn`` (raw delivery off: bodies are SNS envelopes); return its URL."""
    queue_url = create_queue(sqs, unique("sns-inbox"))
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message waiting in a queue, in the order they come."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)


def sns_notifications(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """The SNS envelopes (``Subject``, ``Message``, ``MessageAttributes``...) that reached a subscribed queue."""
    return [json.loads(message["Body"]) for message in receive_all(sqs, queue_url)]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: AWS is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
