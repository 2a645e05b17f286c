"""Query-plan plumbing shared by the tests that explain what a command costs: full commands and plan stages."""

import copy
from typing import Any

from pymongo import monitoring

HANDSHAKE = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions"})
"""Commands the driver sends on its own; never part of what a test measures."""


class Commands(monitoring.CommandListener):
    """Every command sent, in full (``CommandLog`` keeps only the names), minus the driver's own."""

    def __init__(self, ignore: frozenset[str] = frozenset()) -> None:
        self.sent: list[dict[str, Any]] = []
        self.ignored = HANDSHAKE | ignore

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.ignored:
            self.sent.append(copy.deepcopy(dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def stages(plan: Any) -> list[dict[str, Any]]:
    """Every plan stage in an explain reply, however the server nests them."""
    found = []
    if isinstance(plan, dict):
        if "stage" in plan:
            found.append(plan)
        for value in plan.values():
            found += stages(value)
    elif isinstance(plan, list):
        for value in plan:
            found += stages(value)
    return found
