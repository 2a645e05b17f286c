"""The benchmark harness keeps working: ``python -m benchmarks --quick`` runs and writes every figure.

Nothing here looks at wall time: the quick run only proves that every store and figure is measured and that the
JSON and the chart are written.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STORES = {"mongodb", "file", "s3", "memory"}
PERSISTENT = STORES - {"memory"}
METRICS = {"time_ms", "store_ms", "server_ms", "round_trips", "bytes_sent", "bytes_received"}
SIZES = ["10", "50"]

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
                assert set(entry) >= METRICS, (figure, store, size)
                assert entry["time_ms"] > 0, (figure, store, size)
                if store != "memory":
                    assert entry["round_trips"] > 0, (figure, store, size)
                    assert entry["bytes_received"] is not None, (figure, store, size)
        assert set(results["growth"][figure]) == set(results[figure])
        assert set(results["ratios_to_mongodb"][figure]) == set(results[figure]) - {"mongodb"}

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
    assert limits["tool_result_200kb"]["verified"] is True
    assert limits["typical"]["messages"] > limits["tool_result_200kb"]["messages"]


def test_quick_run_prints_one_table(quick_run: tuple[Path, str]) -> None:
    _, stdout = quick_run
    assert "turn: round trips" in stdout
    assert "resume: wall time (ms)" in stdout
    assert "16 MB limit" in stdout


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
