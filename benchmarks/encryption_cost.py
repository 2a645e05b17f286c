"""Client CPU of encryption per message: ``uv run --group dev python -m benchmarks.encryption_cost [--messages 1000]``.

Appends the benchmark conversation's messages one by one (``create_message``, as the manager does after each
message) and resumes them (``list_messages``), once with a clear repository and once with
``encryption=EncryptionSettings.local(...)``, on the same MongoDB (``MONGODB_URI``, else an embedded server in
its own process), in the collection layout by default (``--layout``: each append is one insert whose server cost
does not grow with the history). It prints the CPU time of the calling thread per message (``time.thread_time``:
encryption runs there; pymongo's monitor threads are left out), in microseconds, for both, with the extra cost of
encryption and the ratio; the cost of the cipher alone (encrypting and decrypting the stored elements, no I/O);
and the round trips of both, counted with command monitoring. Encryption must add none: the run fails if the
encrypted pass sent more commands than the clear one, or asked the key vault more than once per session (the
session's data key is fetched once per process, then cached by libmongocrypt).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: ``python benchmarks/encryption_cost.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from pymongo import MongoClient, monitoring
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from benchmarks.conversation import AGENT_ID, history
from benchmarks.servers import mongodb_server
from benchmarks.stores import stored_elements
from mongodb_session_manager import EncryptionSettings, MongoDBSessionRepository
from mongodb_session_manager.encryption import FieldCipher, generate_local_key, sealer_for
from mongodb_session_manager.testing import CommandLog

__all__ = ["main", "measure"]

KEY_VAULT = "keyvault"


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    """Client CPU seconds of ``work()`` (garbage collected first) and what it returned."""
    gc.collect()
    started = time.thread_time()
    result = work()
    return time.thread_time() - started, result


class _KeyVaultCounter(monitoring.CommandListener):
    """Counts the commands a client sends to the key vault collection."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Count a command on the key vault."""
        if event.command.get(event.command_name) == KEY_VAULT:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


class _Run:
    """One repository (clear or encrypted) on its own client, with its command log and key-vault counter."""

    def __init__(self, uri: str, database: str, encryption: EncryptionSettings | None, layout: str) -> None:
        self.log = CommandLog(count_bytes=False)
        self.vault = _KeyVaultCounter()
        self.client: MongoClient[Any] = MongoClient(uri, tz_aware=True, event_listeners=[self.log, self.vault])
        self.repository = MongoDBSessionRepository(
            client=self.client,
            database_name=database,
            collection_name="sessions",
            encryption=encryption,
            message_storage=layout,
        )

    def new_session(self) -> str:
        session_id = f"bench-{uuid.uuid4().hex[:10]}"
        self.repository.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        self.repository.create_agent(
            session_id, SessionAgent(agent_id=AGENT_ID, state={}, conversation_manager_state={})
        )
        return session_id

    def append(self, session_id: str, messages: list[SessionMessage]) -> None:
        for message in messages:
            self.repository.create_message(session_id, AGENT_ID, message)

    def resume(self, session_id: str) -> list[SessionMessage]:
        return self.repository.list_messages(session_id, AGENT_ID)

    def close(self) -> None:
        self.client.close()


def _time_pass(run: _Run, messages: list[SessionMessage]) -> dict[str, Any]:
    """One timed pass: append every message to a new session, then resume it (CPU and round trips of each)."""
    session_id = run.new_session()
    result: dict[str, Any] = {}
    for step, work in (
        ("append", lambda: run.append(session_id, messages)),
        ("resume", lambda: run.resume(session_id)),
    ):
        run.log.clear()
        run.vault.count = 0
        result[f"{step}_s"], returned = _cpu(work)
        result[f"{step}_vault"] = run.vault.count
        result[f"{step}_trips"] = run.log.round_trips - run.vault.count
    if returned != messages:
        raise AssertionError("the resumed messages differ from the appended ones")
    return result


def _cipher_pass(cipher: FieldCipher, key_id: Any, elements: list[dict[str, Any]]) -> tuple[float, float]:
    """CPU seconds to encrypt every element as ``create_message`` does, then to decrypt them all (no I/O)."""
    seal_s, sealed = _cpu(lambda: [cipher.seal_element("cipher", key_id, element) for element in elements])
    open_s, opened = _cpu(lambda: [cipher.open_element("cipher", element) for element in sealed])
    if opened != elements:
        raise AssertionError("the cipher did not give back the elements it encrypted")
    return seal_s, open_s


