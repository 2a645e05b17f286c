"""Turn measured figures into ratios, one table (text and Markdown), the flatness check and the results JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "FIGURES",
    "OURS",
    "add_derived",
    "flatness_text",
    "machine",
    "main",
    "render_markdown",
    "render_text",
    "table_rows",
    "versions",
    "write_json",
]

OURS = "mongodb"
"""The reference of every ratio: this library in its default (embedded) layout."""
COLLECTION = "mongodb-collection"
_METRICS = (
    "time_ms",
    "store_ms",
    "server_ms",
    "server_cpu_ms",
    "append_ms",
    "server_cpu_per_append_ms",
    "round_trips",
    "bytes_sent",
    "bytes_received",
    "session_document_bytes",
    "snapshot_bytes",
)
FIGURES = ("turn", "resume", "resume_window", "snapshot_save", "snapshot_restore")
"""The per-size figures; the snapshot ones compare storages (``mongodb`` there is ``MongoDBStorage``)."""
FLAT_LIMIT = 2.0
"""Issue 11's acceptance: the collection layout's per-append figures at 5,000 messages within 2x of those at 10."""
_FLAT_METRICS = ("append_ms", "server_cpu_per_append_ms")
_FLAT_SIZES = (10, 5000)
_PACKAGES = ("mongodb-session-manager", "strands-agents", "pymongo", "secantusdb", "boto3", "moto", "matplotlib")


def machine() -> dict[str, Any]:
    """What the run ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that matter to the figures."""
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _ratio(value: Any, reference: Any) -> float | None:
    if value is None or reference in (None, 0):
        return None
    return float(f"{value / reference:.4g}")  # 4 significant digits: a tiny ratio must not round to 0


def shared_sizes(results: dict[str, Any]) -> list[str]:
    """The sizes every store was measured at (all of them in results written before stores had their own)."""
    sizes = [str(size) for size in results["meta"]["sizes"]]
    per_store = results["meta"].get("sizes_per_store")
    if not per_store:
        return sizes
    return [size for size in sizes if all(int(size) in measured for measured in per_store.values())]


def add_derived(results: dict[str, Any]) -> dict[str, Any]:
    """Add ``growth``, ``ratios_to_mongodb`` and ``flatness`` to the results, in place.

    ``growth`` is the value at the largest size every store was measured at over the value at the smallest;
    ``flatness`` compares each MongoDB layout's per-append figures at 5,000 and 10 messages (or at the largest
    and smallest shared sizes when those were not measured) against ``FLAT_LIMIT``.
    """
    shared = shared_sizes(results)
    first, last = shared[0], shared[-1]
    growth: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for figure in FIGURES:
        growth[figure] = {}
        ratios[figure] = {}
        ours = results.get(figure, {}).get(OURS, {})
        for store, by_size in results.get(figure, {}).items():
            growth[figure][store] = {
                m: _ratio(by_size.get(last, {}).get(m), by_size.get(first, {}).get(m)) for m in _METRICS
            }
            if store == OURS:
                continue
            ratios[figure][store] = {
                size: {m: _ratio(entry.get(m), ours.get(size, {}).get(m)) for m in _METRICS}
                for size, entry in by_size.items()
            }
    growth["from_messages"], growth["to_messages"] = int(first), int(last)
    results["growth"] = growth
    results["ratios_to_mongodb"] = ratios
    results["flatness"] = _flatness(results, shared)
    concurrency = results.get("concurrency", {})
    for store, entry in concurrency.items():
        if store != OURS and OURS in concurrency:
            entry["ratio_to_mongodb"] = {
                "turns_per_s": _ratio(entry["turns_per_s"], concurrency[OURS]["turns_per_s"]),
                "p95_ms": _ratio(entry["p95_ms"], concurrency[OURS]["p95_ms"]),
            }
    return results


def _flatness(results: dict[str, Any], shared: list[str]) -> dict[str, Any]:
    """Per MongoDB layout: per-append figures at the large size over the small one, and whether all are <= 2x."""
    small, large = (str(size) for size in _FLAT_SIZES)
    if small not in shared or large not in shared:
        small, large = shared[0], shared[-1]
    flatness: dict[str, Any] = {"from_messages": int(small), "to_messages": int(large), "limit": FLAT_LIMIT}
    for store in (COLLECTION, OURS):
        by_size = results["turn"].get(store)
        if not by_size or small not in by_size or large not in by_size:
            continue
        entry: dict[str, Any] = {}
        for metric in (*_FLAT_METRICS, "store_ms", "time_ms"):
            entry[metric] = _ratio(by_size[large].get(metric), by_size[small].get(metric))
        checked = [entry[metric] for metric in _FLAT_METRICS if entry[metric] is not None]
        entry["within_limit"] = bool(checked) and all(ratio <= FLAT_LIMIT for ratio in checked)
        flatness[store] = entry
    return flatness


def flatness_text(results: dict[str, Any]) -> str:
    """The acceptance lines: is each layout's cost per append flat from the small size to the large one?"""
    flatness = results.get("flatness", {})
    small, large = flatness.get("from_messages"), flatness.get("to_messages")
    lines = []
    for store, name in ((COLLECTION, "collection layout"), (OURS, "embedded layout")):
        entry = flatness.get(store)
        if entry is None:
            continue
        verdict = "yes" if entry["within_limit"] else "NO"
        lines.append(
            f"{name} ({store}), {large:,} vs {small:,} messages: store time per append {_times(entry['append_ms'])}, "
            f"server CPU per append {_times(entry['server_cpu_per_append_ms'])} "
            f"(store time per turn {_times(entry['store_ms'])}, turn wall time {_times(entry['time_ms'])}) "
            f"-> per-append figures within {flatness['limit']:g}x: {verdict}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- the table

Row = tuple[str, str, list[str], str]
"""(figure, store, one cell per size, growth cell)."""


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "KB":
        value = value / 1024
    if value == int(value) and unit != "KB":
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _times(ratio: float | None) -> str:
    """A ratio as ``0.82x``, ``3.4x`` or ``1,250x``."""
    if ratio is None:
        return "-"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.0f}x"
    if ratio >= 0.1:
        return f"{ratio:.2g}x"
    return f"{ratio:.1g}x"


