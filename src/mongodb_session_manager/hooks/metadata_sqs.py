"""``MetadataSQSHook``: send each metadata update and delete to an Amazon SQS queue.

Message body (JSON)::

    {"session_id": "...", "event": "metadata_update", "operation": "update" | "delete",
     "metadata": {"status": "processing"},            # a delete sets each deleted key to null
     "deleted_keys": ["status"],                      # deletes only
     "timestamp": "2025-01-26T10:30:45.123456+00:00"}

Message attributes: ``session_id``, ``event`` and ``operation``. With ``metadata_fields`` only those fields (and
dotted keys inside them) are sent, and an operation that touches none of them sends nothing. FIFO queues
(``.fifo``) get the session id as message group, so a session's changes stay in order.

IAM: ``sqs:SendMessage`` on the queue (plus ``kms:GenerateDataKey``/``kms:Decrypt`` for a queue encrypted with a
customer managed key).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ._base import NotificationHook, boto3_available, resolve_region
from ._events import field_list, json_default, metadata_event

logger = logging.getLogger(__name__)

MESSAGE_MAX_BYTES = 256 * 1024
"""SQS message size limit this hook keeps to; larger events are logged and not sent."""

_QUEUE_URL_REGION = re.compile(r"^https?://(?:sqs\.([a-z0-9-]+)\.|([a-z0-9-]+)\.queue\.)amazonaws\.com")


class MetadataSQSHook(NotificationHook):
    """Metadata interceptor that sends every update and delete to an SQS queue."""

    hook_name = "MetadataSQSHook"

    def __init__(
        self,
        queue_url: str,
        metadata_fields: Sequence[str] | None = None,
        *,
        region: str | None = None,
        region_name: str | None = None,
        client: Any = None,
        boto3_session: Any = None,
        endpoint_url: str | None = None,
        max_workers: int = 4,
        max_pending: int = 1000,
    ) -> None:
        """Create the hook and its SQS client.

        Args:
            queue_url: URL of the queue (``https://sqs.<region>.amazonaws.com/<account>/<name>``).
            metadata_fields: Only send these metadata fields; None (or empty) sends every field.
            region: AWS region of the client (alias ``region_name``); defaults to the region in ``queue_url``.
            region_name: Alias of ``region``.
            client: A boto3 SQS client to use instead of creating one.
            boto3_session: The ``boto3.session.Session`` to create the client from.
            endpoint_url: Endpoint of an SQS-compatible service (LocalStack, moto).
            max_workers: Background threads sending (each session's changes stay in order).
            max_pending: Most notifications queued at once; beyond that new ones are dropped with a warning.

        Raises:
            ImportError: boto3 is not installed (and no ``client`` was given).
        """
        if not queue_url:
            raise ValueError("queue_url is required")
        self.queue_url = queue_url
        self.metadata_fields = field_list(metadata_fields)
        super().__init__("sqs", max_workers, max_pending)
        self._use_client(
            "sqs",
            client=client,
            region=resolve_region(region, region_name) or _queue_region(queue_url),
            endpoint_url=endpoint_url,
            boto3_session=boto3_session,
            max_workers=max_workers,
        )
        logger.debug("queue_url=<%s> | fields=<%s> | metadata sqs hook created", queue_url, self.metadata_fields)

    def _notify(
        self, action: str, session_id: str, kwargs: Mapping[str, Any], result: Any, session_manager: Any
    ) -> None:
        event = metadata_event(action, session_id, kwargs, self.metadata_fields)
        if event is None:
            return
        body = json.dumps(event, default=json_default, ensure_ascii=False)
        if len(body.encode("utf-8")) > MESSAGE_MAX_BYTES:
            logger.warning(
                "session_id=<%s> | bytes=<%d> | limit=<%d> | metadata event too large for SQS, not sent",
                session_id,
                len(body.encode("utf-8")),
                MESSAGE_MAX_BYTES,
            )
            return
        message: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": body,
            "MessageAttributes": {
                "session_id": {"DataType": "String", "StringValue": session_id},
                "event": {"DataType": "String", "StringValue": event["event"]},
                "operation": {"DataType": "String", "StringValue": action},
            },
        }
        if self.queue_url.endswith(".fifo"):
            message["MessageGroupId"] = session_id
            message["MessageDeduplicationId"] = uuid.uuid4().hex
        self._submit(session_id, f"sqs:{self.queue_url}", self._send, session_id, message)

    def _send(self, session_id: str, message: dict[str, Any]) -> None:
        response = self._client.send_message(**message)
        logger.debug(
            "session_id=<%s> | queue_url=<%s> | message_id=<%s> | metadata event sent",
            session_id,
            self.queue_url,
            response.get("MessageId"),
        )


def create_metadata_sqs_hook(
    queue_url: str, metadata_fields: Sequence[str] | None = None, **options: Any
) -> MetadataSQSHook:
    """Create a metadata hook that sends updates and deletes to SQS; pass it as ``metadata_hook``.

    ``options`` are `MetadataSQSHook`'s keyword-only arguments (``region``, ``client``, ``boto3_session``,
    ``endpoint_url``, ``max_workers``, ``max_pending``).
    """
    return MetadataSQSHook(queue_url, metadata_fields, **options)


def is_metadata_sqs_hook_available() -> bool:
    """Return True when boto3 is installed, so `create_metadata_sqs_hook` can work."""
    return boto3_available()


def _queue_region(queue_url: str) -> str | None:
    match = _QUEUE_URL_REGION.match(queue_url)
    return (match.group(1) or match.group(2)) if match else None
