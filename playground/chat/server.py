"""``uv run playground``: serve the chat page and its streaming backend with one command.

Every start-up failure (a missing extra, a bad setting, an unreachable MongoDB, a port in use) is one line on
stderr and a non-zero exit status; ``--debug`` or ``LOG_LEVEL=DEBUG`` shows the traceback instead.
"""

import argparse
import sys
from collections.abc import Sequence

from web_common.cli import Program, configure_logging

__all__ = ["main"]

PROGRAM = Program(
    name="playground",
    description="Chat playground for mongodb-session-manager",
    extra="playground",
    host_setting="PLAYGROUND_HOST",
    port_setting="PLAYGROUND_PORT",
    default_port=8880,
    settings_source="PLAYGROUND_* environment or .env",
    mongodb_hint="check MONGODB_URI (or PLAYGROUND_MONGODB_URI), or unset it to use the embedded development server",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Check the settings, MongoDB and the port, say which MongoDB and model it uses and where to open it, serve.

    Invalid settings stop the start with one line and exit status 2; an unreachable MongoDB, a missing extra
    or a port in use with one line and exit status 1.
    """
    return PROGRAM.run(argv, _start)


def _start(args: argparse.Namespace, debug: bool) -> None:
    with PROGRAM.needs_extra(debug):
        from mongodb_session_manager.demo_model import create_model, describe_model

        from .app import create_app
        from .config import Settings

    settings = PROGRAM.load_settings(Settings, debug)
    debug = debug or settings.log_level.upper() == "DEBUG"
    configure_logging(settings.log_level)
    host = args.host or settings.host
    settings = settings.model_copy(update={"host": host})  # the Host allow-list names it
    port = args.port if args.port is not None else settings.port
    sock, uri = PROGRAM.listen_and_reach_mongodb(
        host, port, settings.mongodb_uri, settings.server_selection_timeout_ms, debug
    )

    settings = PROGRAM.use_mongodb(settings, uri)
    model = create_model()
    PROGRAM.say(f"model: {describe_model(model)}")
    PROGRAM.say(
        f"sessions in {settings.database_name}.{settings.collection_name} "
        "(browse them with: uv run --extra viewer session-viewer)"
    )
    PROGRAM.say(f"open http://{host}:{sock.getsockname()[1]}/chat.html")
    PROGRAM.serve(create_app(settings, model=model), sock, "warning")


if __name__ == "__main__":
    sys.exit(main())
