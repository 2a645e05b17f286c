"""Metadata changes pushed to a browser through an API Gateway WebSocket API.

Run it with ``uv run --group dev python examples/aws_metadata_websocket.py`` (the dev group has moto).

The WebSocket client's connection id is stored in the session's metadata (``connection_id``), as a ``$connect``
handler would do; every later metadata change is pushed to that connection with ``post_to_connection``.

* With ``WEBSOCKET_API_ENDPOINT`` (``https://<api-id>.execute-api.<region>.amazonaws.com/<stage>``) and
  ``WEBSOCKET_CONNECTION_ID`` (a client connected to it, e.g. with ``wscat``) set, and AWS credentials allowed
  ``execute-api:ManageConnections``, the client receives the changes.
* Otherwise it starts a local moto server and prints the frames moto's API Gateway received.

With no ``MONGODB_URI`` the metadata is stored in the embedded development MongoDB server.
"""

import logging
import os
import uuid

from aws_local import local_aws
from mongodb_session_manager import (
    MongoDBSessionManager,
    create_metadata_websocket_hook,
    is_metadata_websocket_hook_available,
)
from mongodb_session_manager.startup import require_mongodb

PUSHED_FIELDS = ["status", "progress", "agent_state"]


def change_metadata(websocket_hook, connection_id: str) -> None:
    """Register the connection, then change metadata through a session whose metadata hook pushes to it."""
    session_id = f"aws-websocket-{uuid.uuid4().hex[:8]}"
    with MongoDBSessionManager(session_id=session_id, metadata_hook=websocket_hook) as session_manager:
        session_manager.update_metadata({"connection_id": connection_id})  # what your $connect handler stores
        session_manager.update_metadata({"status": "processing", "progress": 10, "agent_state": "thinking"})
        session_manager.update_metadata({"progress": 100, "status": "done", "internal_note": "not pushed"})
        session_manager.delete_metadata(["agent_state"])
        print(f"Session {session_id!r} metadata in MongoDB: {session_manager.get_metadata()['metadata']}")
    websocket_hook.close(timeout=30)  # let the queued pushes go out before the process exits


def with_your_api() -> None:
    endpoint, connection_id = os.environ["WEBSOCKET_API_ENDPOINT"], os.environ["WEBSOCKET_CONNECTION_ID"]
    change_metadata(create_metadata_websocket_hook(endpoint, metadata_fields=PUSHED_FIELDS), connection_id)
    print(f"Pushed to connection {connection_id}: check the client.")


def with_local_moto() -> None:
    print("No WEBSOCKET_API_ENDPOINT configured: starting a local moto server (no AWS account needed).")
    with local_aws() as aws:
        hook = create_metadata_websocket_hook(
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
            metadata_fields=PUSHED_FIELDS,
            region="us-east-1",
            boto3_session=aws.boto3_session,
            endpoint_url=aws.endpoint_url,  # moto serves the management API at its root
        )
        connection_id = f"conn-{uuid.uuid4().hex[:8]}"
        change_metadata(hook, connection_id)
        print(f"\nFrames posted to connection {connection_id}:")
        for frame in aws.websocket_frames(connection_id):
            print(f"  {frame['operation']:<6} {frame['metadata']}  at {frame['timestamp']}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if not is_metadata_websocket_hook_available():
        raise SystemExit("boto3 is missing: pip install 'mongodb-session-manager[aws]'")
    require_mongodb("aws_metadata_websocket")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    if os.environ.get("WEBSOCKET_API_ENDPOINT") and os.environ.get("WEBSOCKET_CONNECTION_ID"):
        with_your_api()
    else:
        with_local_moto()
