"""Run the benchmarks: ``uv run python -m benchmarks [--quick] [--sizes 10,100] [--repeats 5] [--output-dir DIR]``.

Starts its own servers (embedded MongoDB unless ``MONGODB_URI`` is set, and moto's S3 server), measures every
figure in this one run, prints one table and writes ``<output-dir>/<date>.json`` and ``<output-dir>/<date>.png``.
This library is measured in both message layouts: ``mongodb`` (embedded, the default) and ``mongodb-collection``.
Sizes above 5,000 messages are measured for the collection layout (and the no-store baseline) only.
Nothing here asserts anything about wall time; the report says whether the collection layout's per-append
figures stay flat (issue 11's acceptance: at 5,000 messages within 2x of those at 10).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import chart, conversation, report
from benchmarks.measure import (
    measure_concurrency,
    measure_document_limit,
    measure_long_conversation,
    measure_sizes,
    measure_stateless,
    repeats_for,
)
from benchmarks.servers import mongodb_server, process_cpu_seconds, s3_server
from benchmarks.snapshots import FileSnapshots, MongoSnapshots, S3Snapshots, SnapshotBackend, measure_snapshots
from benchmarks.stores import LARGEST_SHARED_SIZE, FileStore, MemoryStore, MongoStore, S3Store, Store
from mongodb_session_manager import documents as docs

__all__ = ["main"]

DEFAULT_SIZES = (10, 100, 1000, 5000, 20000)
QUICK_SIZES = (10, 50)
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
LONG_CONVERSATION: dict[str, Any] = {"messages": 2000, "tool_result_bytes": 200 * 1024}
"""The 200 KB-tool-result conversation: 2,000 messages with the library's default ``max_embedded_messages``."""
QUICK_LONG_CONVERSATION: dict[str, Any] = {"messages": 80, "tool_result_bytes": 200 * 1024, "max_embedded_messages": 40}
"""Its smoke version: 80 messages, moved out at 40 (the full one reaches 16 MB first, in about a minute)."""


