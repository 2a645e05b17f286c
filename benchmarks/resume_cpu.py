"""Client CPU to rebuild restored messages: ``uv run python -m benchmarks.resume_cpu [--messages 5000]``.

Resuming an agent turns every stored array element into a strands ``SessionMessage``. strands'
``SessionMessage.from_dict`` calls ``inspect.signature`` for every key of every message; the library builds the
objects directly (``documents.session_message_from``, which also decodes the value codec). This measures both on
the same elements (the benchmark conversation, stored as ``create_message`` stores it and passed through BSON as
pymongo hands it over) with ``time.process_time``, checks that both give equal objects, and prints the ratio.
No server is involved: the figure is the client's CPU alone. Runs in a few seconds.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: ``python benchmarks/resume_cpu.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

import bson
from strands.types.session import SessionMessage

from benchmarks.conversation import history
from benchmarks.stores import stored_elements
from mongodb_session_manager import documents as docs

__all__ = ["main", "measure"]


def _cpu_ms(rebuild: Callable[[], list[SessionMessage]], repeats: int) -> tuple[float, list[SessionMessage]]:
    """Median client CPU of ``rebuild`` in ms over ``repeats`` runs, and what the last run returned."""
    times = []
    result: list[SessionMessage] = []
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        result = rebuild()
        times.append(time.process_time() - started)
    return round(statistics.median(times) * 1000, 1), result


def measure(messages: int = 5000, repeats: int = 3) -> dict[str, Any]:
    """Rebuild ``messages`` stored messages both ways; return both CPU times (ms) and their ratio."""
    elements = [bson.decode(bson.encode(element)) for element in stored_elements(history(messages))]
    strands_ms, expected = _cpu_ms(lambda: [SessionMessage.from_dict(dict(e)) for e in elements], repeats)
    library_ms, rebuilt = _cpu_ms(lambda: [docs.session_message_from(e) for e in elements], repeats)
    if rebuilt != expected:
        raise AssertionError("documents.session_message_from and SessionMessage.from_dict disagree")
    return {
        "messages": messages,
        "strands_from_dict_ms": strands_ms,
        "library_ms": library_ms,
        "ratio": round(strands_ms / library_ms, 1) if library_ms else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print one line per way of rebuilding, then the ratio."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resume_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="stored messages to rebuild (default 5000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the median is shown (default 3)")
    args = parser.parse_args(argv)
    if args.messages < 2 or args.messages % 2 or args.repeats < 1:
        parser.error("--messages must be an even number >= 2 and --repeats >= 1")
    result = measure(args.messages, args.repeats)
    print(f"client CPU to rebuild {result['messages']:,} stored messages (median of {args.repeats}):")
    print(f"  strands SessionMessage.from_dict       {result['strands_from_dict_ms']:>8.1f} ms")
    print(f"  documents.session_message_from (ours)  {result['library_ms']:>8.1f} ms")
    print(f"  ratio                                  {result['ratio']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
