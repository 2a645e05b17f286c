"""What every subcommand shares: where the sessions live, output options, the error policy, progress.

- `store_options` adds ``--uri``, ``--database`` and ``--collection``, and the encryption options
  ``--local-key-file``, ``--key-vault`` and ``--deterministic-field``, collected into a `Store` whose
  `Store.repository` opens a `MongoDBSessionRepository` that fails fast on an unreachable server.
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

from ..encryption import DEFAULT_KEY_VAULT_NAMESPACE, EncryptionSettings, generate_local_key, load_local_key
from ..errors import SessionException, StorageUnavailableError
from ..repository import MongoDBSessionRepository

__all__ = ["CommandError", "Store", "emit_json", "output_options", "progress", "store_options"]

LOCAL_KEY_FILE_ENV = "MONGODB_SESSION_MANAGER_LOCAL_KEY_FILE"
"""Environment variable read for ``--local-key-file``."""
KEY_VAULT_ENV = "MONGODB_SESSION_MANAGER_KEY_VAULT"
"""Environment variable read for ``--key-vault``."""
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
    """Where the sessions live and how they are encrypted: the values of the shared options.

    Attributes:
        uri: ``--uri`` (None: ``MONGODB_URI`` was not set either).
        database: ``--database``.
        collection: ``--collection``.
        local_key_file: ``--local-key-file``: a 96-byte ``local`` master key (`save_local_key` writes one);
            with it the repository encrypts and decrypts (`EncryptionSettings.local`).
        key_vault: ``--key-vault``: the key vault namespace ``<database>.<collection>``.
        deterministic_fields: ``--deterministic-field``: the metadata fields the application encrypts
            deterministically (queried by ``--metadata``, removed by ``sessions erase``).
    """

    uri: str | None
    database: str
    collection: str
    local_key_file: str | None = None
    key_vault: str = DEFAULT_KEY_VAULT_NAMESPACE
    deterministic_fields: tuple[str, ...] = ()

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

    @property
    def encrypted(self) -> bool:
        """Whether a master key was given (``--local-key-file``)."""
        return self.local_key_file is not None

    def encryption(self, key_vault_only: bool = False) -> EncryptionSettings | None:
        """The encryption settings of the options: None without ``--local-key-file``.

        Args:
            key_vault_only: Settings that reach the key vault even without a master key (deleting data keys
                needs none: a random key stands in and is never used).

        Raises:
            CommandError: The key file cannot be read.
            ValueError: It does not hold a 96-byte key, or ``--key-vault`` is not ``<database>.<collection>``.
        """
        options: dict[str, Any] = {
            "key_vault_namespace": self.key_vault,
            "deterministic_metadata_fields": self.deterministic_fields,
        }
        if self.local_key_file is None:
            return EncryptionSettings.local(generate_local_key(), **options) if key_vault_only else None
        try:
            key = load_local_key(self.local_key_file)
        except OSError as error:
            raise CommandError(f"cannot read the local key file {self.local_key_file}: {error.strerror}") from error
        return EncryptionSettings.local(key, **options)

    @contextmanager
    def repository(self, key_vault_only: bool = False) -> Iterator[MongoDBSessionRepository]:
        """Open a repository on this store that gives up on an unreachable server after a few seconds.

        Args:
            key_vault_only: Give it the key vault even without ``--local-key-file`` (see `encryption`).
        """
        encryption = self.encryption(key_vault_only)
        uri = self.resolved_uri()
        in_uri = _TIMEOUT_IN_URI.search(uri)
        timeout_ms = int(in_uri.group(1)) if in_uri else SERVER_SELECTION_TIMEOUT_MS
        try:
            repository = MongoDBSessionRepository(
                connection_string=uri,
                database_name=self.database,
                collection_name=self.collection,
                encryption=encryption,
                serverSelectionTimeoutMS=timeout_ms,
            )
        except StorageUnavailableError as error:
            raise _unreachable(uri, timeout_ms, error) from error
        with repository:
            yield repository


def store_options(command: F) -> F:
    """Add ``--uri``, ``--database``, ``--collection`` and the encryption options; the command gets ``store: Store``."""

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
    @click.option(
        "--local-key-file",
        envvar=LOCAL_KEY_FILE_ENV,
        show_envvar=True,
        metavar="PATH",
        help="Encrypted sessions: the 96-byte local master key file (save_local_key writes one). "
        "Needs the 'encryption' extra.",
    )
    @click.option(
        "--key-vault",
        envvar=KEY_VAULT_ENV,
        show_envvar=True,
        default=DEFAULT_KEY_VAULT_NAMESPACE,
        show_default=True,
        metavar="DB.COLL",
        help="Encrypted sessions: the key vault namespace holding the data keys.",
    )
    @click.option(
        "--deterministic-field",
        "deterministic_fields",
        multiple=True,
        metavar="NAME",
        help="Encrypted sessions: a metadata field encrypted deterministically (as in the application's "
        "EncryptionSettings). Repeatable.",
    )
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        uri: str | None,
        database: str,
        collection: str,
        local_key_file: str | None,
        key_vault: str,
        deterministic_fields: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        store = Store(
            uri=uri,
            database=database,
            collection=collection,
            local_key_file=local_key_file or None,
            key_vault=key_vault,
            deterministic_fields=tuple(deterministic_fields),
        )
        return command(*args, store=store, **kwargs)

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
