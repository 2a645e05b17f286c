"""The start-up of the apps' console scripts (``session-viewer``, ``playground``): check everything, then serve.

Every failure is one line on stderr, ``<program>: <what failed, where, what to do>``, and an exit status: 2 for
invalid settings, 1 for the rest (a missing extra, an unreachable MongoDB, a port in use); ``--debug`` or
``LOG_LEVEL=DEBUG`` shows the traceback instead. The checks themselves are the library's
(`mongodb_session_manager.startup`); this module is the glue the two apps share. It imports no web framework:
a missing extra is reported, not raised.
"""

import argparse
import importlib
import logging
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from mongodb_session_manager.startup import (
    StartupError,
    debug_requested,
    describe_uri,
    listening_socket,
    reachable_mongodb,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INVALID_SETTINGS",
    "Program",
    "StartupStopped",
    "configure_logging",
]

EXIT_FAILURE = 1
"""Exit status of a start that failed: a missing extra, an unreachable MongoDB, a port in use."""

EXIT_INVALID_SETTINGS = 2
"""Exit status of a start refused for its settings."""

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class StartupStopped(Exception):
    """The start stopped and its one line is printed; ``status`` is the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Program:
    """An app's console script: its name, and the settings a user can change when its start fails.

    Attributes:
        name: The command, which starts every line it prints (``session-viewer``).
        description: What ``--help`` says it is.
        extra: The package extra that brings its web stack (``viewer``).
        host_setting: The environment variable of the interface (``BACKEND_HOST``).
        port_setting: The environment variable of the port (``BACKEND_PORT``).
        default_port: The port it listens on by default (shown by ``--help``).
        settings_source: Where its settings come from, named after an invalid one.
        mongodb_hint: What to check when MongoDB does not answer; None: the library's hint.
    """

    name: str
    description: str
    extra: str
    host_setting: str
    port_setting: str
    default_port: int
    settings_source: str = "environment or .env"
    mongodb_hint: str | None = None

    def say(self, text: str) -> None:
        """Print ``<program>: <text>`` on stderr (stdout stays empty)."""
        print(f"{self.name}: {text}", file=sys.stderr)

    def run(self, argv: Sequence[str] | None, start: Callable[[argparse.Namespace, bool], None]) -> int:
        """Parse ``--host``, ``--port`` and ``--debug`` and call ``start(args, debug)``; return the exit status."""
        args = self._parser().parse_args(argv)
        try:
            start(args, args.debug or debug_requested())
        except StartupStopped as stopped:
            return stopped.status
        return 0

    @contextmanager
    def needs_extra(self, debug: bool) -> Iterator[None]:
        """Import uvicorn and what the block imports; a missing module stops with how to install the extra."""
        try:
            importlib.import_module("uvicorn")
            yield
        except ImportError as error:
            self.stop(
                error,
                f"the {self.extra} extra is not installed (no module {error.name!r}); run "
                f'"uv run --extra {self.extra} {self.name}" or pip install "mongodb-session-manager[{self.extra}]"',
                EXIT_FAILURE,
                debug,
            )

    def load_settings(self, settings_class: Callable[[], SettingsT], debug: bool) -> SettingsT:
        """Read the settings; invalid ones stop with each field and its problem on one line (status 2).

        ``ENV=production`` without ``MONGODB_URI`` stops too (status 2), before the embedded server starts.
        """
        try:
            settings = settings_class()
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
            line = f"invalid configuration: {problems} ({self.settings_source})"
            self.stop(error, line, EXIT_INVALID_SETTINGS, debug)
        from .settings import ProductionConfigurationError, WebSettings  # pydantic-settings: an app's extra

        if isinstance(settings, WebSettings):
            try:
                settings.check_production()
            except ProductionConfigurationError as error:
                self.stop(error, str(error), EXIT_INVALID_SETTINGS, debug)
        return settings

    def listen_and_reach_mongodb(
        self, host: str, port: int, mongodb_uri: str | None, timeout_ms: int, debug: bool
    ) -> tuple[socket.socket, str]:
        """Bind the listening socket, then check that MongoDB answers (the embedded server without a URI).

        Returns:
            The bound socket, for the web server, and the URI of the MongoDB that answered.
        """
        sock = None
        hint: dict[str, Any] = {"hint": self.mongodb_hint} if self.mongodb_hint else {}
        try:
            sock = listening_socket(host, port, hint=f"choose another with --port or {self.port_setting}")
            uri = reachable_mongodb(mongodb_uri, timeout_ms, **hint)
        except StartupError as error:
            if sock is not None:
                sock.close()
            self.stop(error, str(error), EXIT_FAILURE, debug)
        return sock, uri

    def use_mongodb(self, settings: SettingsT, uri: str) -> SettingsT:
        """Say which MongoDB the app uses (never its credentials) and return ``settings`` pointing at it."""
        if getattr(settings, "mongodb_uri", None):
            self.say(f"using MongoDB at {describe_uri(uri)}")
        else:
            self.say(
                f"no MONGODB_URI set; using the embedded development MongoDB server at {uri} "
                "(details: mongodb-session-manager embedded status)"
            )
        return settings.model_copy(update={"mongodb_uri": uri})

    def serve(self, app: Any, sock: socket.socket, log_level: str) -> None:
        """Serve ``app`` with uvicorn on the checked socket until stopped."""
        import uvicorn

        uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])

    def stop(self, error: BaseException, line: str, status: int, debug: bool) -> NoReturn:
        """Stop the start: ``error`` with its traceback when debugging, else ``line`` and ``status``."""
        if debug:
            raise error
        self.say(line)
        raise StartupStopped(status) from None

    def _parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=self.name, description=self.description)
        parser.add_argument("--host", help=f"interface to listen on (default: {self.host_setting}, 127.0.0.1)")
        parser.add_argument(
            "--port", type=int, help=f"port to listen on (default: {self.port_setting}, {self.default_port})"
        )
        parser.add_argument("--debug", action="store_true", help="show tracebacks on failure (also LOG_LEVEL=DEBUG)")
        return parser


def configure_logging(level: str) -> None:
    """Log ``level`` and above to stderr, with time, level and logger name."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
