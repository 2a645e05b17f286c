"""Snapshot sessions: what strands' ``SnapshotSessionManager`` stored with the library's ``MongoDBStorage``.

They are read through ``MongoDBStorage`` (compression and GridFS are its business), never with raw queries:
listing is one ``list`` of the keys under ``session/`` (an ``_id`` range scan, keys only, no blob read);
a session's detail lists its keys and reads each agent's ``snapshot_latest.json``. Key layout (strands):
``session/<session_id>/scopes/agent/<agent_id>/snapshots/snapshot_latest.json`` and
``.../snapshots/immutable_history/snapshot_<id>.json`` for checkpoints. Snapshot sessions are read-only
and open with the backend password only (they have no per-session viewer password). Encrypted snapshots are
decrypted with the viewer's key access; an agent whose snapshot cannot be decrypted is shown with one
``encrypted`` block instead of its messages.
"""

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from strands.storage.storage import _normalize_prefix
from strands.types.exceptions import StorageError
from strands.types.session import decode_bytes_values

from mongodb_session_manager import EncryptionKeyError, EncryptionSettings, MongoDBStorage, SessionKeyErasedError
from web_common.values import iso_utc, parse_timestamp, plain_json

from .encryption import KEY_ERASED, NO_KEY, Unreadable
from .timeline import convert_block

__all__ = ["SnapshotSessions", "SnapshotSummary"]

logger = logging.getLogger(__name__)

_CACHE_SECONDS = 30.0
_SESSIONS_PREFIX = "session/"
_AGENT_KEY = re.compile(
    r"\Asession/(?P<session>[^/]+)/scopes/agent/(?P<agent>[^/]+)/snapshots/"
    r"(?:(?P<latest>snapshot_latest\.json)|immutable_history/snapshot_[\w-]+\.json)\Z"
)


@dataclass
class SnapshotSummary:
    """One snapshot session as its keys describe it (no snapshot read)."""

    session_id: str
    agent_ids: list[str] = field(default_factory=list)
    checkpoint_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The API form (``models.SnapshotSummary``)."""
        return {"session_id": self.session_id, "agent_ids": self.agent_ids, "checkpoint_count": self.checkpoint_count}


def summarize(keys: Sequence[str]) -> list[SnapshotSummary]:
    """Group storage keys (sorted, as ``MongoDBStorage.list`` returns them) into sessions with a latest snapshot.

    An agent counts once it has a ``snapshot_latest.json``; a session with none is left out.
    """
    sessions: dict[str, SnapshotSummary] = {}
    for key in keys:
        match = _AGENT_KEY.match(key)
        if match is None:
            continue
        summary = sessions.setdefault(match["session"], SnapshotSummary(match["session"]))
        if match["latest"]:
            summary.agent_ids.append(match["agent"])
        else:
            summary.checkpoint_count += 1
    return [summary for summary in sessions.values() if summary.agent_ids]


def is_addressable(session_id: str) -> bool:
    """Whether ``session_id`` can be a snapshot session's id: one key segment that storage keys keep as it is."""
    if not session_id or "/" in session_id or "\\" in session_id or session_id in {".", ".."}:
        return False
    prefix = f"{_SESSIONS_PREFIX}{session_id}/"
    try:
        return _normalize_prefix(prefix) == prefix
    except (StorageError, ValueError):
        return False