class Progress:
    """Progress lines with the elapsed time, on stderr."""

    def __init__(self) -> None:
        """Start the clock."""
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        """Print one progress line."""
        print(f"[{time.perf_counter() - self.started:6.1f} s] {message}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 10 and 50, 1 repeat, small load")
    parser.add_argument(
        "--sizes",
        help="comma-separated conversation lengths in messages (even numbers; default 10,100,1000,5000,20000; "
        "above 5,000 only the collection layout and the no-store baseline are measured)",
    )
    parser.add_argument(
        "--repeats", type=int, help="timed passes per size (default 5; halved at 5,000 messages, 1 above)"
    )
    parser.add_argument("--threads", type=int, default=8, help="threads of the concurrency figure (default 8)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where the JSON and PNG go (default benchmarks/results/, or a new temp dir with --quick)",
    )
    args = parser.parse_args(argv)
    if args.sizes:
        args.sizes = sorted({int(part) for part in args.sizes.split(",") if part.strip()})
    else:
        args.sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if any(size < 2 or size % 2 for size in args.sizes):
        parser.error("--sizes must be even numbers >= 2 (a history is made of whole turns)")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.output_dir is None:
        args.output_dir = Path(tempfile.mkdtemp(prefix="msm-bench-quick-")) if args.quick else DEFAULT_OUTPUT
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def run(args: argparse.Namespace, log: Progress) -> dict[str, Any]:
    """Start the servers, measure every figure and return the results (without derived ratios)."""
    concurrency_history, concurrency_requests = (10, 1) if args.quick else (100, 6)
    started = time.perf_counter()
    load_before = _load_average()
    with (
        mongodb_server() as mongo_server,
        s3_server() as s3,
        tempfile.TemporaryDirectory(prefix="msm-bench-files-") as files_dir,
        tempfile.TemporaryDirectory(prefix="msm-bench-snapshots-") as snapshots_dir,
    ):
        log(f"MongoDB: {mongo_server.description}; S3: {s3.description}")
        server_cpu = functools.partial(process_cpu_seconds, mongo_server.pid) if mongo_server.pid else None
        mongo = MongoStore(mongo_server.uri, docs.EMBEDDED, server_cpu)
        stores: list[Store] = [mongo, MongoStore(mongo_server.uri, docs.COLLECTION, server_cpu)]
        stores += [FileStore(files_dir), S3Store(s3.endpoint_url), MemoryStore()]
        long_conversation = QUICK_LONG_CONVERSATION if args.quick else LONG_CONVERSATION
        snapshot_backends: list[SnapshotBackend] = []
        try:
            figures = measure_sizes(stores, args.sizes, args.repeats, log)
            stateless = measure_stateless(mongo, [n for n in args.sizes if mongo.measures(n)], args.repeats, log)
            concurrency = measure_concurrency(
                [s for s in stores if s.persistent], args.threads, concurrency_history, concurrency_requests, log
            )
            # Filling a document with 24,648 typical messages and moving them out takes ~30 s: computed only.
            limit = measure_document_limit(mongo, verify=["tool_result_200kb"], log=log)
            long = measure_long_conversation(mongo, log=log, **long_conversation)
            snapshot_backends += [MongoSnapshots(mongo_server.uri, server_cpu), FileSnapshots(snapshots_dir)]
            snapshot_backends.append(S3Snapshots(s3.endpoint_url))
            repeats = functools.partial(repeats_for, repeats=args.repeats)
            snapshots = measure_snapshots(snapshot_backends, args.sizes, repeats, log)
        finally:
            for store in stores:
                store.close()
            for backend in snapshot_backends:
                backend.close()
    now = datetime.datetime.now(datetime.UTC)
    return {
        "meta": {
            "date": now.strftime("%Y-%m-%d"),
            "timestamp": now.isoformat(timespec="seconds"),
            "quick": args.quick,
            "sizes": args.sizes,
            "repeats": {str(size): repeats_for(size, args.repeats) for size in args.sizes},
            "sizes_per_store": {store.key: [n for n in args.sizes if store.measures(n)] for store in stores},
            "duration_s": round(time.perf_counter() - started, 1),
            "machine": {**report.machine(), "load_average_before": load_before, "load_average_after": _load_average()},
            "versions": report.versions(),
            "mongodb": mongo_server.description,
            "server_cpu": "read from the server process's CPU clock" if server_cpu else None,
            "s3": s3.description,
            "conversation": {
                "history": "tool turns (user, assistant toolUse, toolResult ~600 B, answer) alternating with "
                "plain turns (question, answer); the measured turn is a tool turn (4 messages)",
                "conversation_manager": "NullConversationManager (the whole history stays in the agent)",
                "model": "scripted: ignores its input, costs O(1) per call",
            },
            "concurrency": {"history_messages": concurrency_history, "requests_per_thread": concurrency_requests},
            "snapshot": {
                "sizes": [n for n in args.sizes if n <= LARGEST_SHARED_SIZE],
                "save": "SnapshotSessionManager.sync_agent(agent): capture, serialize, overwrite snapshot_latest "
                "(the write after each turn), in strands' fresh event loop",
                "restore": "a new SnapshotSessionManager + Agent restoring snapshot_latest",
            },
        },
        "stores": {store.key: store.describe() for store in stores},
        "turn": figures["turn"],
        "resume": figures["resume"],
        "resume_window": figures["resume_window"],
        "stateless": stateless,
        "concurrency": concurrency,
        "document_limit": limit,
        "long_conversation": long,
        "snapshot_stores": {backend.key: backend.describe() for backend in snapshot_backends},
        **snapshots,
    }


def _load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (other work on the machine skews wall times), where the OS has them."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON and the chart; return the exit code."""
    args = _parse(argv)
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    log = Progress()
    log(f"sizes {args.sizes}, repeats {args.repeats}{' (quick)' if args.quick else ''}")
    conversation.history(2)  # capture the message templates before anything is timed
    results = report.add_derived(run(args, log))

    args.output_dir.mkdir(parents=True, exist_ok=True)
    stem = results["meta"]["date"]
    json_path = args.output_dir / f"{stem}.json"
    png_path = args.output_dir / f"{stem}.png"
    if chart.matplotlib_available():
        chart.write_chart(results, png_path)
        results["meta"]["chart"] = png_path.name
    else:
        results["meta"]["chart"] = None
        log("matplotlib is not installed: no chart (uv pip install matplotlib)")
    report.write_json(results, json_path)

    header, rows = report.table_rows(results)
    print(report.render_text(header, rows))
    growth = results["growth"]
    print(
        f"\nratios in parentheses: value / the embedded layout's (`mongodb`) value. growth: value at "
        f"{growth['to_messages']:,} / at {growth['from_messages']:,} messages."
    )
    print(report.flatness_text(results))
    print(f"results: {json_path}")
    if results["meta"]["chart"]:
        print(f"chart:   {png_path}")
    log(f"done in {results['meta']['duration_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
