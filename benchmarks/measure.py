"""The measurements: per-turn write cost, resume cost, stateless requests, concurrency, the 16 MB document and a
long conversation with 200 KB tool results in the default layout.

Every figure is measured in one run, stores interleaved inside each repeat (so a noisy neighbour hits all of
them alike). Each size starts with a counting pass that is not timed: bytes are counted there (encoding BSON to
measure it costs CPU), then ``repeats`` timed passes give the medians. Round trips are counted in every pass;
the embedded server's CPU time too (it is CPU time, so other load on the machine does not inflate it).
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
from strands.types.session import SessionMessage

from mongodb_session_manager import documents as docs
from mongodb_session_manager.pool import ConnectionCounter

from .conversation import (
    AGENT_ID,
    MESSAGES_PER_TURN,
    TOOL_PROMPT,
    WINDOW,
    history,
    make_agent,
    plain_turn_messages,
    tool_turn_messages,
    window_offset,
)
from .stores import MongoStore, Store, StoreTimer, stored_elements, timed_store_calls
from .tools import make_lookup_order

__all__ = [
    "measure_concurrency",
    "measure_document_limit",
    "measure_long_conversation",
    "measure_sizes",
    "measure_stateless",
    "repeats_for",
]

Log = Callable[[str], None]


def repeats_for(size: int, repeats: int) -> int:
    """Timed passes for a history size: fewer for the slowest (about half from 5,000 messages, 1 above 5,000)."""
    if size > 5000:
        return 1
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
    timer = timed_store_calls(manager, store.server_cpu)
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

    timer.reset()
    gc.collect()
    store.counter.start(count_bytes)
    started = time.perf_counter()
    agent(TOOL_PROMPT)
    finished = time.perf_counter()
    counts = store.counter.stop()
    sample["turn"] = {
        "time_ms": _ms(finished - started),
        "store_ms": _ms(timer.seconds),
        **counts,
        **timer.per_append(),
    }
    if not store.persistent:
        sample["turn"].update(store_ms=None, round_trips=None, bytes_sent=None, bytes_received=None, append_ms=None)
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


_PER_PASS = (
    "time_ms",
    "store_ms",
    "round_trips",
    "server_ms",
    "server_cpu_ms",
    "append_ms",
    "server_cpu_per_append_ms",
)
"""Figures measured in every timed pass (their median is reported); bytes come from the counting pass."""


def _summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the timed passes; bytes from the counting pass (samples[0])."""
    counting, timed = samples[0], samples[1:]
    summary: dict[str, Any] = {key: _median([s.get(key) for s in timed]) for key in _PER_PASS}
    summary["bytes_sent"] = counting["bytes_sent"]
    summary["bytes_received"] = counting["bytes_received"]
    summary["samples_ms"] = [s["time_ms"] for s in timed]
    return summary