def _cell(value: float | None, ours: float | None, unit: str, store: str) -> str:
    text = _number(value, unit)
    ratio = _ratio(value, ours) if store != OURS and value else None
    return f"{text} ({_times(ratio)})" if ratio is not None else text


_TABLE: list[tuple[str, str, str, str]] = [
    ("turn", "time_ms", "turn: wall time (ms)", ""),
    ("turn", "store_ms", "turn: time in session store (ms)", ""),
    ("turn", "server_ms", "turn: of which MongoDB commands (ms)", ""),
    ("turn", "server_cpu_ms", "turn: server CPU (ms)", ""),
    ("turn", "append_ms", "turn: store time per append (ms)", ""),
    ("turn", "server_cpu_per_append_ms", "turn: server CPU per append (ms)", ""),
    ("turn", "round_trips", "turn: round trips", ""),
    ("turn", "bytes_sent", "turn: KB sent", "KB"),
    ("turn", "bytes_received", "turn: KB received", "KB"),
    ("resume", "time_ms", "resume: wall time (ms)", ""),
    ("resume", "server_ms", "resume: of which MongoDB commands (ms)", ""),
    ("resume", "server_cpu_ms", "resume: server CPU (ms)", ""),
    ("resume", "round_trips", "resume: round trips", ""),
    ("resume", "bytes_sent", "resume: KB sent", "KB"),
    ("resume", "bytes_received", "resume: KB received", "KB"),
    ("resume", "session_document_bytes", "session document (KB)", "KB"),
    ("resume_window", "time_ms", "resume, 40-msg window: wall (ms)", ""),
    ("resume_window", "round_trips", "resume, 40-msg window: round trips", ""),
    ("resume_window", "bytes_received", "resume, 40-msg window: KB received", "KB"),
    ("snapshot_save", "time_ms", "snapshot save: wall time (ms)", ""),
    ("snapshot_save", "server_cpu_ms", "snapshot save: server CPU (ms)", ""),
    ("snapshot_save", "round_trips", "snapshot save: round trips", ""),
    ("snapshot_save", "bytes_sent", "snapshot save: KB sent", "KB"),
    ("snapshot_restore", "time_ms", "snapshot restore: wall time (ms)", ""),
    ("snapshot_restore", "server_cpu_ms", "snapshot restore: server CPU (ms)", ""),
    ("snapshot_restore", "round_trips", "snapshot restore: round trips", ""),
    ("snapshot_restore", "bytes_received", "snapshot restore: KB received", "KB"),
    ("snapshot_save", "snapshot_bytes", "snapshot size, JSON (KB)", "KB"),
]
"""(figure, metric, row title, unit) of the size columns, in table order."""


