"""Run the benchmarks: ``uv run python -m benchmarks [--quick] [--sizes 10,100] [--repeats 5] [--output-dir DIR]``.

Starts its own servers (embedded MongoDB unless ``MONGODB_URI`` is set, and moto's S3 server), measures every
figure in this one run, prints one table and writes ``<output-dir>/<date>.json`` and ``<output-dir>/<date>.png``.
Nothing here asserts anything about wall time.
"""

from __future__ import annotations

import argparse
import datetime
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
    measure_sizes,
    measure_stateless,
    repeats_for,
)
from benchmarks.servers import mongodb_server, s3_server
from benchmarks.stores import FileStore, MemoryStore, MongoStore, S3Store, Store

__all__ = ["main"]

DEFAULT_SIZES = (10, 100, 1000, 5000)
QUICK_SIZES = (10, 50)
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"


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
    parser.add_argument("--sizes", help="comma-separated conversation lengths in messages (even numbers)")
    parser.add_argument("--repeats", type=int, help="timed passes per size (default 5; halved from 5,000 messages)")
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
    ):
        log(f"MongoDB: {mongo_server.description}; S3: {s3.description}")
        mongo = MongoStore(mongo_server.uri)
        stores: list[Store] = [mongo, FileStore(files_dir), S3Store(s3.endpoint_url), MemoryStore()]
        try:
            figures = measure_sizes(stores, args.sizes, args.repeats, log)
            stateless = measure_stateless(mongo, args.sizes, args.repeats, log)
            concurrency = measure_concurrency(
                [s for s in stores if s.persistent], args.threads, concurrency_history, concurrency_requests, log
            )
            verify = ["tool_result_200kb"] if args.quick else ["typical", "tool_result_200kb"]
            limit = measure_document_limit(mongo, verify=verify, log=log)
        finally:
            for store in stores:
                store.close()
    now = datetime.datetime.now(datetime.UTC)
    return {
        "meta": {
            "date": now.strftime("%Y-%m-%d"),
            "timestamp": now.isoformat(timespec="seconds"),
            "quick": args.quick,
            "sizes": args.sizes,
            "repeats": {str(size): repeats_for(size, args.repeats) for size in args.sizes},
            "duration_s": round(time.perf_counter() - started, 1),
            "machine": {**report.machine(), "load_average_before": load_before, "load_average_after": _load_average()},
            "versions": report.versions(),
            "mongodb": mongo_server.description,
            "s3": s3.description,
            "conversation": {
                "history": "tool turns (user, assistant toolUse, toolResult ~600 B, answer) alternating with "
                "plain turns (question, answer); the measured turn is a tool turn (4 messages)",
                "conversation_manager": "NullConversationManager (the whole history stays in the agent)",
                "model": "scripted: ignores its input, costs O(1) per call",
            },
            "concurrency": {"history_messages": concurrency_history, "requests_per_thread": concurrency_requests},
        },
        "stores": {store.key: store.describe() for store in stores},
        "turn": figures["turn"],
        "resume": figures["resume"],
        "resume_window": figures["resume_window"],
        "stateless": stateless,
        "concurrency": concurrency,
        "document_limit": limit,
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
    print(
        f"\nratios in parentheses: value / this library's value. growth: value at {args.sizes[-1]:,} / at "
        f"{args.sizes[0]:,} messages."
    )
    print(f"results: {json_path}")
    if results["meta"]["chart"]:
        print(f"chart:   {png_path}")
    log(f"done in {results['meta']['duration_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
