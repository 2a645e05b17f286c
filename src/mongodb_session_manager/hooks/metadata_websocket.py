"""``MetadataWebSocketHook``: push each metadata update and delete to the session's API Gateway WebSocket client.

The client's connection id lives in the session's metadata under ``connection_id`` (``ws_connection_id`` is
accepted too), stored by your ``$connect`` handler::

    session_manager.update_metadata({"connection_id": event["requestContext"]["connectionId"]})

Where the connection id comes from: an update that carries it uses it directly (no read). Otherwise the hook
reads the stored metadata once, on the caller's thread right after the operation (one ``find`` by ``_id``; done
there because the manager may be closed by the time the background publisher runs). Nothing is read when the
operation changed none of the selected fields. A session without a connection id sends nothing.

The frame sent with ``post_to_connection`` is the same JSON event as the SQS hook's (``event``,
``session_id``, ``operation``, ``metadata``, ``timestamp``, plus ``deleted_keys`` for deletes); the connection id
fields themselves are never sent, so storing the connection id alone pushes nothing. A client that has gone
(``GoneException``) is logged at INFO and the operation carries on.

IAM: ``execute-api:ManageConnections`` on the connections resource,
``arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/POST/@connections/*``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._base import NotificationHook, boto3_available, resolve_region
from ._events import field_list, json_default, metadata_event
from ._publisher import log_failure

logger = logging.getLogger(__name__)

CONNECTION_ID_FIELDS = ("connection_id", "ws_connection_id")
"""Metadata fields holding the WebSocket connection id, in order of preference."""

FRAME_MAX_BYTES = 128 * 1024
"""API Gateway WebSocket frame limit; larger events are logged and not sent."""

_ENDPOINT_REGION = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")
_DESCRIPTION_PREFIX = "websocket:"


class MetadataWebSocketHook(NotificationHook):
    """Metadata interceptor that pushes every update and delete to the session's WebSocket connection."""

    hook_name = "MetadataWebSocketHook"

    def __init__(
        self,
        api_gateway_endpoint: str,
        metadata_fields: Sequence[str] | None = None,
        region: str | None = None,
        *,
        region_name: str | None = None,
        client: Any = None,
        boto3_session: Any = None,
        endpoint_url: str | None = None,
        max_workers: int = 4,
        max_pending: int = 1000,
    ) -> None:
        """Create the hook and its API Gateway Management API client.

        Args:
            api_gateway_endpoint: The WebSocket API's connection URL,
                ``https://<api-id>.execute-api.<region>.amazonaws.com/<stage>`` (``wss://`` is accepted).
            metadata_fields: Only push these metadata fields; None (or empty) pushes every field.
            region: AWS region (alias ``region_name``); defaults to the region in the endpoint.
            region_name: Alias of ``region``.
            client: A boto3 ``apigatewaymanagementapi`` client to use instead of creating one.
            boto3_session: The ``boto3.session.Session`` to create the client from.
            endpoint_url: Overrides the client's endpoint (LocalStack, moto); defaults to ``api_gateway_endpoint``.
            max_workers: Background threads posting (each session's changes stay in order).
            max_pending: Most notifications queued at once; beyond that new ones are dropped with a warning.

        Raises:
            ImportError: boto3 is not installed (and no ``client`` was given).
        """
        if not api_gateway_endpoint:
            raise ValueError("api_gateway_endpoint is required")
        self.api_gateway_endpoint = _https(api_gateway_endpoint)
        self.metadata_fields = field_list(metadata_fields)
        super().__init__("websocket", max_workers, max_pending, on_error=_log_post_failure)
        match = _ENDPOINT_REGION.search(self.api_gateway_endpoint)
        self._use_client(
            "apigatewaymanagementapi",
            client=client,
            region=resolve_region(region, region_name) or (match.group(1) if match else None),
            endpoint_url=endpoint_url or self.api_gateway_endpoint,
            boto3_session=boto3_session,
            max_workers=max_workers,
        )
        logger.debug(
            "endpoint=<%s> | fields=<%s> | metadata websocket hook created",
            self.api_gateway_endpoint,
            self.metadata_fields,
        )

    def _notify(
        self, action: str, session_id: str, kwargs: Mapping[str, Any], result: Any, session_manager: Any
    ) -> None:
        event = metadata_event(action, session_id, kwargs, self.metadata_fields, exclude=CONNECTION_ID_FIELDS)
        if event is None:
            return
        connection_id = connection_id_in(kwargs.get("metadata")) if action == "update" else None
        if connection_id is None:
            connection_id = _stored_connection_id(session_manager, session_id)
        if connection_id is None:
            logger.debug("session_id=<%s> | no websocket connection id in the metadata, nothing pushed", session_id)
            return
        data = json.dumps(event, default=json_default, ensure_ascii=False).encode("utf-8")
        if len(data) > FRAME_MAX_BYTES:
            logger.warning(
                "session_id=<%s> | bytes=<%d> | limit=<%d> | metadata event too large for a websocket frame, not sent",
                session_id,
                len(data),
                FRAME_MAX_BYTES,
            )
            return
        self._submit(session_id, f"{_DESCRIPTION_PREFIX}{connection_id}", self._post, session_id, connection_id, data)

    def _post(self, session_id: str, connection_id: str, data: bytes) -> None:
        self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        logger.debug("session_id=<%s> | connection_id=<%s> | metadata event pushed", session_id, connection_id)