def table_rows(results: dict[str, Any]) -> tuple[list[str], list[Row]]:
    """The one table: header cells and rows, each value with its ratio to this library's default layout."""
    sizes = [str(size) for size in results["meta"]["sizes"]]
    growth_from, growth_to = results["growth"]["from_messages"], results["growth"]["to_messages"]
    header = ["figure", "store", *[f"{int(size):,} msgs" for size in sizes], f"growth {growth_from}->{growth_to}"]
    rows: list[Row] = []
    for figure, metric, title, unit in _TABLE:
        for store, by_size in results.get(figure, {}).items():
            if all(by_size.get(size, {}).get(metric) is None for size in sizes):
                continue
            if store == "memory" and metric != "time_ms":
                continue
            if metric == "snapshot_bytes" and store != OURS:  # the same JSON on every storage
                continue
            ours = results[figure].get(OURS, {})
            cells = [
                _cell(by_size[size].get(metric), ours.get(size, {}).get(metric), unit, store)
                if size in by_size
                else "-"
                for size in sizes
            ]
            growth = results["growth"][figure][store].get(metric)
            rows.append((title, store, cells, _times(growth)))

    stateless = results.get("stateless", {})
    if stateless:
        for variant, title in (("factory", "request via factory (ms)"), ("own_connection", "request, own client (ms)")):
            cells = []
            for size in sizes:
                entry = stateless.get(size)
                if entry is None:
                    cells.append("-")
                    continue
                value = entry[variant]["time_ms"]
                ratio = entry["ratio_own_to_factory"] if variant == "own_connection" else None
                cells.append(f"{_number(value)} ({_times(ratio)})" if ratio is not None else _number(value))
            first, last = stateless.get(str(growth_from)), stateless.get(str(growth_to))
            growth = _ratio(last[variant]["time_ms"], first[variant]["time_ms"]) if first and last else None
            rows.append((title, OURS, cells, _times(growth)))

    for store, entry in results.get("concurrency", {}).items():
        ratio = entry.get("ratio_to_mongodb", {})
        text = f"{entry['turns_per_s']:.1f} turns/s" + (f" ({_times(ratio['turns_per_s'])})" if ratio else "")
        text += f", p95 {_number(entry['p95_ms'])} ms" + (f" ({_times(ratio['p95_ms'])})" if ratio else "")
        title = f"{entry['threads']} threads, {entry['history_messages']}-msg sessions"
        rows.append((title, store, [text], ""))

    for case, entry in results.get("document_limit", {}).items():
        title = "16 MB document: typical" if case == "typical" else "16 MB document: 200 KB tool result/turn"
        size = entry.get("stored_bytes") or entry["predicted_bytes"]
        verified = entry.get("verified")
        if "next_turn_promoted" in entry or verified is None:
            outcome = {True: ", verified: next turn moved the agent out", False: ", NOT verified"}
        else:  # results written before promotion existed: the next turn was refused
            outcome = {True: ", verified: next turn refused", False: ", NOT verified"}
        suffix = outcome.get(verified, ", computed")
        text = f"{entry['messages']:,} messages ({entry['turns']:,} turns), {size / 1024 / 1024:.2f} MB{suffix}"
        rows.append((title, OURS, [text], ""))

    long = results.get("long_conversation")
    if long:
        rows.append((_long_title(long), OURS, [long_conversation_text(long)], ""))
    return header, rows


