"""``uv run playground``: serve the chat page and its streaming backend with one command.

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

__all__ = ["describe_uri", "main"]

PROGRAM = "playground"


def main(argv: Sequence[str] | None = None) -> int:
    """Check the settings, MongoDB and the port, say which MongoDB and model it uses and where to open it, serve.

    Invalid settings stop the start with one line and exit status 2; an unreachable MongoDB, a missing extra
    or a port in use with one line and exit status 1.
    """
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Chat playground for mongodb-session-manager")
    parser.add_argument("--host", help="interface to listen on (default: PLAYGROUND_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PLAYGROUND_PORT, 8880)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure (also LOG_LEVEL=DEBUG)")
    args = parser.parse_args(argv)
    debug = args.debug or debug_requested()

    try:
        import uvicorn
        from pydantic import ValidationError

        from mongodb_session_manager.demo_model import create_model, describe_model

        from .app import create_app
        from .config import Settings
    except ImportError as error:
        if debug:
            raise
        print(
            f"{PROGRAM}: the playground extra is not installed (no module {error.name!r}); run "
            f'"uv run --extra playground playground" or pip install "mongodb-session-manager[playground]"',
            file=sys.stderr,
        )
        return 1

    try:
        settings = Settings()
    except ValidationError as error:
        if debug:
            raise
        messages = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        print(f"{PROGRAM}: invalid configuration: {messages} (PLAYGROUND_* environment or .env)", file=sys.stderr)
        return 2
    debug = debug or settings.log_level.upper() == "DEBUG"
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    sock = None
    try:
        sock = listening_socket(host, port, hint="choose another with --port or PLAYGROUND_PORT")
        uri = reachable_mongodb(
            settings.mongodb_uri,
            settings.server_selection_timeout_ms,
            hint="check MONGODB_URI (or PLAYGROUND_MONGODB_URI), or unset it to use the embedded development server",
        )
    except StartupError as error:
        if sock is not None:
            sock.close()
        if debug:
            raise
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 1

    if settings.mongodb_uri:
        print(f"{PROGRAM}: MongoDB at {describe_uri(uri)}", file=sys.stderr)
    else:
        print(
            f"{PROGRAM}: no MONGODB_URI set; using the embedded development MongoDB server at {uri} "
            "(details: mongodb-session-manager embedded status)",
            file=sys.stderr,
        )
        settings = settings.model_copy(update={"mongodb_uri": uri})
    model = create_model()
    print(f"{PROGRAM}: model: {describe_model(model)}", file=sys.stderr)
    print(
        f"{PROGRAM}: sessions in {settings.database_name}.{settings.collection_name} "
        "(browse them with: uv run --extra viewer session-viewer)",
        file=sys.stderr,
    )
    print(f"{PROGRAM}: open http://{host}:{sock.getsockname()[1]}/chat.html", file=sys.stderr)
    config = uvicorn.Config(create_app(settings, model=model), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
