"""``mongodb-session-manager migrate``: move existing sessions between message layouts."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import Store, emit_json, output_options, progress, store_options

__all__ = ["migrate"]


@click.command()
@click.option(
    "--to",
    "layout",
    required=True,
    type=click.Choice(["collection", "embedded"]),
    help="Target message layout.",
)
@click.option(
    "--session",
    "session_ids",
    multiple=True,
    metavar="ID",
    help="Migrate only this session (repeat the option for several). Default: every session.",
)
@click.option("--dry-run", is_flag=True, help="Report what would move; change nothing.")
@store_options
@output_options
def migrate(layout: str, session_ids: tuple[str, ...], dry_run: bool, store: Store, as_json: bool) -> None:
    """Move sessions' messages between layouts, session by session.

    'embedded' keeps an agent's messages in the session document; 'collection' stores one
    document per message in the sibling collection '<collection>.messages'. Safe to interrupt
    and run again: sessions already in place are skipped. Exits 1 if any session failed.

    \b
    Examples:
      mongodb-session-manager migrate --to collection --dry-run
      mongodb-session-manager migrate --to collection --database app --collection sessions
      mongodb-session-manager migrate --to embedded --session s-1 --session s-2 --json
    """
    with store.repository() as repository, progress(not as_json and sys.stdout.isatty(), "Migrating") as update:
        summary = repository.migrate_sessions(
            to=layout, dry_run=dry_run, on_progress=update, session_ids=list(session_ids) or None
        )
    report = {"namespace": store.namespace, **summary}
    if as_json:
        emit_json(report)
    else:
        _print_summary(report)
    if report["failed"]:
        click.get_current_context().exit(1)


def _print_summary(report: dict[str, Any]) -> None:
    """Print the migration summary for people, then one line per failed session on stderr."""
    verb = "would migrate" if report["dry_run"] else "migrated"
    click.echo(
        f"{report['namespace']} -> {report['to']}: {report['seen']} sessions seen, {report['migrated']} {verb}, "
        f"{report['already_in_place']} already in place, {report['failed']} failed"
        + (" (dry run: nothing changed)" if report["dry_run"] else "")
    )
    for failure in report["failures"]:
        click.echo(f"  failed {failure['session_id']}: {failure['error']}", err=True)
