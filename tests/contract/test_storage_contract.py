"""strands' own storage and snapshot-session tests, run against ``MongoDBStorage``.

As ``test_strands_contract.py`` does for the session tests (and with its helpers): the strands-agents sdist of
the installed version is fetched from the package registry (or its cache), its ``tests/`` tree extracted, and
the modules below run in a subprocess with the ``storage_adapter`` plugin, which puts ``MongoDBStorage`` where
strands' tests use InMemoryStorage, LocalFileStorage and S3Storage (and our index-backed search where the
keyword-search tests use the keyword strategy). The deselected tests and their reasons are listed in
``storage_adapter.DESELECTED`` and printed at the end of each run.
"""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from test_strands_contract import (
    ADAPTER_DIR,
    DISTRIBUTION,
    REQUIRED_MODULES,
    _extract_tests,
    _fetch_sdist,
    _summary,
)

# Suite -> (paths in the sdist's tests/ tree, {module: the fewest tests that must pass in it}). strands-agents
# 1.62.0 passes exactly these many here; the minimums keep a run from passing vacuously.
SUITES: dict[str, tuple[list[str], dict[str, int]]] = {
    "storage": (
        ["tests/strands/storage"],
        {
            "test_storage.py": 32,
            "test_in_memory_storage.py": 21,
            "test_local_file_storage.py": 21,
            "test_s3_storage.py": 20,
            "test_keyword.py": 21,
        },
    ),
    "snapshot": (
        ["tests/strands/session/test_snapshot_session_manager.py"],
        {"test_snapshot_session_manager.py": 116},
    ),
}


def _passed_per_file(junit: Path) -> Counter[str]:
    """Tests passed per module file (a test class's cases count for the module that holds the class)."""
    passed: Counter[str] = Counter()
    for case in ET.parse(junit).iter("testcase"):
        if not any(child.tag in {"failure", "error", "skipped"} for child in case):
            parts = case.get("classname", "").split(".")
            passed[next((part for part in reversed(parts) if part.startswith("test_")), "?") + ".py"] += 1
    return passed


@pytest.mark.contract
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("encrypted", [False, True], ids=["clear", "encrypted"])
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_strands_storage_contract(mongo_uri: str, tmp_path: Path, suite: str, encrypted: bool) -> None:
    """strands' storage protocol and snapshot-session tests pass with MongoDBStorage as the storage.

    ``encrypted``: every storage encrypts its blobs (client-side field-level encryption, a local master key).
    """
    missing = [dist for module, dist in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        pytest.fail(f"strands' tests need {', '.join(missing)} installed (dev dependencies)")

    paths, minimums = SUITES[suite]
    version = importlib.metadata.version(DISTRIBUTION)
    root = _extract_tests(_fetch_sdist(version), tmp_path / "strands-tests")
    junit = tmp_path / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "storage_adapter",
        "-p",
        "no:cacheprovider",
        "-c",
        str(root / "pytest.ini"),
        "--rootdir",
        str(root),
        "-o",
        "addopts=",
        "-rfEX",
        f"--junitxml={junit}",
        *paths,
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["MSM_CONTRACT_MONGODB_URI"] = mongo_uri
    env["MSM_CONTRACT_ENCRYPTED"] = "1" if encrypted else "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ADAPTER_DIR), str(root), env.get("PYTHONPATH")]))
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=840, check=False)
    output = result.stdout + result.stderr
    print(output)

    counts = _summary(output)
    assert result.returncode == 0, f"strands' {suite} tests failed (exit {result.returncode}):\n{output}"
    assert counts["failed"] == 0 and counts["errors"] == 0 and counts["error"] == 0, output
    passed = _passed_per_file(junit)
    assert counts["passed"] == sum(passed.values()), f"summary {dict(counts)} != junit {dict(passed)}"
    for module, minimum in minimums.items():
        assert passed[module] >= minimum, f"only {passed[module]} tests passed in {module} (want >= {minimum})"
