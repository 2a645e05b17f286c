"""The measurements: per-turn write cost, resume cost, stateless requests, concurrency and the 16 MB limit.

Every figure is measured in one run, stores interleaved inside each repeat (so a noisy neighbour hits all of
them alike). Each size starts with a counting pass that is not timed: bytes are counted there (encoding BSON to
measure it costs CPU), then ``repeats`` timed passes give the medians. Round trips are counted in every pass.
"""

from __future__ import annotations

import copy
import gc
import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import bson
from strands import Agent
from strands.session.session_manager import SessionManager

from mongodb_session_manager import DocumentTooLargeError
from mongodb_session_manager import documents as docs
from mongodb_session_manager.pool import ConnectionCounter

from .conversation import (
    AGENT_ID,
    MESSAGES_PER_TURN,
    TOOL_PROMPT,
    history,
    make_agent,
    plain_turn_messages,
    tool_turn_messages,
    window_offset,
)
from .stores import MongoStore, Store, StoreTimer, stored_elements, timed_store_calls

__all__ = [
    "measure_concurrency",
    "measure_document_limit",
    "measure_sizes",
    "measure_stateless",
    "repeats_for",
]

Log = Callable[[str], None]


def repeats_for(size: int, repeats: int) -> int:
    """Timed passes for a history size: fewer for the slowest (5,000 messages and more)."""
    return repeats if size < 5000 else max(1, (repeats + 1) // 2)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _median(values: Sequence[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _session_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------- per-size figures


@dataclass
class _Resumed:
    """An agent restored through a new manager, and what restoring it cost."""

    agent: Agent
    manager: SessionManager | None
    timer: StoreTimer
    measured: dict[str, Any]


def _resume(store: Store, session_id: str, count_bytes: bool, window: bool = False) -> _Resumed:
    """Build a new manager and an ``Agent`` restoring the session, measuring both."""
    gc.collect()
    store.counter.start(count_bytes)
    started = time.perf_counter()
    manager = store.new_manager(session_id)
    constructed = time.perf_counter()
    timer = timed_store_calls(manager)
    agent = make_agent(manager, window=window)
    resumed = time.perf_counter()
    measured = {
        "time_ms": _ms(resumed - started),
        "store_ms": _ms(constructed - started + timer.seconds),
        **store.counter.stop(),
    }
    return _Resumed(agent, manager, timer, measured)


def _one_request(store: Store, session_id: str, expected: int, count_bytes: bool) -> dict[str, Any]:
    """Resume the session through a new manager + ``Agent``, then run one tool turn; measure both."""
    sample: dict[str, Any] = {}
    if store.persistent:
        resumed = _resume(store, session_id, count_bytes)
        agent, manager, timer, sample["resume"] = resumed.agent, resumed.manager, resumed.timer, resumed.measured
    else:
        manager, timer = None, timed_store_calls(None)
        agent = make_agent(messages=store.sessions[session_id])  # type: ignore[attr-defined]
    if len(agent.messages) != expected:
        raise AssertionError(f"{store.key}: restored {len(agent.messages)} messages, expected {expected}")

    timer.seconds = 0.0
    gc.collect()
    store.counter.start(count_bytes)
    started = time.perf_counter()
    agent(TOOL_PROMPT)
    finished = time.perf_counter()
    counts = store.counter.stop()
    sample["turn"] = {"time_ms": _ms(finished - started), "store_ms": _ms(timer.seconds), **counts}
    if not store.persistent:
        sample["turn"].update(store_ms=None, round_trips=None, bytes_sent=None, bytes_received=None)
        store.sessions[session_id] = agent.messages  # type: ignore[attr-defined]
    if len(agent.messages) != expected + MESSAGES_PER_TURN:
        raise AssertionError(f"{store.key}: the turn added {len(agent.messages) - expected} messages, expected 4")
    store.release(manager)
    return sample


def _window_resume(store: Store, session_id: str, expected: int, count_bytes: bool) -> dict[str, Any]:
    """Resume with strands' default sliding window: only the window's messages come back."""
    resumed = _resume(store, session_id, count_bytes, window=True)
    if len(resumed.agent.messages) != expected:
        restored = len(resumed.agent.messages)
        raise AssertionError(f"{store.key}: windowed resume restored {restored}, expected {expected}")
    store.release(resumed.manager)
    return resumed.measured


def _summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the timed passes; bytes from the counting pass (samples[0])."""
    counting, timed = samples[0], samples[1:]
    return {
        "time_ms": _median([s["time_ms"] for s in timed]),
        "store_ms": _median([s["store_ms"] for s in timed]),
        "round_trips": _median([s["round_trips"] for s in timed]),
        "server_ms": _median([s.get("server_ms") for s in timed]),
        "bytes_sent": counting["bytes_sent"],
        "bytes_received": counting["bytes_received"],
        "samples_ms": [s["time_ms"] for s in timed],
    }


def measure_sizes(stores: Sequence[Store], sizes: Sequence[int], repeats: int, log: Log) -> dict[str, Any]:
    """Write cost per turn and resume cost (whole history; default sliding window) per store and history size."""
    persistent = [store for store in stores if store.persistent]
    figures: dict[str, dict[str, dict[str, Any]]] = {
        "turn": {store.key: {} for store in stores},
        "resume": {store.key: {} for store in persistent},
        "resume_window": {store.key: {} for store in persistent},
    }
    for size in sizes:
        session_id = _session_id(f"n{size}")
        messages = history(size)
        for store in stores:
            started = time.perf_counter()
            store.populate(session_id, copy.deepcopy(messages))
            log(f"size {size}: populated {store.key} in {time.perf_counter() - started:.1f} s")
        passes = 1 + repeats_for(size, repeats)
        collected: dict[str, list[dict[str, Any]]] = {store.key: [] for store in stores}
        started = time.perf_counter()
        for index in range(passes):
            for store in stores:
                expected = size + index * MESSAGES_PER_TURN
                collected[store.key].append(_one_request(store, session_id, expected, count_bytes=index == 0))
        for store in stores:
            samples = collected[store.key]
            figures["turn"][store.key][str(size)] = _summarize([s["turn"] for s in samples])
            if store.persistent:
                figures["resume"][store.key][str(size)] = _summarize([s["resume"] for s in samples])
                figures["resume"][store.key][str(size)]["stored_bytes"] = store.stored_bytes(session_id)
        log(f"size {size}: {passes} passes ({passes - 1} timed) in {time.perf_counter() - started:.1f} s")

        stored = messages + [m for _ in range(passes) for m in tool_turn_messages()]
        offset = window_offset(stored)
        for store in persistent:
            store.set_window(session_id, offset)
        started = time.perf_counter()
        windowed: dict[str, list[dict[str, Any]]] = {store.key: [] for store in persistent}
        for index in range(passes):
            for store in persistent:
                sample = _window_resume(store, session_id, len(stored) - offset, count_bytes=index == 0)
                windowed[store.key].append(sample)
        for store in persistent:
            figures["resume_window"][store.key][str(size)] = _summarize(windowed[store.key])
            figures["resume_window"][store.key][str(size)]["restored_messages"] = len(stored) - offset
        log(f"size {size}: windowed resumes in {time.perf_counter() - started:.1f} s")
    return figures


# --------------------------------------------------------------------------------------------- stateless web


def measure_stateless(mongo: MongoStore, sizes: Sequence[int], repeats: int, log: Log) -> dict[str, Any]:
    """One request (build manager, resume, one turn, close): factory vs a manager with its own connection."""
    results: dict[str, Any] = {}
    for size in sizes:
        session_id = _session_id(f"web{size}")
        mongo.populate(session_id, history(size))
        samples: dict[str, list[dict[str, Any]]] = {"factory": [], "own_connection": []}
        passes = 1 + repeats_for(size, repeats)
        for index in range(passes):
            for variant in samples:
                gc.collect()
                connections = ConnectionCounter()
                opened_before = mongo.connections.snapshot()["created_total"]
                mongo.counter.start(count_bytes=False)
                started = time.perf_counter()
                if variant == "factory":
                    manager = mongo.new_manager(session_id)
                else:
                    manager = mongo.new_own_connection_manager(session_id, connections)
                agent = make_agent(manager)
                agent(TOOL_PROMPT)
                manager.close()
                elapsed = time.perf_counter() - started
                counts = mongo.counter.stop()
                if index == 0:
                    continue  # warm-up
                opened = (
                    connections.snapshot()["created_total"]
                    + mongo.connections.snapshot()["created_total"]
                    - opened_before
                )
                samples[variant].append(
                    {"time_ms": _ms(elapsed), "round_trips": counts["round_trips"], "connections_opened": opened}
                )
        entry: dict[str, Any] = {}
        for variant, rows in samples.items():
            entry[variant] = {
                "time_ms": _median([r["time_ms"] for r in rows]),
                "round_trips": _median([r["round_trips"] for r in rows]),
                "connections_opened": _median([r["connections_opened"] for r in rows]),
                "samples_ms": [r["time_ms"] for r in rows],
            }
        factory_ms, own_ms = entry["factory"]["time_ms"], entry["own_connection"]["time_ms"]
        entry["ratio_own_to_factory"] = round(own_ms / factory_ms, 3) if factory_ms else None
        results[str(size)] = entry
        log(f"stateless size {size}: factory {factory_ms} ms, own connection {own_ms} ms")
    return results


# --------------------------------------------------------------------------------------------- concurrency


def _request(store: Store, session_id: str) -> float:
    """One stateless request: new manager, resume, one tool turn, release; return its latency in seconds."""
    started = time.perf_counter()
    manager = store.new_manager(session_id)
    agent = make_agent(manager)
    agent(TOOL_PROMPT)
    store.release(manager)
    return time.perf_counter() - started


def _run_threads(store: Store, session_ids: list[str], requests_per_thread: int) -> tuple[list[float], float]:
    """One thread per session; after one warm-up request each, all start together. Return (latencies, wall)."""
    latencies: list[float] = []
    lock = threading.Lock()
    start_times: list[float] = []
    errors: list[BaseException] = []
    warmed = threading.Barrier(len(session_ids), action=lambda: start_times.append(time.perf_counter()))

    def worker(session_id: str) -> None:
        try:
            _request(store, session_id)  # warm-up, not measured
            warmed.wait()
            mine = [_request(store, session_id) for _ in range(requests_per_thread)]
            with lock:
                latencies.extend(mine)
        except BaseException as error:  # re-raised after join
            errors.append(error)
            warmed.abort()

    workers = [threading.Thread(target=worker, args=(session_id,)) for session_id in session_ids]
    gc.collect()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    finished = time.perf_counter()
    if errors:
        raise errors[0]
    return latencies, finished - start_times[0]


def measure_concurrency(
    stores: Sequence[Store], threads: int, history_size: int, requests_per_thread: int, log: Log
) -> dict[str, Any]:
    """``threads`` threads, each on its own session, each request = new manager + resume + one turn.

    For this library the managers come from one factory (one shared client); strands' managers are built per
    request, as they are meant to be.
    """
    results: dict[str, Any] = {}
    for store in stores:
        session_ids = [_session_id(f"c{i}") for i in range(threads)]
        for session_id in session_ids:
            store.populate(session_id, history(history_size))
        latencies, wall = _run_threads(store, session_ids, requests_per_thread)
        entry = {
            "threads": threads,
            "history_messages": history_size,
            "turns": len(latencies),
            "wall_s": round(wall, 3),
            "turns_per_s": round(len(latencies) / wall, 2),
            "p50_ms": _ms(_percentile(latencies, 0.5)),
            "p95_ms": _ms(_percentile(latencies, 0.95)),
        }
        results[store.key] = entry
        log(f"concurrency {store.key}: {entry['turns_per_s']} turns/s, p95 {entry['p95_ms']} ms")
    return results


# --------------------------------------------------------------------------------------------- 16 MB limit


def _array_entry_bytes(index: int, element: dict[str, Any]) -> int:
    """BSON bytes one array element adds: type byte, the index as a C string, the embedded document."""
    return 1 + len(str(index)) + 1 + len(bson.encode(element))


def _fill_plan(base_bytes: int, next_turn: Callable[[], list[Any]]) -> tuple[list[dict[str, Any]], int]:
    """Whole turns that keep the document within 16 MB: (elements, predicted document bytes)."""
    elements: list[dict[str, Any]] = []
    size = base_bytes
    while True:
        turn = stored_elements(next_turn(), len(elements))
        grown = size + sum(_array_entry_bytes(len(elements) + i, e) for i, e in enumerate(turn))
        if grown > docs.MAX_DOCUMENT_BYTES:
            return elements, size
        elements += turn
        size = grown


def measure_document_limit(mongo: MongoStore, verify: Sequence[str], log: Log) -> dict[str, Any]:
    """Largest session (messages, bytes) under MongoDB's 16 MB document limit, typical and with 200 KB tool results.

    The plan is computed from the exact BSON of the stored elements. For the cases named in ``verify``
    (``"typical"``, ``"tool_result_200kb"``) a session is really filled to it on the server, its size read back,
    and one more turn is written through the library, which must refuse it with ``DocumentTooLargeError``.
    """
    big_result = "x" * (200 * 1024)
    cases: dict[str, tuple[Callable[[], list[Any]], str | None]] = {}
    turn_numbers = itertools.count()

    def typical_turns() -> list[Any]:
        return tool_turn_messages() if next(turn_numbers) % 2 == 0 else plain_turn_messages()

    cases["typical"] = (typical_turns, None)
    cases["tool_result_200kb"] = (lambda: tool_turn_messages(big_result), big_result)

    results: dict[str, Any] = {}
    for name, (next_turn, tool_text) in cases.items():
        session_id = _session_id(f"limit-{name}")
        manager = mongo.new_manager(session_id)
        make_agent(manager)
        mongo.push_elements(session_id, [])  # an empty messages array: the base size
        base = mongo.stored_bytes(session_id) or 0
        elements, predicted = _fill_plan(base, next_turn)
        entry: dict[str, Any] = {
            "messages": len(elements),
            "turns": sum(1 for e in elements if e["message"]["role"] == "user" and _is_prompt(e)),
            "predicted_bytes": predicted,
            "limit_bytes": docs.MAX_DOCUMENT_BYTES,
            "avg_message_bytes": round((predicted - base) / max(1, len(elements))),
            "verified": None,
        }
        if name in verify:
            started = time.perf_counter()
            mongo.push_elements(session_id, elements, max_count=len(elements), max_bytes=8 * 1024 * 1024)
            entry["stored_bytes"] = mongo.stored_bytes(session_id)
            extra = tool_turn_messages(tool_text)
            refused = False
            from strands.types.session import SessionMessage

            for offset, message in enumerate(extra):
                try:
                    manager.session_repository.create_message(
                        session_id, AGENT_ID, SessionMessage.from_message(message, len(elements) + offset)
                    )
                except DocumentTooLargeError:
                    refused = True
                    break
            entry["next_turn_refused"] = refused
            entry["verified"] = refused and entry["stored_bytes"] <= docs.MAX_DOCUMENT_BYTES
            log(f"document limit {name}: verified={entry['verified']} in {time.perf_counter() - started:.1f} s")
        manager.close()
        mongo.client[mongo.database_name][mongo.collection_name].delete_one({"_id": session_id})
        results[name] = entry
    return results


def _is_prompt(element: dict[str, Any]) -> bool:
    return any("text" in block for block in element["message"]["content"])
