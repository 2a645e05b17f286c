"""``session-viewer``: start the Session Viewer on the configured (or embedded) MongoDB.

Every start-up failure (a missing extra, a bad setting, an unreachable MongoDB, a port in use) is one line on
stderr and a non-zero exit status; ``--debug`` or ``LOG_LEVEL=DEBUG`` shows the traceback instead.
"""

import argparse
import logging
import sys
from collections.abc import Sequence

from mongodb_session_manager.startup import (
    StartupError,
    debug_requested,
    describe_uri,
    listening_socket,
    reachable_mongodb,
)

__all__ = ["main"]

logger = logging.getLogger(__name__)

PROGRAM = "session-viewer"


def main(argv: Sequence[str] | None = None) -> int:
    """Load settings, check MongoDB and the port, say where the data comes from, and serve the viewer.

    A generated backend password is printed once, to stderr. Invalid settings (such as a short
    ``BACKEND_PASSWORD``) stop the start with one line and exit status 2; an unreachable MongoDB, a missing
    extra or a port in use with one line and exit status 1.
    """
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Session Viewer for mongodb-session-manager")
    parser.add_argument("--host", help="interface to listen on (default: BACKEND_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: BACKEND_PORT, 8882)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure (also LOG_LEVEL=DEBUG)")
    args = parser.parse_args(argv)
    debug = args.debug or debug_requested()

    try:
        import uvicorn
        from pydantic import ValidationError

        from .app import create_app
        from .config import Settings
    except ImportError as error:
        if debug:
            raise
        print(
            f"{PROGRAM}: the viewer extra is not installed (no module {error.name!r}); run "
            f'"uv run --extra viewer session-viewer" or pip install "mongodb-session-manager[viewer]"',
            file=sys.stderr,
        )
        return 1

    try:
        settings = Settings()
    except ValidationError as error:
        if debug:
            raise
        messages = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        print(f"{PROGRAM}: invalid configuration: {messages} (environment or .env)", file=sys.stderr)
        return 2
    debug = debug or settings.log_level == "DEBUG"
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    host = args.host or settings.backend_host
    port = args.port if args.port is not None else settings.backend_port
    sock = None
    try:
        sock = listening_socket(host, port, hint="choose another with --port or BACKEND_PORT")
        uri = reachable_mongodb(settings.mongodb_uri, settings.server_selection_timeout_ms)
    except StartupError as error:
        if sock is not None:
            sock.close()
        if debug:
            raise
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 1

    settings, generated = settings.resolve_password()
    if generated is not None:
        print(f"{PROGRAM}: no BACKEND_PASSWORD configured; generated one for this run: {generated}", file=sys.stderr)
    if settings.mongodb_uri:
        print(f"{PROGRAM}: using MongoDB at {describe_uri(uri)}", file=sys.stderr)
    else:
        print(
            f"{PROGRAM}: no MONGODB_URI set; using the embedded development MongoDB server at {uri} "
            "(details: mongodb-session-manager embedded status)",
            file=sys.stderr,
        )
        settings = settings.model_copy(update={"mongodb_uri": uri})
    print(f"{PROGRAM}: collection {settings.database_name}.{settings.collection_name}", file=sys.stderr)
    print(f"{PROGRAM}: open http://{host}:{sock.getsockname()[1]}/", file=sys.stderr)
    config = uvicorn.Config(create_app(settings), log_level=settings.log_level.lower())
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