def _long_title(long: dict[str, Any]) -> str:
    return f"{long['tool_result_bytes'] // 1024} KB tool result/turn, default layout"


def long_conversation_text(long: dict[str, Any]) -> str:
    """One line on the long conversation: how far it got, when the agent moved out, and the cost per turn."""
    outcome = "no error" if long["completed"] else "STOPPED EARLY"
    text = f"{long['messages_reached']:,} messages, {outcome}"
    if long["promoted"] and long["promoted_at_messages"] is not None:
        text += f"; moved out at {long['promoted_at_messages']:,} msgs ({long['promotion_trigger']})"
    else:
        text += "; NOT moved out"
    before, after, moved = long["before_promotion"], long["after_promotion"], long["promotion_turn"]
    if before and after and moved:
        text += (
            f"; store time/turn {_number(before['store_ms'])} ms before (last {_number(before['last_store_ms'])}), "
            f"{_number(moved['store_ms'])} ms moving, {_number(after['store_ms'])} ms after"
        )
        if before.get("server_cpu_per_append_ms") is not None and after.get("server_cpu_per_append_ms") is not None:
            text += (
                f"; server CPU/append {_number(before['server_cpu_per_append_ms'])} -> "
                f"{_number(after['server_cpu_per_append_ms'])} ms"
            )
    text += "; each message stored once" if long["exactly_once"] else "; message count MISMATCH"
    return text


def _spread(cells: list[str], width: int) -> list[str]:
    """A single-cell row spans the size columns."""
    return cells if len(cells) == width else [cells[0], *[""] * (width - 1)]


def render_text(header: list[str], rows: list[Row]) -> str:
    """A fixed-width text table; a single value spans the size columns."""
    size_columns = len(header) - 3
    widths = [max(len(header[0]), *(len(r[0]) for r in rows)), max(len(header[1]), *(len(r[1]) for r in rows))]
    full_rows = [r for r in rows if len(r[2]) == size_columns]
    widths += [max(len(header[2 + i]), *(len(r[2][i]) for r in full_rows)) for i in range(size_columns)]
    widths.append(max(len(header[-1]), *(len(r[3]) for r in rows)))
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), "  ".join("-" * w for w in widths)]
    previous = None
    for figure, store, cells, growth in rows:
        name = figure if figure != previous else ""
        previous = figure
        if len(cells) != size_columns:
            lines.append(f"{name.ljust(widths[0])}  {store.ljust(widths[1])}  {cells[0]}")
            continue
        values = [name, store, *cells, growth]
        lines.append("  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())
    return "\n".join(lines)


def render_markdown(header: list[str], rows: list[Row]) -> str:
    """The same table in Markdown."""
    size_columns = len(header) - 3
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    previous = None
    for figure, store, cells, growth in rows:
        name = figure if figure != previous else ""
        previous = figure
        values = [name, f"`{store}`", *_spread(cells, size_columns), growth]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the results (sorted keys off: the order is meaningful)."""
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report RESULTS.json``: print the table of a results file as Markdown."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    parser.add_argument("results", type=Path, help="a results JSON written by python -m benchmarks")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    print(render_markdown(*table_rows(results)))
    if "flatness" in results:
        print()
        print(flatness_text(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