def measure(uri: str, messages: int = 1000, repeats: int = 3, layout: str = "collection") -> dict[str, Any]:
    """Append and resume ``messages`` messages clear and encrypted; return CPU per message, ratios, round trips."""
    conversation = [SessionMessage.from_message(message, index) for index, message in enumerate(history(messages))]
    database = f"bench_encryption_{uuid.uuid4().hex[:8]}"
    settings = EncryptionSettings.local(generate_local_key(), key_vault_namespace=f"{database}.{KEY_VAULT}")
    runs = {"clear": _Run(uri, database, None, layout), "encrypted": _Run(uri, database, settings, layout)}
    try:
        for run in runs.values():  # warm-up: connections, indexes, the key vault's index
            _time_pass(run, conversation[:4])
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in runs.items():  # interleaved: a noisy neighbour hits both alike
                samples[name].append(_time_pass(run, conversation))
        cipher = FieldCipher(sealer_for(runs["encrypted"].client, settings))
        key_id, _ = cipher.sealer.create_key("session:bench-cipher", "benchmark")  # type: ignore[union-attr]
        elements = stored_elements(history(messages))
        _cipher_pass(cipher, key_id, elements[:4])  # fetches the key once
        cipher_samples = [_cipher_pass(cipher, key_id, elements) for _ in range(repeats)]
    finally:
        for run in runs.values():
            run.close()
        with MongoClient(uri) as admin:
            admin.drop_database(database)
    return {"layout": layout, **_result(messages, repeats, samples, cipher_samples)}


def _result(
    messages: int,
    repeats: int,
    samples: dict[str, list[dict[str, Any]]],
    cipher_samples: list[tuple[float, float]],
) -> dict[str, Any]:
    """Medians per message (µs), extra cost and ratio of each step, round trips; checks that none were added.

    Raises:
        AssertionError: Encryption sent more commands than the clear run (the key vault aside), or asked the key
            vault more than once per session (the fetch of its new data key, on its first append).
    """
    result: dict[str, Any] = {"messages": messages, "repeats": repeats}
    for step in ("append", "resume"):
        clear = _median([sample[f"{step}_s"] for sample in samples["clear"]]) / messages * 1e6
        encrypted = _median([sample[f"{step}_s"] for sample in samples["encrypted"]]) / messages * 1e6
        trips = {name: max(sample[f"{step}_trips"] for sample in runs) for name, runs in samples.items()}
        vault = max(sample[f"{step}_vault"] for sample in samples["encrypted"])
        result[step] = {
            "clear_us": round(clear, 1),
            "encrypted_us": round(encrypted, 1),
            "extra_us": round(encrypted - clear, 1),
            "ratio": round(encrypted / clear, 2) if clear else None,
            "round_trips_clear": trips["clear"],
            "round_trips_encrypted": trips["encrypted"],
            "key_vault_commands": vault,
        }
        if trips["encrypted"] != trips["clear"] or vault > (1 if step == "append" else 0):
            raise AssertionError(f"encryption changed the round trips of {step}: {trips}, key vault {vault}")
    result["cipher"] = {
        "encrypt_us": round(_median([seal for seal, _ in cipher_samples]) / messages * 1e6, 1),
        "decrypt_us": round(_median([opened for _, opened in cipher_samples]) / messages * 1e6, 1),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure and print the CPU per message of each step, clear and encrypted, and the round trips."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encryption_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages appended and resumed (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the median is shown (default 3)")
    parser.add_argument(
        "--layout",
        choices=["collection", "embedded"],
        default="collection",
        help="message layout (default collection: an append's server cost does not grow with the history)",
    )
    args = parser.parse_args(argv)
    if args.messages < 4 or args.messages % 2 or args.repeats < 1:
        parser.error("--messages must be an even number >= 4 and --repeats >= 1")
    with mongodb_server() as server:
        print(f"MongoDB: {server.description}")
        result = measure(server.uri, args.messages, args.repeats, args.layout)
    count = f"{result['messages']:,}"
    print(
        f"client CPU per message (calling thread), {count} messages of the benchmark conversation, "
        f"{result['layout']} layout (median of {args.repeats}):"
    )
    print(f"  {'':<34}{'clear':>9}{'encrypted':>11}{'extra':>9}{'ratio':>8}")
    for step, label in (("append", "append (create_message)"), ("resume", "resume (list_messages)")):
        row = result[step]
        print(
            f"  {label:<34}{row['clear_us']:>7.1f}us{row['encrypted_us']:>9.1f}us{row['extra_us']:>7.1f}us"
            f"{row['ratio']:>7.2f}x"
        )
    cipher = result["cipher"]
    print(f"  cipher alone: encrypt {cipher['encrypt_us']:.1f}us, decrypt {cipher['decrypt_us']:.1f}us per message")
    append, resume = result["append"], result["resume"]
    print(
        f"round trips for {count} messages: append {append['round_trips_clear']} clear / "
        f"{append['round_trips_encrypted']} encrypted (+{append['key_vault_commands']} on the key vault); resume "
        f"{resume['round_trips_clear']} / {resume['round_trips_encrypted']} (+{resume['key_vault_commands']}): "
        "the data key is fetched once per session and process, then cached"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
