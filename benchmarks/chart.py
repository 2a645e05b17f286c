"""The PNG chart: cost vs conversation length, one line per store, and the long conversation (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["matplotlib_available", "write_chart"]

_COLORS = {
    "mongodb": "#13aa52",
    "mongodb-collection": "#1f5fbf",
    "file": "#7a5195",
    "s3": "#ef5675",
    "memory": "#999999",
}
_NAMES = {
    "mongodb": "this library, embedded (default)",
    "mongodb-collection": "this library, collection layout",
    "file": "strands File",
    "s3": "strands S3 (moto)",
    "memory": "no store",
}


def matplotlib_available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


_STYLES = {"turn": "-", "resume": "--", "resume_window": ":", "server": "-."}
_DASH_DOT = ("server_ms", "server_cpu_per_append_ms")
_FIGURES = ("turn", "resume", "resume_window")
_PANELS: list[tuple[str, list[tuple[str, str]], float]] = [
    ("Turn: wall time (ms), incl. strands' own cost", [("turn", "time_ms")], 1),
    ("Turn: time in the store (ms); dash-dot: MongoDB commands", [("turn", "store_ms"), ("turn", "server_ms")], 1),
    (
        "Per append: store time (ms); dash-dot: server CPU (ms)",
        [("turn", "append_ms"), ("turn", "server_cpu_per_append_ms")],
        1,
    ),
    ("Resume, whole history: wall time (ms)", [("resume", "time_ms")], 1),
    ("Resume, strands' default 40-msg window: wall time (ms)", [("resume_window", "time_ms")], 1),
    ("Round trips: turn (solid), resume (dashed), window (dotted)", [(f, "round_trips") for f in _FIGURES], 1),
    ("KB received: turn (solid), resume (dashed), window (dotted)", [(f, "bytes_received") for f in _FIGURES], 1024),
]


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Draw log-log panels of cost against conversation length, one colour per store, and the long conversation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [int(size) for size in results["meta"]["sizes"]]
    figure, axes = plt.subplots(2, 4, figsize=(21, 9))
    panels = list(axes.flat)
    for axis, (title, series, scale) in zip(panels, _PANELS, strict=False):
        _size_panel(axis, results, sizes, title, series, scale)
    _long_conversation_panel(panels[len(_PANELS)], results.get("long_conversation"))
    meta = results["meta"]
    machine = meta["machine"]
    figure.suptitle(
        f"mongodb-session-manager benchmarks, {meta['date']}: {machine['cores']} cores ({machine['cpu']}); "
        f"MongoDB: {meta['mongodb']}",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _size_panel(
    axis: Any, results: dict[str, Any], sizes: list[int], title: str, series: list[tuple[str, str]], scale: float
) -> None:
    """One log-log panel: a metric against the history length, one colour per store."""
    labelled: set[str] = set()
    for figure_name, metric in series:
        for store, by_size in results.get(figure_name, {}).items():
            if store == "memory" and metric != "time_ms":
                continue
            points = [(n, by_size.get(str(n), {}).get(metric)) for n in sizes]
            points = [(n, v / scale) for n, v in points if v is not None and v > 0]
            if not points:
                continue
            axis.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                _STYLES["server" if metric in _DASH_DOT else figure_name],
                marker="o",
                markersize=4,
                color=_COLORS.get(store),
                label=None if store in labelled else _NAMES.get(store, store),
            )
            labelled.add(store)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(sizes)
    axis.set_xticklabels([f"{n:,}" for n in sizes], fontsize=8)
    axis.minorticks_off()
    axis.set_xlabel("messages in the conversation")
    axis.set_title(title, fontsize=10)
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize=8)


def _long_conversation_panel(axis: Any, long: dict[str, Any] | None) -> None:
    """Store time of every turn of the 200 KB-tool-result conversation, with the move to the collection marked."""
    from matplotlib.ticker import FuncFormatter

    if not long:
        axis.set_visible(False)
        return
    per_turn = long["store_ms_per_turn"]
    messages = [(index + 1) * 4 for index in range(len(per_turn))]
    axis.plot(messages, per_turn, "-", color=_COLORS["mongodb"], linewidth=1, label="store time per turn (ms)")
    if long.get("promoted_at_messages"):
        axis.axvline(
            long["promoted_at_messages"],
            color=_COLORS["mongodb-collection"],
            linestyle="--",
            label=f"moved to the collection ({long['promotion_trigger']})",
        )
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,g}"))
    axis.set_xlabel("messages stored (default layout, nothing configured)")
    title = f"{long['tool_result_bytes'] // 1024} KB tool result per turn: store time per turn (ms)"
    axis.set_title(title, fontsize=10)
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize=8)
