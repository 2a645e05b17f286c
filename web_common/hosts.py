"""Which ``Host`` names an app answers: the loopback names, the address it listens on, and the configured ones.

A browser sends the name it resolved as the ``Host`` header, so refusing unknown names stops a DNS-rebinding
page (a name of the attacker's that resolves to 127.0.0.1) from driving an app on the user's machine.
"""

import ipaddress
import re
from collections.abc import Iterable

__all__ = ["ANY_ADDRESSES", "LOOPBACK_HOSTS", "HostAllowList", "default_hosts", "parse_host_list", "request_host"]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Always allowed: the names of this machine."""

ANY_ADDRESSES = frozenset({"", "0.0.0.0", "::"})
"""Bind addresses that name no host (every interface): they add nothing to the allow-list."""

_NAME = re.compile(r"(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_PORT = re.compile(r"[0-9]{1,5}")


def _canonical_ip(value: str) -> str | None:
    """The canonical text of an IP address (``0:0::1`` -> ``::1``), or None when ``value`` is not one."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _pattern(entry: str) -> str:
    """Normalise one allow-list entry: lower case, no brackets around IPv6, no trailing dot.

    Raises:
        ValueError: The entry is not ``*``, a host name, ``*.<domain>`` or an IP address (a port is refused).
    """
    value = entry.strip().lower()
    if value == "*":
        return value
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if (address := _canonical_ip(value)) is not None:
        return address
    value = value.removesuffix(".")
    if not _NAME.fullmatch(value):
        hint = " (give host names without a port)" if ":" in value else ""
        raise ValueError(f"{entry.strip()!r} is not a host name, '*.<domain>', an IP address or '*'{hint}")
    return value


def parse_host_list(value: str) -> list[str]:
    """Split a comma-separated allow-list into normalised entries (empty items are skipped).

    Raises:
        ValueError: An entry is malformed (see `_pattern`).
    """
    return [_pattern(item) for item in value.split(",") if item.strip()]


def default_hosts(bound_host: str) -> list[str]:
    """The names allowed without configuration: the loopback names and ``bound_host`` (unless it is 0.0.0.0/::)."""
    hosts = list(LOOPBACK_HOSTS)
    if bound_host.strip() not in ANY_ADDRESSES:
        bound = _pattern(bound_host)
        if bound not in hosts:
            hosts.append(bound)
    return hosts


def request_host(header: str) -> str | None:
    """The host name of a ``Host`` header value (port and IPv6 brackets dropped), or None when it is malformed."""
    value = header.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or _canonical_ip(host) is None:
            return None
        port = rest.removeprefix(":") if rest else ""
        if rest and (not rest.startswith(":") or not _PORT.fullmatch(port)):
            return None
        return _canonical_ip(host)
    host, colon, port = value.partition(":")
    if colon and not _PORT.fullmatch(port):
        return None  # also an IPv6 address without brackets, which HTTP does not allow
    host = host.removesuffix(".")
    return host if host else None


class HostAllowList:
    """The ``Host`` names an app answers: exact names and addresses, ``*.<domain>`` subdomains, or ``*`` (any)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        """Keep ``patterns`` (normalised entries, see `parse_host_list`)."""
        self.patterns = tuple(dict.fromkeys(patterns))
        self.any = "*" in self.patterns
        self._exact = frozenset(p for p in self.patterns if not p.startswith("*"))
        self._suffixes = tuple(p[1:] for p in self.patterns if p.startswith("*."))

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header value (None: no header) may be answered."""
        if self.any:
            return True
        host = request_host(header) if header is not None else None
        if host is None:
            return False
        return host in self._exact or any(
            host.endswith(suffix) and len(host) > len(suffix) for suffix in self._suffixes
        )
