"""``session-viewer``: start the Session Viewer on the configured (or embedded) MongoDB.

Every start-up failure (a missing extra, a bad setting, an unreachable MongoDB, a port in use) is one line on
stderr and a non-zero exit status; ``--debug`` or ``LOG_LEVEL=DEBUG`` shows the traceback instead.
"""

import argparse
import sys
from collections.abc import Sequence

from web_common.cli import Program, configure_logging

__all__ = ["main"]

PROGRAM = Program(
    name="session-viewer",
    description="Session Viewer for mongodb-session-manager",
    extra="viewer",
    host_setting="BACKEND_HOST",
    port_setting="BACKEND_PORT",
    default_port=8882,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Load settings, check MongoDB and the port, say where the data comes from, and serve the viewer.

    A generated backend password is printed once, to stderr. Invalid settings (such as a short
    ``BACKEND_PASSWORD``) stop the start with one line and exit status 2; an unreachable MongoDB, a missing
    extra or a port in use with one line and exit status 1.
    """
    return PROGRAM.run(argv, _start)


def _start(args: argparse.Namespace, debug: bool) -> None:
    with PROGRAM.needs_extra(debug):
        from .app import create_app
        from .config import Settings

    settings = PROGRAM.load_settings(Settings, debug)
    debug = debug or settings.log_level == "DEBUG"
    configure_logging(settings.log_level)
    host = args.host or settings.backend_host
    settings = settings.model_copy(update={"backend_host": host})  # the Host allow-list names it
    port = args.port if args.port is not None else settings.backend_port
    sock, uri = PROGRAM.listen_and_reach_mongodb(
        host, port, settings.mongodb_uri, settings.server_selection_timeout_ms, debug
    )

    settings, generated = settings.resolve_password()
    if generated is not None:
        PROGRAM.say(f"no BACKEND_PASSWORD configured; generated one for this run: {generated}")
    settings = PROGRAM.use_mongodb(settings, uri)
    PROGRAM.say(f"collection {settings.database_name}.{settings.collection_name}")
    PROGRAM.say(f"open http://{host}:{sock.getsockname()[1]}/")
    PROGRAM.serve(create_app(settings), sock, settings.log_level.lower())


if __name__ == "__main__":
    sys.exit(main())