def measure_sizes(all_stores: Sequence[Store], sizes: Sequence[int], repeats: int, log: Log) -> dict[str, Any]:
    """Write cost per turn and resume cost (whole history; default sliding window) per store and history size.

    A store is measured at the sizes its ``max_messages`` allows (above 5,000 messages: the collection layout
    and the no-store baseline only).
    """
    figures: dict[str, dict[str, dict[str, Any]]] = {
        "turn": {store.key: {} for store in all_stores},
        "resume": {store.key: {} for store in all_stores if store.persistent},
        "resume_window": {store.key: {} for store in all_stores if store.persistent},
    }
    for size in sizes:
        stores = [store for store in all_stores if store.measures(size)]
        persistent = [store for store in stores if store.persistent]
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
                resume = figures["resume"][store.key][str(size)] = _summarize([s["resume"] for s in samples])
                resume["stored_bytes"] = store.stored_bytes(session_id)
                if isinstance(store, MongoStore):
                    resume["session_document_bytes"] = store.document_bytes(session_id)
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
    """One request (build manager, resume, one turn, close): factory vs a manager with its own connection.

    One timed pass from 5,000 messages: there the embedded layout's turn takes seconds and the connection's cost
    is lost in it anyway.
    """
    results: dict[str, Any] = {}
    for size in sizes:
        session_id = _session_id(f"web{size}")
        mongo.populate(session_id, history(size))
        samples: dict[str, list[dict[str, Any]]] = {"factory": [], "own_connection": []}
        passes = 1 + (repeats_for(size, repeats) if size < 5000 else 1)
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
    """How much one session document holds (messages, bytes) under MongoDB's 16 MB limit, typical and with 200 KB
    tool results: where the embedded layout moves an agent out at the latest.

    The plan is computed from the exact BSON of the stored elements. For the cases named in ``verify``
    (``"typical"``, ``"tool_result_200kb"``) a session is really filled to it on the server, its size read back,
    and one more turn is written through the library (``max_embedded_messages`` far above the count, so only the
    size can trigger): every message of it must be stored, the agent moved to the collection layout, and each
    message stored exactly once.
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
        manager = mongo.new_manager(session_id, message_storage=docs.EMBEDDED)
        make_agent(manager)
        mongo.push_elements(session_id, [])  # an empty messages array: the base size
        base = mongo.document_bytes(session_id) or 0
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
            entry["stored_bytes"] = mongo.document_bytes(session_id)
            extra = tool_turn_messages(tool_text)
            for offset, message in enumerate(extra):
                manager.session_repository.create_message(
                    session_id, AGENT_ID, SessionMessage.from_message(message, len(elements) + offset)
                )
            expected = len(elements) + len(extra)
            counts = mongo.message_count(session_id)
            entry["next_turn_promoted"] = mongo.agent_layout(session_id) == docs.COLLECTION
            entry["messages_after_next_turn"] = counts
            entry["verified"] = (
                entry["next_turn_promoted"]
                and entry["stored_bytes"] <= docs.MAX_DOCUMENT_BYTES
                and counts == {"embedded": 0, "documents": expected, "distinct_ids": expected}
            )
            log(f"document limit {name}: verified={entry['verified']} in {time.perf_counter() - started:.1f} s")
        manager.session_repository.delete_session(session_id)
        manager.close()
        results[name] = entry
    return results


def _is_prompt(element: dict[str, Any]) -> bool:
    return any("text" in block for block in element["message"]["content"])


# --------------------------------------------------------------------------------------------- long conversation


def measure_long_conversation(
    mongo: MongoStore,
    messages: int,
    tool_result_bytes: int,
    log: Log,
    max_embedded_messages: int | None = None,
) -> dict[str, Any]:
    """Run one agent whose every turn returns a ``tool_result_bytes`` tool result to ``messages`` messages.

    The manager comes from a factory with nothing configured: the default layout (embedded) and the default
    ``max_embedded_messages`` (or ``max_embedded_messages`` when given, for the quick run). The agent keeps
    strands' default 40-message sliding window, as a long-running agent would (the store keeps every message).
    The agent starts embedded; the append that would pass ``max_embedded_messages`` messages or 16 MB moves it
    to the collection layout, and the conversation goes on. Each turn is timed (store time, wall time, server CPU
    per append); the turn with the first ``insert`` is the promotion turn (an embedded append is an ``update``,
    a collection append an ``insert``; the move's copy is an ``update`` of upserts). At the end the stored
    messages are counted: every one exactly once, none left in the session document.
    """
    session_id = _session_id("long")
    options: dict[str, Any] = {} if max_embedded_messages is None else {"max_embedded_messages": max_embedded_messages}
    manager = mongo.factory.create_session_manager(session_id, **options)
    limit = manager.session_repository.max_embedded_messages
    timer = timed_store_calls(manager, mongo.server_cpu)
    agent = make_agent(manager, tool=make_lookup_order(tool_result_bytes), window=True)
    turns: list[dict[str, Any]] = []
    promotion_turn: int | None = None
    promoted_at: int | None = None
    started = time.perf_counter()
    stored = 0
    while stored < messages:
        timer.reset()
        first_command = len(mongo.commands.commands)
        turn_started = time.perf_counter()
        agent(TOOL_PROMPT)
        wall = time.perf_counter() - turn_started
        commands = mongo.commands.commands[first_command:]
        stored += MESSAGES_PER_TURN
        inserts = commands.count("insert")
        if promotion_turn is None and inserts:
            promotion_turn, promoted_at = len(turns), stored - inserts
        turns.append(
            {"time_ms": _ms(wall), "store_ms": _ms(timer.seconds), "commands": len(commands), **timer.per_append()}
        )
        if len(turns) % 100 == 0:
            log(f"long conversation: {stored:,} messages in {time.perf_counter() - started:.1f} s")
    duration = time.perf_counter() - started
    layout = mongo.agent_layout(session_id)
    counts = mongo.message_count(session_id)
    manager.close()

    before = turns[:promotion_turn] if promotion_turn is not None else turns
    after = turns[promotion_turn + 1 :] if promotion_turn is not None else []
    result: dict[str, Any] = {
        "target_messages": messages,
        "tool_result_bytes": tool_result_bytes,
        "max_embedded_messages": limit,
        "conversation_manager": f"SlidingWindowConversationManager(window_size={WINDOW})",
        "messages_reached": stored,
        "turns": len(turns),
        "completed": stored >= messages,
        "promoted": layout == docs.COLLECTION,
        "promoted_at_messages": promoted_at,
        "promotion_trigger": _trigger(promoted_at, limit),
        "stored": counts,
        "exactly_once": counts == {"embedded": 0, "documents": stored, "distinct_ids": stored},
        "session_document_bytes": mongo.document_bytes(session_id),
        "duration_s": round(duration, 1),
        "before_promotion": _turn_stats(before),
        "promotion_turn": turns[promotion_turn] if promotion_turn is not None else None,
        "after_promotion": _turn_stats(after),
        "store_ms_per_turn": [turn["store_ms"] for turn in turns],
    }
    log(
        f"long conversation: {stored:,} messages in {duration:.1f} s, promoted at {promoted_at} messages "
        f"({result['promotion_trigger']}), exactly once: {result['exactly_once']}"
    )
    return result


def _trigger(promoted_at: int | None, limit: int) -> str | None:
    """Why the agent moved out: the message count reached the limit, or the 16 MB document limit came first."""
    if promoted_at is None:
        return None
    return "max_embedded_messages" if promoted_at >= limit else "16 MB document limit"


def _turn_stats(turns: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Medians (and the last turn's store time) of a run of turns."""
    if not turns:
        return None
    return {
        "turns": len(turns),
        "time_ms": _median([t["time_ms"] for t in turns]),
        "store_ms": _median([t["store_ms"] for t in turns]),
        "last_store_ms": turns[-1]["store_ms"],
        "append_ms": _median([t["append_ms"] for t in turns]),
        "server_cpu_per_append_ms": _median([t["server_cpu_per_append_ms"] for t in turns]),
    }
