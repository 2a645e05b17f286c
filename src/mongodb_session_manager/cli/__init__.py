"""``mongodb-session-manager``: the command line for operators, built on click.

Every subcommand is a thin layer over public library functions: it parses options, opens a
`MongoDBSessionRepository`, calls one library function and prints the result (a short text for
people, one JSON document on stdout with ``--json``). It never builds a query itself.

A subcommand lives in its own module (``migrate.py``), takes the shared options of ``common.py``
(`store_options`, `output_options`) and is added to the `cli` group here.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from .. import __version__
from .embedded import embedded
from .migrate import migrate
from .sessions import sessions

__all__ = ["cli", "main"]

PROG_NAME = "mongodb-session-manager"


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run 'mongodb-session-manager COMMAND --help' for a command's options and examples.",
)
@click.version_option(__version__, prog_name=PROG_NAME)
def cli() -> None:
    """Operate on the sessions stored by mongodb-session-manager.

    Every command on sessions takes --uri (default: MONGODB_URI, else the embedded development
    server), --database and --collection; every command takes --json for machine output and
    --debug for tracebacks. 'embedded status|stop' manage the embedded development server.
    Exit status: 0 ok, 1 failed, 2 usage error.

    \b
    Example:
      mongodb-session-manager migrate --to collection --dry-run \\
          --uri mongodb://localhost:27017 --database app --collection sessions
    """


cli.add_command(migrate)
cli.add_command(embedded)
cli.add_command(sessions)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the console script's entry point); exits with 0, 1 or 2."""
    cli.main(args=list(argv) if argv is not None else None, prog_name=PROG_NAME)
