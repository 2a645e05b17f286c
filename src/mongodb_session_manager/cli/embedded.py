"""``mongodb-session-manager embedded status|stop``: the shared embedded development server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..embedded import DATA_DIR_ENV, embedded_data_dir, embedded_status, stop_embedded_server
from .common import CommandError, emit_json, output_options

__all__ = ["embedded"]

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(command: F) -> F:
    """Add ``--data-dir`` (default: ``MONGODB_SESSION_MANAGER_DATA_DIR``, else the per-user directory)."""
    return click.option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        show_envvar=True,
        type=click.Path(file_okay=False),
        metavar="DIR",
        help="Data directory of the server. Default: ~/.local/share/mongodb-session-manager ($XDG_DATA_HOME).",
    )(command)


@click.group()
def embedded() -> None:
    """Status and stop of the embedded development MongoDB server.

    With no MONGODB_URI, the library, the examples, the playground and the Session Viewer use one
    background server per data directory; it outlives the program that started it and stops after
    MONGODB_SESSION_MANAGER_IDLE_TIMEOUT seconds without clients (default 1800, 0 = never).

    \b
    Examples:
      mongodb-session-manager embedded status
      mongodb-session-manager embedded stop
    """


@embedded.command()
@data_dir_option
@output_options
def status(data_dir: str | None, as_json: bool) -> None:
    """Show where the server runs, its pid and who is connected.

    Prints the state (running, stopped, not answering), its address, pid, data directory, log
    file, idle stop, and one line per connected process (pid and command line when visible).
    Exits 1 when a server process holds the data directory but does not answer.

    \b
    Examples:
      mongodb-session-manager embedded status
      mongodb-session-manager embedded status --json --data-dir /tmp/dev-data
    """
    report = embedded_status(data_dir)
    if as_json:
        emit_json(report)
    else:
        _print_status(report)
    if report["state"] == "not answering":
        raise CommandError(
            f"the embedded server (pid {report['pid']}) holds {report['data_dir']} but does not answer; "
            "stop it with 'mongodb-session-manager embedded stop'"
        )


@embedded.command()
@data_dir_option
@click.option("--timeout", default=10.0, show_default=True, metavar="SECONDS", help="How long to wait for it.")
@output_options
def stop(data_dir: str | None, timeout: float, as_json: bool) -> None:
    """Stop the server; acknowledged writes are kept.

    Sends it SIGTERM and waits until it has exited; does nothing if none runs. The next program
    that needs it starts it again.

    \b
    Example:
      mongodb-session-manager embedded stop
    """
    pid = embedded_status(data_dir)["pid"]
    try:
        stopped = stop_embedded_server(data_dir, timeout=timeout)
    except TimeoutError as error:
        raise CommandError(str(error)) from error
    report = {"stopped": stopped, "pid": pid if stopped else None, "data_dir": str(embedded_data_dir(data_dir))}
    if as_json:
        emit_json(report)
    elif stopped:
        click.echo(f"stopped the embedded MongoDB server (pid {pid}, data in {report['data_dir']})")
    else:
        click.echo(f"no embedded MongoDB server was running (data directory {report['data_dir']})")


def _print_status(report: dict[str, Any]) -> None:
    """Print the status for people: the state and address, then one line per connected process."""
    if report["state"] == "stopped":
        click.echo(f"stopped (data directory {report['data_dir']})")
        return
    click.echo(f"{report['state']}: {report['uri'] or '-'} (pid {report['pid']}, since {report['started_at'] or '-'})")
    click.echo(f"data directory: {report['data_dir']}")
    click.echo(f"log: {report['log_file']}")
    idle = report["idle_timeout_s"]
    if idle is not None:
        click.echo(f"idle stop: {_duration(idle)} without clients" if idle else "idle stop: never")
    if report["state"] != "running":
        return
    clients = _by_process(report["connections"])
    click.echo(f"clients: {len(report['connections'])} connection(s) from {len(clients)} process(es)")
    for (pid, process), connections in clients.items():
        details = sorted({value for c in connections for value in (c["app_name"], c["driver"]) if value})
        click.echo(
            f"  pid {pid or '?'}  {process or connections[0]['client']}  "
            f"({len(connections)} connection(s){', ' if details else ''}{', '.join(details)})"
        )


def _duration(seconds: float) -> str:
    """Return ``"30 min"`` for 1800 s, ``"45 s"`` for 45 s."""
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"


def _by_process(connections: list[dict[str, Any]]) -> dict[tuple[Any, Any], list[dict[str, Any]]]:
    """Group connections by the process owning them (unknown owners: one group per client address)."""
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for connection in connections:
        key = (connection["pid"], connection["process"]) if connection["pid"] else (None, connection["client"])
        groups.setdefault(key, []).append(connection)
    return groups
