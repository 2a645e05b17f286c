"""What every subcommand shares: where the sessions live, output options, the error policy, progress.

- `store_options` adds ``--uri``, ``--database`` and ``--collection``, collected into a `Store`
  whose `Store.repository` opens a `MongoDBSessionRepository` that fails fast on an unreachable server.
- `output_options` adds ``--json`` and ``--debug`` and applies the error policy: an expected failure
  prints one ``error: ...`` line on stderr and exits 1; ``--debug`` shows the traceback instead.
- `emit_json` prints the one JSON document of ``--json``; `progress` draws a bar on a terminal only.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..errors import SessionException, StorageUnavailableError
from ..repository import MongoDBSessionRepository

__all__ = ["CommandError", "Store", "emit_json", "output_options", "progress", "store_options"]

SERVER_SELECTION_TIMEOUT_MS = 5000
"""How long the CLI waits for an unreachable server (``serverSelectionTimeoutMS`` in the URI overrides it)."""

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (SessionException, ValueError, TypeError)
"""Failures reported as one ``error: ...`` line (exit 1) rather than a traceback."""

F = TypeVar("F", bound=Callable[..., Any])

_CREDENTIALS = re.compile(r"//[^@/]*@")
_TIMEOUT_IN_URI = re.compile(r"[?&]serverSelectionTimeoutMS=(\d+)", re.IGNORECASE)


def _library_default(name: str) -> str:
    """Return the default of a `MongoDBSessionRepository` constructor argument (one source of truth)."""
    return str(inspect.signature(MongoDBSessionRepository.__init__).parameters[name].default)


def describe_uri(uri: str) -> str:
    """Return ``uri`` without credentials and options, safe to print."""
    return _CREDENTIALS.sub("//", uri.split("?", 1)[0])


# ----------------------------------------------------------------- shared options


@dataclass(frozen=True)
class Store:
    """Where the sessions live: the values of ``--uri``, ``--database`` and ``--collection``."""

    uri: str | None
    database: str
    collection: str

    @property
    def namespace(self) -> str:
        """Return ``database.collection``."""
        return f"{self.database}.{self.collection}"

    def resolved_uri(self) -> str:
        """Return ``--uri``/``MONGODB_URI``, else the embedded development server's URI (started if needed)."""
        if self.uri:
            return self.uri
        from ..embedded import default_connection_string

        try:
            return default_connection_string()
        except (ImportError, RuntimeError) as error:  # the embedded extra is missing, or its server is stuck
            raise StorageUnavailableError(str(error)) from error

    @contextmanager
    def repository(self) -> Iterator[MongoDBSessionRepository]:
        """Open a repository on this store that gives up on an unreachable server after a few seconds."""
        uri = self.resolved_uri()
        in_uri = _TIMEOUT_IN_URI.search(uri)
        timeout_ms = int(in_uri.group(1)) if in_uri else SERVER_SELECTION_TIMEOUT_MS
        try:
            repository = MongoDBSessionRepository(
                connection_string=uri,
                database_name=self.database,
                collection_name=self.collection,
                serverSelectionTimeoutMS=timeout_ms,
            )
        except StorageUnavailableError as error:
            raise _unreachable(uri, timeout_ms, error) from error
        with repository:
            yield repository


def store_options(command: F) -> F:
    """Add ``--uri``, ``--database`` and ``--collection``; the command receives them as ``store: Store``."""

    @click.option(
        "--uri",
        envvar="MONGODB_URI",
        show_envvar=True,
        metavar="URI",
        help="MongoDB connection string. Default: MONGODB_URI, else the embedded development server.",
    )
    @click.option(
        "--database",
        default=_library_default("database_name"),
        show_default=True,
        help="Database holding the sessions.",
    )
    @click.option(
        "--collection",
        default=_library_default("collection_name"),
        show_default=True,
        help="Collection holding one document per session.",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, uri: str | None, database: str, collection: str, **kwargs: Any) -> Any:
        return command(*args, store=Store(uri=uri, database=database, collection=collection), **kwargs)

    return wrapper  # type: ignore[return-value]


def output_options(command: F) -> F:
    """Add ``--json`` (passed on as ``as_json``) and ``--debug``, and apply the error policy.

    Expected failures (the package's errors, bad input) print one ``error: ...`` line on stderr and
    exit 1; anything else does the same with its type name and a hint. ``--debug`` turns on debug
    logs and lets the exception propagate with its traceback.
    """

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout (for scripts).")
    @click.option("--debug", is_flag=True, help="Log debug messages and show tracebacks on failure.")
    @functools.wraps(command)
    def wrapper(*args: Any, debug: bool, **kwargs: Any) -> Any:
        if debug:
            logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            return command(*args, **kwargs)
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except EXPECTED_ERRORS as error:
            raise CommandError(_one_line(str(error) or type(error).__name__)) from error
        except Exception as error:
            raise CommandError(
                _one_line(f"{type(error).__name__}: {error} (run again with --debug for the traceback)")
            ) from error

    return wrapper  # type: ignore[return-value]


class CommandError(click.ClickException):
    """A failure reported as one ``error: ...`` line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        """Print ``error: <message>`` on stderr."""
        click.echo(f"error: {self.format_message()}", err=True)


def emit_json(document: Any) -> None:
    """Print ``document`` as one JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, default=str))


@contextmanager
def progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None]]:
    """Yield an ``update(done, total)`` callback drawing a progress bar on stderr, or doing nothing."""
    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if not enabled:
            return
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _one_line(text: str) -> str:
    """Collapse ``text`` to its first line."""
    return text.strip().splitlines()[0] if text.strip() else text


def _unreachable(uri: str, timeout_ms: int, error: StorageUnavailableError) -> StorageUnavailableError:
    """Say which server did not answer, within which timeout, and what to check."""
    cause = str(error.__cause__ or error).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
    return StorageUnavailableError(
        f"MongoDB at {describe_uri(uri)} did not answer within {timeout_ms / 1000:g} s ({cause}); "
        "check --uri or MONGODB_URI"
    )