def create_metadata_websocket_hook(
    api_gateway_endpoint: str,
    metadata_fields: Sequence[str] | None = None,
    region: str | None = None,
    **options: Any,
) -> MetadataWebSocketHook:
    """Create a metadata hook that pushes updates and deletes to the session's WebSocket client.

    ``options`` are `MetadataWebSocketHook`'s keyword-only arguments (``region_name``, ``client``,
    ``boto3_session``, ``endpoint_url``, ``max_workers``, ``max_pending``).
    """
    return MetadataWebSocketHook(api_gateway_endpoint, metadata_fields, region, **options)


def is_metadata_websocket_hook_available() -> bool:
    """Return True when boto3 is installed, so `create_metadata_websocket_hook` can work."""
    return boto3_available()


def connection_id_in(metadata: Any) -> str | None:
    """Return the WebSocket connection id held in a metadata mapping, or None."""
    if not isinstance(metadata, Mapping):
        return None
    for field in CONNECTION_ID_FIELDS:
        value = metadata.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def _stored_connection_id(session_manager: Any, session_id: str) -> str | None:
    """Read the connection id from the stored metadata (straight from the repository: no metadata hook runs)."""
    if session_manager is None:
        return None
    try:
        repository = getattr(session_manager, "session_repository", None)
        if repository is not None and hasattr(repository, "get_metadata"):
            stored = repository.get_metadata(session_id)
        else:
            stored = session_manager.get_metadata()
    except Exception as error:
        logger.warning(
            "session_id=<%s> | error=<%s> | could not read the websocket connection id, nothing pushed",
            session_id,
            error,
        )
        return None
    return connection_id_in(stored.get("metadata") if isinstance(stored, Mapping) else None)


def _log_post_failure(error: BaseException, session_id: str, description: str) -> None:
    if _error_code(error) == "GoneException":
        logger.info(
            "session_id=<%s> | connection_id=<%s> | websocket connection gone, metadata event not delivered",
            session_id,
            description.removeprefix(_DESCRIPTION_PREFIX),
        )
        return
    log_failure(error, session_id, description)


def _error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _https(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    if endpoint.startswith("wss://"):
        return "https://" + endpoint.removeprefix("wss://")
    if endpoint.startswith("ws://"):
        return "http://" + endpoint.removeprefix("ws://")
    return endpoint