class SnapshotSessions:
    """The snapshot sessions of one storage collection, read through ``MongoDBStorage`` on the viewer's client."""

    def __init__(
        self,
        client: AsyncMongoClient[Any],
        database_name: str,
        collection_name: str,
        encryption: EncryptionSettings | None = None,
    ) -> None:
        """Prepare the reads (nothing is sent; the client is borrowed, never closed here).

        Args:
            client: The viewer's client.
            database_name: The database of the storage collection.
            collection_name: The storage collection.
            encryption: The viewer's key access, to decrypt encrypted snapshots (None: they are shown as such).
        """
        self._client = client
        self.database_name = database_name
        self.collection_name = collection_name
        self.storage = MongoDBStorage(
            client=client, database_name=database_name, collection_name=collection_name, encryption=encryption
        )
        self._exists = False
        self._checked_at: float | None = None

    @property
    def namespace(self) -> str:
        """``<database>.<collection>`` of the storage collection."""
        return f"{self.database_name}.{self.collection_name}"

    async def available(self, cached: bool = False) -> bool:
        """Whether the storage collection exists (one ``listCollections`` filtered by name).

        Args:
            cached: Accept an answer up to 30 s old (the collections listing, which is cached as long).
        """
        if cached and self._checked_at is not None and time.monotonic() - self._checked_at <= _CACHE_SECONDS:
            return self._exists
        names = await self._client[self.database_name].list_collection_names(filter={"name": self.collection_name})
        self._exists, self._checked_at = self.collection_name in names, time.monotonic()
        return self._exists

    async def search(self, session_id: str | None, offset: int, limit: int) -> tuple[int, list[SnapshotSummary]]:
        """One page of snapshot sessions in id order, and how many match (a literal, case-insensitive id part)."""
        summaries = summarize(await self.storage.list(_SESSIONS_PREFIX))
        if session_id:
            needle = session_id.casefold()
            summaries = [summary for summary in summaries if needle in summary.session_id.casefold()]
        logger.debug("total=<%d> | offset=<%d> | limit=<%d> | listed snapshot sessions", len(summaries), offset, limit)
        return len(summaries), summaries[offset : offset + limit]

    async def detail(self, session_id: str) -> dict[str, Any] | None:
        """The latest snapshot of each agent of the session as a read-only timeline; None when there is none."""
        if not is_addressable(session_id):
            return None
        found = summarize(await self.storage.list(f"{_SESSIONS_PREFIX}{session_id}/"))
        if not found:
            return None
        summary = found[0]
        reads = (self._read(_latest_key(session_id, agent)) for agent in summary.agent_ids)
        blobs = await asyncio.gather(*reads)
        snapshots = {
            agent: blob if isinstance(blob, Unreadable) else _decode(blob)
            for agent, blob in zip(summary.agent_ids, blobs, strict=True)
            if blob
        }
        logger.debug("session_id=<%s> | agents=<%s> | read snapshot session", session_id, list(snapshots))
        return snapshot_detail(summary, snapshots)

    async def _read(self, key: str) -> bytes | Unreadable | None:
        """A blob, or an `Unreadable` when it is encrypted and the viewer cannot decrypt it.

        Raises:
            StorageError: The read failed for any other reason.
        """
        try:
            return await self.storage.read(key)
        except StorageError as error:
            cause = error.__cause__
            if isinstance(cause, SessionKeyErasedError):
                return Unreadable(KEY_ERASED)
            if isinstance(cause, EncryptionKeyError):
                return Unreadable(NO_KEY)
            raise


def _latest_key(session_id: str, agent_id: str) -> str:
    return f"{_SESSIONS_PREFIX}{session_id}/scopes/agent/{agent_id}/snapshots/snapshot_latest.json"


def _decode(blob: bytes) -> dict[str, Any]:
    """A snapshot's JSON (strands' format: scope, schema_version, created_at, data, app_data), bytes decoded."""
    try:
        decoded = decode_bytes_values(json.loads(blob))
    except (ValueError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def snapshot_detail(
    summary: SnapshotSummary, snapshots: Mapping[str, Mapping[str, Any] | Unreadable]
) -> dict[str, Any]:
    """Build the API view of one snapshot session (``models.SnapshotDetail``): agents, state, messages in order.

    Snapshot messages carry no timestamps: each agent's messages follow one another, agent by agent. An agent
    whose snapshot the viewer cannot decrypt shows the marker as its system prompt and one ``encrypted`` block.
    """
    agents: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    for agent_id, snapshot in snapshots.items():
        if isinstance(snapshot, Unreadable):
            agents.append(_unreadable_agent(agent_id, snapshot))
            timeline.append({**_message_item(agent_id, 0, {}), "blocks": [{"kind": "encrypted", **snapshot.as_api()}]})
            continue
        stored = snapshot.get("data")
        data: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
        messages = [message for message in data.get("messages") or [] if isinstance(message, Mapping)]
        created_at = _iso(snapshot.get("created_at"))
        state = data.get("state")
        agents.append(
            {
                "agent_id": agent_id,
                "snapshot_created_at": created_at,
                "message_count": len(messages),
                "system_prompt": data.get("system_prompt") if isinstance(data.get("system_prompt"), str) else None,
                "state": plain_json(state) if isinstance(state, Mapping) else {},
            }
        )
        timeline.extend(_message_item(agent_id, index, message) for index, message in enumerate(messages))
    taken = [agent["snapshot_created_at"] for agent in agents if agent["snapshot_created_at"]]
    return {
        "session_id": summary.session_id,
        "snapshot_created_at": max(taken) if taken else None,
        "checkpoint_count": summary.checkpoint_count,
        "agents": agents,
        "timeline": timeline,
    }


def _unreadable_agent(agent_id: str, snapshot: Unreadable) -> dict[str, Any]:
    """An agent whose latest snapshot is encrypted and cannot be decrypted: nothing of it is known but its id."""
    return {
        "agent_id": agent_id,
        "snapshot_created_at": None,
        "message_count": 0,
        "system_prompt": snapshot.as_api(),
        "state": {},
    }


def _message_item(agent_id: str, index: int, message: Mapping[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    content = content if isinstance(content, list) else []
    return {
        "type": "message",
        "timestamp": None,
        "agent_id": agent_id,
        "message_id": index,
        "role": str(message.get("role", "")),
        "redacted": False,
        "metrics": None,
        "blocks": [convert_block(block) for block in content if isinstance(block, Mapping)],
    }


def _iso(value: Any) -> str | None:
    moment = parse_timestamp(value)
    return iso_utc(moment) if moment else None
