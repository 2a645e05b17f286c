"""Turn measured figures into ratios, one table (text and Markdown) and the results JSON."""

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
    "machine",
    "main",
    "render_markdown",
    "render_text",
    "table_rows",
    "versions",
    "write_json",
]

OURS = "mongodb"
_METRICS = ("time_ms", "store_ms", "server_ms", "round_trips", "bytes_sent", "bytes_received")
FIGURES = ("turn", "resume", "resume_window")
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
    return round(value / reference, 3)


def add_derived(results: dict[str, Any]) -> dict[str, Any]:
    """Add ``growth`` (largest size / smallest size) and ``ratios_to_mongodb`` to the results, in place."""
    sizes = [str(size) for size in results["meta"]["sizes"]]
    first, last = sizes[0], sizes[-1]
    growth: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for figure in FIGURES:
        growth[figure] = {}
        ratios[figure] = {}
        for store, by_size in results[figure].items():
            growth[figure][store] = {m: _ratio(by_size[last].get(m), by_size[first].get(m)) for m in _METRICS}
            if store == OURS:
                continue
            ratios[figure][store] = {
                size: {m: _ratio(by_size[size].get(m), results[figure][OURS][size].get(m)) for m in _METRICS}
                for size in sizes
            }
    growth["from_messages"], growth["to_messages"] = int(first), int(last)
    results["growth"] = growth
    results["ratios_to_mongodb"] = ratios
    concurrency = results.get("concurrency", {})
    for store, entry in concurrency.items():
        if store != OURS and OURS in concurrency:
            entry["ratio_to_mongodb"] = {
                "turns_per_s": _ratio(entry["turns_per_s"], concurrency[OURS]["turns_per_s"]),
                "p95_ms": _ratio(entry["p95_ms"], concurrency[OURS]["p95_ms"]),
            }
    return results


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


def table_rows(results: dict[str, Any]) -> tuple[list[str], list[Row]]:
    """The one table: header cells and rows, each value with its ratio to this library."""
    sizes = [str(size) for size in results["meta"]["sizes"]]
    header = ["figure", "store", *[f"{int(size):,} msgs" for size in sizes], f"growth {sizes[0]}->{sizes[-1]}"]
    rows: list[Row] = []
    figures = [
        ("turn", "time_ms", "turn: wall time (ms)", ""),
        ("turn", "store_ms", "turn: time in session store (ms)", ""),
        ("turn", "server_ms", "turn: of which MongoDB commands (ms)", ""),
        ("turn", "round_trips", "turn: round trips", ""),
        ("turn", "bytes_sent", "turn: KB sent", "KB"),
        ("turn", "bytes_received", "turn: KB received", "KB"),
        ("resume", "time_ms", "resume: wall time (ms)", ""),
        ("resume", "server_ms", "resume: of which MongoDB commands (ms)", ""),
        ("resume", "round_trips", "resume: round trips", ""),
        ("resume", "bytes_sent", "resume: KB sent", "KB"),
        ("resume", "bytes_received", "resume: KB received", "KB"),
        ("resume_window", "time_ms", "resume, 40-msg window: wall (ms)", ""),
        ("resume_window", "round_trips", "resume, 40-msg window: round trips", ""),
        ("resume_window", "bytes_received", "resume, 40-msg window: KB received", "KB"),
    ]
    for figure, metric, title, unit in figures:
        for store, by_size in results[figure].items():
            if all(by_size[size].get(metric) is None for size in sizes):
                continue
            if store == "memory" and metric != "time_ms":
                continue
            ours = results[figure].get(OURS, {})
            cells = [_cell(by_size[size].get(metric), ours.get(size, {}).get(metric), unit, store) for size in sizes]
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
            first, last = stateless.get(sizes[0]), stateless.get(sizes[-1])
            growth = _ratio(last[variant]["time_ms"], first[variant]["time_ms"]) if first and last else None
            rows.append((title, OURS, cells, _times(growth)))

    for store, entry in results.get("concurrency", {}).items():
        ratio = entry.get("ratio_to_mongodb", {})
        text = f"{entry['turns_per_s']:.1f} turns/s" + (f" ({_times(ratio['turns_per_s'])})" if ratio else "")
        text += f", p95 {_number(entry['p95_ms'])} ms" + (f" ({_times(ratio['p95_ms'])})" if ratio else "")
        title = f"{entry['threads']} threads, {entry['history_messages']}-msg sessions"
        rows.append((title, store, [text], ""))

    for case, entry in results.get("document_limit", {}).items():
        title = "16 MB limit: typical" if case == "typical" else "16 MB limit: 200 KB tool result/turn"
        size = entry.get("stored_bytes") or entry["predicted_bytes"]
        verified = {True: ", verified", False: ", NOT verified"}.get(entry.get("verified"), ", computed")
        text = f"{entry['messages']:,} messages ({entry['turns']:,} turns), {size / 1024 / 1024:.2f} MB{verified}"
        rows.append((title, OURS, [text], ""))
    return header, rows


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
