"""The benchmark harness keeps working: ``python -m benchmarks --quick`` runs and writes every figure.

Nothing here looks at wall time: the quick run only proves that every store (both message layouts of this library
included) and every figure is measured, that the 200 KB-tool-result conversation moves its agent out of the
session document without an error or a lost message, and that the JSON, the flatness check and the chart are written.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STORES = {"mongodb", "mongodb-collection", "file", "s3", "memory"}
PERSISTENT = STORES - {"memory"}
MONGODB = {"mongodb", "mongodb-collection"}
METRICS = {"time_ms", "store_ms", "server_ms", "server_cpu_ms", "round_trips", "bytes_sent", "bytes_received"}
TURN_METRICS = METRICS | {"append_ms", "server_cpu_per_append_ms"}
SIZES = ["10", "50"]
SNAPSHOT_STORES = {"mongodb", "file", "s3"}

pytestmark = pytest.mark.slow  # one benchmark run in a subprocess


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the quick benchmark once as a subprocess; return its output directory and stdout."""
    output = tmp_path_factory.mktemp("benchmarks")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output-dir", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return output, completed.stdout


def _results(output: Path) -> dict:
    files = list(output.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def test_quick_run_writes_every_store_and_figure(quick_run: tuple[Path, str]) -> None:
    output, _ = quick_run
    results = _results(output)

    assert set(results["stores"]) == STORES
    assert results["meta"]["quick"] is True
    assert [str(size) for size in results["meta"]["sizes"]] == SIZES
    assert {"cpu", "cores", "python"} <= set(results["meta"]["machine"])
    assert set(results["turn"]) == STORES
    assert set(results["resume"]) == PERSISTENT
    assert set(results["resume_window"]) == PERSISTENT
    for figure in ("turn", "resume", "resume_window"):
        for store, by_size in results[figure].items():
            assert list(by_size) == SIZES, (figure, store)
            for size, entry in by_size.items():
                assert set(entry) >= (TURN_METRICS if figure == "turn" else METRICS), (figure, store, size)
                assert entry["time_ms"] > 0, (figure, store, size)
                if store != "memory":
                    assert entry["round_trips"] > 0, (figure, store, size)
                    assert entry["bytes_received"] is not None, (figure, store, size)
                if store in MONGODB and not os.environ.get("MONGODB_URI"):  # the embedded server: CPU is read
                    assert entry["server_cpu_ms"] > 0, (figure, store, size)
        assert set(results["growth"][figure]) == set(results[figure])
        assert set(results["ratios_to_mongodb"][figure]) == set(results[figure]) - {"mongodb"}
    for store in MONGODB | {"file", "s3"}:
        for size in SIZES:
            turn = results["turn"][store][size]
            assert turn["append_ms"] > 0, (store, size)
            if store in MONGODB and not os.environ.get("MONGODB_URI"):
                assert turn["server_cpu_per_append_ms"] > 0, (store, size)
    for size in SIZES:  # the collection layout keeps messages out of the session document
        embedded, collection = (results["resume"][store][size]["session_document_bytes"] for store in sorted(MONGODB))
        assert collection < embedded, size
    flatness = results["flatness"]
    assert (flatness["from_messages"], flatness["to_messages"]) == (10, 50)
    for store in MONGODB:
        assert set(flatness[store]) >= {"append_ms", "server_cpu_per_append_ms", "within_limit"}, store

    for size in SIZES:
        entry = results["stateless"][size]
        assert entry["factory"]["time_ms"] > 0 and entry["own_connection"]["time_ms"] > 0
        assert entry["ratio_own_to_factory"] > 0
        assert entry["factory"]["connections_opened"] == 0
        assert entry["own_connection"]["connections_opened"] >= 1

    assert set(results["concurrency"]) == PERSISTENT
    for store, entry in results["concurrency"].items():
        assert entry["threads"] == 8, store
        assert entry["turns_per_s"] > 0 and entry["p95_ms"] > 0, store

    limits = results["document_limit"]
    assert set(limits) == {"typical", "tool_result_200kb"}
    for case, entry in limits.items():
        assert 0 < entry["predicted_bytes"] <= 16 * 1024 * 1024, case
        assert entry["messages"] > 0 and entry["messages"] % 2 == 0, case
    assert limits["tool_result_200kb"]["verified"] is True  # filled to 16 MB, the next turn moved the agent out
    assert limits["tool_result_200kb"]["next_turn_promoted"] is True
    assert limits["typical"]["messages"] > limits["tool_result_200kb"]["messages"]


def test_quick_run_moves_the_200kb_conversation_out_without_losing_a_message(quick_run: tuple[Path, str]) -> None:
    output, _ = quick_run
    long = _results(output)["long_conversation"]

    assert long["tool_result_bytes"] == 200 * 1024
    assert long["completed"] is True
    assert long["messages_reached"] == long["target_messages"] == 80
    assert long["promoted"] is True
    assert long["promoted_at_messages"] == long["max_embedded_messages"] == 40
    assert long["promotion_trigger"] == "max_embedded_messages"
    assert long["stored"] == {"embedded": 0, "documents": 80, "distinct_ids": 80}
    assert long["exactly_once"] is True
    assert long["before_promotion"]["turns"] + 1 + long["after_promotion"]["turns"] == long["turns"] == 20
    assert len(long["store_ms_per_turn"]) == 20


def test_quick_run_measures_snapshot_save_and_restore_on_three_storages(quick_run: tuple[Path, str]) -> None:
    output, stdout = quick_run
    results = _results(output)

    assert set(results["snapshot_stores"]) == SNAPSHOT_STORES
    for figure, moved in (("snapshot_save", "bytes_sent"), ("snapshot_restore", "bytes_received")):
        assert set(results[figure]) == SNAPSHOT_STORES, figure
        for store, by_size in results[figure].items():
            assert list(by_size) == SIZES, (figure, store)
            for size, entry in by_size.items():
                assert entry["time_ms"] > 0, (figure, store, size)
                assert entry["round_trips"] == 1, (figure, store, size)  # one blob written or read
                assert entry[moved] >= entry["snapshot_bytes"] > 0, (figure, store, size)
                if store == "mongodb" and not os.environ.get("MONGODB_URI"):
                    assert entry["server_cpu_ms"] > 0, (figure, store, size)
        small, large = (results[figure]["file"][size]["snapshot_bytes"] for size in SIZES)
        assert large > small, figure  # the whole history is in the snapshot
        assert set(results["growth"][figure]) == SNAPSHOT_STORES
        assert set(results["ratios_to_mongodb"][figure]) == SNAPSHOT_STORES - {"mongodb"}
    assert "snapshot save: wall time (ms)" in stdout
    assert "snapshot restore: KB received" in stdout


def test_quick_run_prints_one_table(quick_run: tuple[Path, str]) -> None:
    _, stdout = quick_run
    assert "turn: round trips" in stdout
    assert "turn: server CPU per append (ms)" in stdout
    assert "resume: wall time (ms)" in stdout
    assert "16 MB document" in stdout
    assert "200 KB tool result/turn, default layout" in stdout
    assert "collection layout (mongodb-collection), 50 vs 10 messages" in stdout
    assert "per-append figures within 2x" in stdout


def test_quick_run_draws_the_chart(quick_run: tuple[Path, str]) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed (it belongs in the dev dependency group)")
    output, _ = quick_run
    charts = list(output.glob("*.png"))
    assert len(charts) == 1
    assert charts[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _results(output)["meta"]["chart"] == charts[0].name


def test_resume_cpu_measurement_rebuilds_equal_messages_and_prints_the_ratio() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.resume_cpu", "--messages", "20", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]  # it raises when the two rebuilds disagree
    assert "SessionMessage.from_dict" in completed.stdout
    assert "ratio" in completed.stdout


def test_encryption_cost_measurement_adds_no_round_trip_and_prints_the_ratios() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.encryption_cost", "--messages", "20", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]  # it raises when encryption adds a round trip
    lines = completed.stdout.splitlines()
    assert any(line.split()[:2] == ["append", "(create_message)"] and line.endswith("x") for line in lines)
    assert any(line.split()[:2] == ["resume", "(list_messages)"] and line.endswith("x") for line in lines)
    assert "cipher alone: encrypt" in completed.stdout
    assert "round trips for 20 messages: append 20 clear / 20 encrypted (+0 on the key vault)" in completed.stdout
