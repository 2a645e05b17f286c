"""``mongodb-session-manager sessions list|show|export|import|delete|erase|prune``: work on stored sessions."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from ..encryption import session_key_alt_name
from ..errors import EncryptionKeyError, SessionKeyErasedError
from ..repository import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, ORPHAN_GRACE
from ..transfer import ON_CONFLICT, export_sessions, import_sessions
from .common import CommandError, Store, emit_json, output_options, progress, store_options

__all__ = ["sessions"]

F = TypeVar("F", bound=Callable[..., Any])

_TEXT_PREVIEW = 120
"""Characters of a text block `show` prints per message."""


class IsoDateTime(click.ParamType):
    """An ISO 8601 date or date-time (``2025-01-31``, ``2025-01-31T12:00``, ``...+02:00``); naive means UTC."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        """Parse ``value`` into a timezone-aware datetime."""
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time (e.g. 2025-01-31T12:00:00Z)", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class MetadataFilter(click.ParamType):
    """``KEY=VALUE`` (a string) or ``KEY:=JSON`` (a number, true, false, null, ...): equality on a metadata field."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        """Split ``value`` into the field and the value it must equal."""
        if isinstance(value, tuple):
            return value
        key, is_json, raw = _split_filter(str(value))
        if not key:
            self.fail(f"{value!r} is not KEY=VALUE or KEY:=JSON", param, ctx)
        if not is_json:
            return key, raw
        try:
            return key, json.loads(raw)
        except ValueError:
            self.fail(f"{raw!r} (the value of {key!r}) is not JSON", param, ctx)


def _split_filter(text: str) -> tuple[str, bool, str]:
    """Split ``KEY=VALUE`` / ``KEY:=JSON`` into (key, is_json, value); key is "" when there is no ``=``."""
    key, equals, raw = text.partition("=")
    if not equals:
        return "", False, ""
    if key.endswith(":"):
        return key[:-1], True, raw
    return key, False, raw


def filter_options(command: F) -> F:
    """Add the listing filters shared by ``list`` and ``export``."""
    options = [
        click.option("--prefix", metavar="TEXT", help="Only sessions whose id starts with TEXT."),
        click.option(
            "--application", "application_name", metavar="NAME", help="Only sessions of this application_name."
        ),
        click.option("--created-after", type=IsoDateTime(), help="Only sessions created at or after this time."),
        click.option("--created-before", type=IsoDateTime(), help="Only sessions created before this time."),
        click.option("--updated-after", type=IsoDateTime(), help="Only sessions last written at or after this time."),
        click.option("--updated-before", type=IsoDateTime(), help="Only sessions last written before this time."),
        click.option(
            "--metadata",
            "metadata_filters",
            multiple=True,
            type=MetadataFilter(),
            help="Equality on an indexed metadata field: KEY=VALUE (a string) or KEY:=JSON. Repeatable.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _filters(**options: Any) -> dict[str, Any]:
    """The ``list_sessions`` filters given on the command line (none given: an empty dict)."""
    filters = {key: value for key, value in options.items() if key != "metadata_filters" and value is not None}
    if options.get("metadata_filters"):
        filters["metadata"] = dict(options["metadata_filters"])
    return filters


@click.group()
def sessions() -> None:
    """List, show, export, import, delete, erase and prune stored sessions.

    Encrypted sessions: give the master key with --local-key-file (and --key-vault when the key
    vault is not the default) to read or export them in clear; listing needs no key.

    \b
    Examples:
      mongodb-session-manager sessions list --prefix user-42- --limit 20
      mongodb-session-manager sessions show s-1
      mongodb-session-manager sessions export --created-before 2025-01-01 -o old.jsonl
      mongodb-session-manager sessions import old.jsonl --database archive --on-conflict skip
      mongodb-session-manager sessions delete s-1 s-2 --yes
      mongodb-session-manager sessions erase s-1 --yes
      mongodb-session-manager sessions prune s-1 --agent assistant --keep-last 50
      mongodb-session-manager sessions prune --orphans
    """


# ----------------------------------------------------------------- list


@sessions.command(name="list")
@filter_options
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIST_LIMIT),
    default=DEFAULT_LIST_LIMIT,
    show_default=True,
    help="Sessions per page.",
)
@click.option("--cursor", metavar="CURSOR", help="Show the page after the one that printed this cursor.")
@store_options
@output_options
def list_command(limit: int, cursor: str | None, store: Store, as_json: bool, **filter_values: Any) -> None:
    """List sessions newest first, one page at a time.

    Prints one line per session (id, created, updated, messages per agent, metadata) and, when
    more sessions match, the --cursor to pass for the next page. A --metadata field must be
    indexed (a metadata_fields index), or the command fails.

    \b
    Examples:
      mongodb-session-manager sessions list
      mongodb-session-manager sessions list --prefix user-42- --updated-after 2025-06-01
      mongodb-session-manager sessions list --metadata tenant=acme --json
    """
    with store.repository() as repository:
        page = repository.list_sessions(**_filters(**filter_values), limit=limit, cursor=cursor)
    if as_json:
        emit_json(_plain(page))
        return
    _print_table(page["sessions"])
    if page["next_cursor"]:
        click.echo(f"more sessions: add --cursor {page['next_cursor']}")


def _print_table(summaries: list[dict[str, Any]]) -> None:
    """Print the sessions of a page as aligned columns."""
    rows = [
        (
            summary["session_id"],
            _when(summary.get("created_at")),
            _when(summary.get("updated_at")),
            " ".join(f"{agent}:{count}" for agent, count in summary["message_counts"].items()) or "-",
            json.dumps(_plain(summary.get("metadata") or {}), ensure_ascii=False) if summary.get("metadata") else "-",
        )
        for summary in summaries
    ]
    header = ("SESSION", "CREATED", "UPDATED", "MESSAGES", "METADATA")
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]))
    if not rows:
        click.echo("(no sessions)")


# ----------------------------------------------------------------- show


@sessions.command()
@click.argument("session_id")
@store_options
@output_options
def show(session_id: str, store: Store, as_json: bool) -> None:
    """Show one session: its summary, then every agent's messages.

    \b
    Examples:
      mongodb-session-manager sessions show s-1
      mongodb-session-manager sessions show s-1 --json
    """
    with store.repository() as repository:
        session = repository.read_session(session_id)
        if session is None:
            raise CommandError(f"unknown session {session_id!r} in {store.namespace}")
        with _unreadable(store, session_id):
            metadata = repository.get_metadata(session_id).get("metadata", {})
            messages = repository.session_messages(session_id)
    report = {
        "session_id": session.session_id,
        "session_type": str(getattr(session.session_type, "value", session.session_type)),
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "metadata": metadata,
        "agents": messages,
    }
    if as_json:
        emit_json(_plain(report))
        return
    click.echo(f"session {session.session_id} ({report['session_type']})")
    click.echo(f"created: {session.created_at}  updated: {session.updated_at}")
    click.echo(f"metadata: {json.dumps(_plain(metadata), ensure_ascii=False) if metadata else '-'}")
    for agent_id, agent_messages in messages.items():
        click.echo(f"agent {agent_id}: {len(agent_messages)} message(s)")
        for element in agent_messages:
            click.echo(f"  #{element['message_id']} {_describe_message(element['message'])}")


def _describe_message(message: Any) -> str:
    """One line for a strands message: its role and a short form of each content block."""
    if not isinstance(message, dict):
        return str(message)[:_TEXT_PREVIEW]
    parts = [_describe_block(block) for block in message.get("content") or []]
    return f"{message.get('role', '?')}: {' '.join(parts)}"


def _describe_block(block: Any) -> str:
    """A short form of one content block: its text (cut), or its kind and the gist of it."""
    if not isinstance(block, dict):
        return str(block)[:_TEXT_PREVIEW]
    if "text" in block:
        text = " ".join(str(block["text"]).split())
        return text if len(text) <= _TEXT_PREVIEW else text[: _TEXT_PREVIEW - 3] + "..."
    if "toolUse" in block:
        use = block["toolUse"]
        return f"[toolUse {use.get('name')} {json.dumps(_plain(use.get('input')), ensure_ascii=False)}]"
    if "toolResult" in block:
        result = block["toolResult"]
        texts = " ".join(str(item.get("text", "")) for item in result.get("content") or [] if isinstance(item, dict))
        return f"[toolResult {result.get('status', '')} {texts.strip()}]".replace(" ]", "]")
    kind = next(iter(block), "?")
    return f"[{kind}]"


# ----------------------------------------------------------------- export


@sessions.command(name="export")
@click.argument("session_ids", nargs=-1, metavar="[ID]...")
@filter_options
@click.option(
    "-o",
    "--output",
    default="-",
    show_default=True,
    metavar="FILE",
    help="Where to write the JSON Lines ('-': stdout). A file is written whole or not at all.",
)
@click.option(
    "--decrypt",
    is_flag=True,
    help="Write encrypted sessions in clear (needs --local-key-file); they import as clear sessions.",
)
@store_options
@output_options
def export_command(
    session_ids: tuple[str, ...], output: str, decrypt: bool, store: Store, as_json: bool, **filter_values: Any
) -> None:
    """Export sessions as JSON Lines (MongoDB Extended JSON, one session per line).

    Exports the named sessions, or those matching the filters, or every session. Each line holds
    the whole session with every agent's messages, whatever their layout; bytes and dates are
    exact. Sessions are read one at a time (constant memory). With -o -, the summary goes to
    stderr. An unknown session fails the command before anything is written. Encrypted sessions
    keep their ciphertext (readable again with the same key vault after an import) unless
    --decrypt is given; a session whose key was erased fails --decrypt.

    \b
    Examples:
      mongodb-session-manager sessions export s-1 s-2 -o two.jsonl
      mongodb-session-manager sessions export --prefix user-42- > user-42.jsonl
      mongodb-session-manager sessions export --created-before 2025-01-01 -o old.jsonl --json
      mongodb-session-manager sessions export s-1 --decrypt --local-key-file master.key -o s-1.jsonl
    """
    filters = _filters(**filter_values)
    if session_ids and filters:
        raise click.UsageError("give session ids or filters, not both")
    if decrypt and not store.encrypted:
        raise click.UsageError("--decrypt needs the master key: give --local-key-file (or its environment variable)")
    draw = not as_json and sys.stderr.isatty()
    with store.repository() as repository, progress_callback(draw, "Exporting") as update:
        if output == "-":
            summary = _export(repository, sys.stdout, session_ids, update, filters, decrypt)
        else:
            summary = _export_to_file(repository, Path(output), session_ids, update, filters, decrypt)
    report = {"namespace": store.namespace, "output": output, "decrypted": decrypt, **summary}
    to_stderr = output == "-"
    if as_json:
        click.echo(json.dumps(report, indent=2), err=to_stderr)
    else:
        where = "stdout" if to_stderr else output
        click.echo(
            f"{store.namespace} -> {where}: {summary['exported']} sessions, {summary['messages']} messages",
            err=to_stderr,
        )


def _export(
    repository: Any,
    out: IO[str],
    session_ids: tuple[str, ...],
    update: Any,
    filters: dict[str, Any],
    decrypt: bool = False,
) -> dict[str, Any]:
    return export_sessions(
        repository, out, session_ids=list(session_ids) or None, on_progress=update, decrypt=decrypt, **filters
    )


def _export_to_file(
    repository: Any,
    path: Path,
    session_ids: tuple[str, ...],
    update: Any,
    filters: dict[str, Any],
    decrypt: bool = False,
) -> dict[str, Any]:
    """Export into ``<path>.partial`` and rename it to ``path`` once complete (removed on failure)."""
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            summary = _export(repository, out, session_ids, update, filters, decrypt)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return summary


# ----------------------------------------------------------------- import


@sessions.command(name="import")
@click.argument("file", metavar="FILE")
@click.option(
    "--on-conflict",
    type=click.Choice(ON_CONFLICT),
    default="skip",
    show_default=True,
    help="For a session that already exists: skip it, replace it, or report it as failed.",
)
@store_options
@output_options
def import_command(file: str, on_conflict: str, store: Store, as_json: bool) -> None:
    """Import sessions exported by 'sessions export' (FILE, or - for stdin).

    Messages go where this collection's layout rules put them. Safe to interrupt and run again:
    a session becomes visible only once all its messages are written. Exits 1 if any session
    failed (the others are imported).

    \b
    Examples:
      mongodb-session-manager sessions import old.jsonl --database archive
      mongodb-session-manager sessions import backup.jsonl --on-conflict replace
      cat s-1.jsonl | mongodb-session-manager sessions import - --json
    """
    draw = not as_json and sys.stderr.isatty()
    with contextlib.ExitStack() as stack:
        if file == "-":
            stream: IO[str] = sys.stdin
            total = None
        else:
            try:
                stream = stack.enter_context(open(file, encoding="utf-8"))
            except OSError as error:
                raise CommandError(f"cannot read {file}: {error.strerror}") from error
            total = os.fstat(stream.fileno()).st_size
        repository = stack.enter_context(store.repository())
        update = stack.enter_context(progress_callback(draw, "Importing"))
        summary = import_sessions(repository, _reporting_lines(stream, total, update), on_conflict=on_conflict)
    report = {"namespace": store.namespace, "on_conflict": on_conflict, **summary}
    if as_json:
        emit_json(report)
    else:
        click.echo(
            f"{file} -> {store.namespace}: {summary['read']} read, {summary['imported']} imported, "
            f"{summary['replaced']} replaced, {summary['skipped']} skipped, {summary['failed']} failed"
        )
        for failure in summary["failures"]:
            where = f"line {failure['line']}" + (f" ({failure['session_id']})" if failure["session_id"] else "")
            click.echo(f"  failed {where}: {failure['error']}", err=True)
    if summary["failed"]:
        click.get_current_context().exit(1)


def _reporting_lines(stream: IO[str], total: int | None, update: Callable[[int, int | None], None]) -> Iterator[str]:
    """Yield the lines of ``stream``, reporting the characters read so far after each."""
    done = 0
    for line in stream:
        yield line
        done += len(line)
        update(min(done, total) if total else done, total)


# ----------------------------------------------------------------- delete


@sessions.command()
@click.argument("session_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@store_options
@output_options
def delete(session_ids: tuple[str, ...], yes: bool, store: Store, as_json: bool) -> None:
    """Delete sessions with all their agents, messages and files.

    Every session must exist, or nothing is deleted. Asks for confirmation on a terminal; pass
    --yes in scripts (without a terminal, --yes is required).

    \b
    Examples:
      mongodb-session-manager sessions delete s-1
      mongodb-session-manager sessions delete s-1 s-2 --yes --json
    """
    ids = list(dict.fromkeys(session_ids))
    with store.repository() as repository:
        unknown = [session_id for session_id in ids if repository.read_session(session_id) is None]
        if unknown:
            raise CommandError(f"unknown session(s) in {store.namespace}: {', '.join(unknown)}; nothing was deleted")
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("refusing to delete without --yes when stdin is not a terminal")
            click.confirm(f"Delete {len(ids)} session(s) from {store.namespace}: {', '.join(ids)}?", abort=True)
        for session_id in ids:
            repository.delete_session(session_id)
    if as_json:
        emit_json({"namespace": store.namespace, "deleted": ids})
    else:
        click.echo(f"deleted {len(ids)} session(s) from {store.namespace}: {', '.join(ids)}")


# ----------------------------------------------------------------- erase


@sessions.command()
@click.argument("session_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@store_options
@output_options
def erase(session_ids: tuple[str, ...], yes: bool, store: Store, as_json: bool) -> None:
    """Erase encrypted sessions' data keys: their encrypted fields become unreadable for good.

    Deletes each session's data keys from the key vault (--key-vault; no master key needed), so
    its ciphertext can no longer be decrypted anywhere: the collections, exports and backups.
    The session stays listed with its clear fields (ids, dates, counts); 'sessions delete'
    removes it. A session that was deleted already, or never encrypted, is accepted (its keys
    are erased if any are left). Values of --deterministic-field fields, whose keys all sessions
    share, are removed from the session. Asks for confirmation on a terminal; pass --yes in
    scripts (without a terminal, --yes is required). Processes that read the session in the
    last minute may still hold its key in their cache for that long.

    \b
    Examples:
      mongodb-session-manager sessions erase s-1
      mongodb-session-manager sessions erase s-1 s-2 --key-vault encryption.__keyVault --yes --json
    """
    ids = list(dict.fromkeys(session_ids))
    with store.repository(key_vault_only=True) as repository:
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("refusing to erase keys without --yes when stdin is not a terminal")
            click.confirm(
                f"Erase the data keys of {len(ids)} session(s) in {store.key_vault}: {', '.join(ids)}? "
                "Their encrypted fields become unreadable for good (backups included)",
                abort=True,
            )
        erased = {session_id: repository.erase_session_keys(session_id) for session_id in ids}
    if as_json:
        emit_json({"namespace": store.namespace, "key_vault": store.key_vault, "keys_deleted": erased})
        return
    for session_id, count in erased.items():
        note = "" if count else " (none left: already erased, or never encrypted)"
        click.echo(f"{session_id}: {count} data key(s) deleted from {store.key_vault}{note}")


@contextlib.contextmanager
def _unreadable(store: Store, session_id: str) -> Iterator[None]:
    """Turn a failure to decrypt a session into one line saying why and what to do."""
    try:
        yield
    except SessionKeyErasedError as error:
        raise CommandError(
            f"session {session_id!r} cannot be decrypted: its data key {session_key_alt_name(session_id)!r} is not "
            f"in the key vault {store.key_vault} (erased with 'sessions erase', or the wrong --key-vault)"
        ) from error
    except EncryptionKeyError as error:
        if store.encrypted:
            raise
        raise CommandError(
            f"session {session_id!r} is encrypted: give its master key with --local-key-file (and --key-vault)"
        ) from error


# ----------------------------------------------------------------- prune


@sessions.command()
@click.argument("session_id", required=False)
@click.option("--agent", "agent_id", metavar="AGENT", help="The agent whose oldest messages go.")
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N", help="How many of its newest messages stay.")
@click.option("--orphans", is_flag=True, help="Instead: delete messages and files whose session no longer exists.")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=ORPHAN_GRACE.total_seconds() / 60,
    show_default=True,
    metavar="MINUTES",
    help="With --orphans: only messages stored at least this long ago.",
)
@store_options
@output_options
def prune(
    session_id: str | None,
    agent_id: str | None,
    keep_last: int | None,
    orphans: bool,
    older_than: float,
    store: Store,
    as_json: bool,
) -> None:
    """Drop an agent's oldest messages, or sweep orphaned messages.

    'prune ID --agent A --keep-last N' keeps agent A's N newest messages; the agent resumes as
    before minus the dropped ones. 'prune --orphans' deletes the message documents and GridFS
    files of sessions that no longer exist (expired by the TTL index, for example): schedule it.

    \b
    Examples:
      mongodb-session-manager sessions prune s-1 --agent assistant --keep-last 50
      mongodb-session-manager sessions prune --orphans --json
    """
    if orphans:
        if session_id or agent_id or keep_last is not None:
            raise click.UsageError("--orphans takes no session id, --agent or --keep-last")
        with store.repository() as repository:
            removed = repository.delete_orphaned_messages(older_than=timedelta(minutes=older_than))
        report: dict[str, Any] = {"namespace": store.namespace, "orphans": True, **removed}
        text = (
            f"{store.namespace}: {removed['messages']} messages and {removed['files']} files of "
            f"{removed['sessions']} deleted session(s) removed"
        )
    else:
        if not session_id or not agent_id or keep_last is None:
            raise click.UsageError("give a session id, --agent and --keep-last (or --orphans)")
        with store.repository() as repository:
            if repository.read_session(session_id) is None:
                raise CommandError(f"unknown session {session_id!r} in {store.namespace}")
            deleted = repository.prune_messages(session_id, agent_id, keep_last=keep_last)
        report = {"namespace": store.namespace, "session_id": session_id, "agent_id": agent_id, "deleted": deleted}
        text = f"{session_id}/{agent_id}: {deleted} message(s) deleted, the {keep_last} newest kept"
    if as_json:
        emit_json(report)
    else:
        click.echo(text)


# ----------------------------------------------------------------- helpers


@contextlib.contextmanager
def progress_callback(enabled: bool, label: str) -> Iterator[Callable[[int, int | None], None]]:
    """Yield ``update(done, total)``: a bar when ``total`` is known, a running count when it is None."""
    counted = False
    with progress(enabled, label) as bar:

        def update(done: int, total: int | None) -> None:
            nonlocal counted
            if not enabled:
                return
            if total:
                bar(done, total)
            else:
                counted = True
                click.echo(f"\r{label}: {done}", nl=False, err=True)

        try:
            yield update
        finally:
            if counted:
                click.echo(err=True)


def _plain(value: Any) -> Any:
    """``value`` with dates as ISO 8601 strings and bytes as base64, for JSON output."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _when(value: Any) -> str:
    """A date for the table: ``2025-01-31 12:00:00`` (UTC), or ``-``."""
    if not isinstance(value, datetime):
        return "-"
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
