"""``session-viewer``: start the Session Viewer on the configured (or embedded) MongoDB."""

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from .app import create_app
from .config import Settings
from .database import connection_string, describe_uri

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Load settings, say where the data comes from, and serve the viewer with uvicorn.

    A generated backend password is printed once, to stderr. Invalid settings (such as a short
    ``BACKEND_PASSWORD``) stop the start with a message and exit status 2.
    """
    parser = argparse.ArgumentParser(prog="session-viewer", description="Session Viewer for mongodb-session-manager")
    parser.add_argument("--host", help="interface to listen on (default: BACKEND_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: BACKEND_PORT, 8882)")
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as error:
        messages = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        print(f"session-viewer: invalid configuration: {messages}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    settings, generated = settings.resolve_password()
    if generated is not None:
        print(
            f"session-viewer: no BACKEND_PASSWORD configured; generated one for this run: {generated}",
            file=sys.stderr,
        )
    if settings.mongodb_uri:
        print(f"session-viewer: using MongoDB at {describe_uri(settings.mongodb_uri)}", file=sys.stderr)
    else:
        uri = connection_string(settings)
        print(
            f"session-viewer: no MONGODB_URI set; using the embedded development MongoDB server at {uri} "
            "(data under MONGODB_SESSION_MANAGER_DATA_DIR or ./.mongodb-session-manager/)",
            file=sys.stderr,
        )
        settings = settings.model_copy(update={"mongodb_uri": uri})
    print(
        f"session-viewer: collection {settings.database_name}.{settings.collection_name}",
        file=sys.stderr,
    )

    import uvicorn

    host = args.host or settings.backend_host
    port = args.port if args.port is not None else settings.backend_port
    print(f"session-viewer: open http://{host}:{port}/", file=sys.stderr)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
