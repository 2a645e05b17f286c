"""strands' own session tests, run against ``MongoDBSessionRepository``.

strands-agents ships its test suite only in its sdist, which is not copied into this repository: the
test fetches the sdist of the *installed* strands version from the package registry (cached under
``$XDG_CACHE_HOME/mongodb-session-manager/strands-sdist/<version>/``, default ``~/.cache``), extracts
its ``tests/`` tree and runs the session tests in a subprocess with the ``strands_adapter`` plugin,
which puts our repository where strands' tests use their in-memory, file and S3 repositories (see
``strands_adapter.py`` for what is substituted and which layout tests are deselected, and why).

Without a reachable registry (and no cached sdist) the test is skipped and says how to fetch it.
"""

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

DISTRIBUTION = "strands-agents"
ADAPTER_DIR = Path(__file__).resolve().parent
SESSION_TESTS = "tests/strands/session"

# Test module -> the fewest tests that must pass in it (strands-agents 1.62.0 has more: these only
# keep the run from passing vacuously, e.g. if the substitution or collection silently broke).
MIN_PASSED = {
    "test_repository_session_manager.py": 51,
    "test_file_session_manager.py": 20,
    "test_s3_session_manager.py": 20,
}

# Import name -> distribution: what strands' test tree imports for these modules (tests/conftest.py
# imports boto3 and moto; test_repository_session_manager.py has a pytest-asyncio test).
REQUIRED_MODULES = {"boto3": "boto3", "moto": "moto", "pytest_asyncio": "pytest-asyncio"}

PYTEST_INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
timeout = 120
"""


def _cache_dir(version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mongodb-session-manager" / "strands-sdist" / version


def _cached_sdist(directory: Path, version: str) -> Path | None:
    for candidate in sorted(directory.glob(f"strands[_-]agents-{version}.tar.gz")):
        if tarfile.is_tarfile(candidate):
            return candidate
    return None


def _download_commands(version: str, destination: Path) -> list[list[str]]:
    """pip in this environment if it has one, else pip run by uv (``uvx pip``)."""
    args = [
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        f"{DISTRIBUTION}=={version}",
        "-d",
        str(destination),
    ]
    commands = []
    if importlib.util.find_spec("pip") is not None:
        commands.append([sys.executable, "-m", "pip", *args])
    if uvx := shutil.which("uvx"):
        commands.append([uvx, "pip", *args])
    elif uv := shutil.which("uv"):
        commands.append([uv, "tool", "run", "pip", *args])
    return commands


def _fetch_sdist(version: str) -> Path:
    """Return the cached sdist of strands-agents ``version``, downloading it first if needed."""
    cache = _cache_dir(version)
    if sdist := _cached_sdist(cache, version):
        return sdist
    cache.mkdir(parents=True, exist_ok=True)
    commands = _download_commands(version, cache)
    failures = []
    for command in commands:
        with tempfile.TemporaryDirectory(dir=cache.parent) as staging:
            command = [*command[:-1], staging]
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
            except (OSError, subprocess.TimeoutExpired) as error:
                failures.append(f"{command[0]}: {error}")
                continue
            downloaded = _cached_sdist(Path(staging), version)
            if result.returncode == 0 and downloaded is not None:
                target = cache / downloaded.name
                os.replace(downloaded, target)  # atomic: a concurrent run never sees half a file
                return target
            failures.append(f"{' '.join(command[:3])} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    how = " ".join(commands[0]) if commands else f"pip download --no-deps --no-binary :all: {DISTRIBUTION}=={version}"
    pytest.skip(
        f"could not download the {DISTRIBUTION} {version} sdist (package registry unreachable?): "
        f"{'; '.join(failures) or 'neither pip nor uv is available'}. Fetch it once with: {how}"
    )


def _extract_tests(sdist: Path, destination: Path) -> Path:
    """Extract only the sdist's ``tests/`` tree into ``destination`` and return ``destination``."""
    with tarfile.open(sdist) as archive:
        members = []
        for member in archive.getmembers():
            parts = member.name.split("/")
            if len(parts) > 1 and parts[1] == "tests":
                member.name = "/".join(parts[1:])
                members.append(member)
        if not members:
            raise AssertionError(f"{sdist} has no tests/ directory")
        archive.extractall(destination, members=members, filter="data")
    (destination / "pytest.ini").write_text(PYTEST_INI)
    return destination


def _summary(output: str) -> Counter[str]:
    """Counts from pytest's closing summary line (``N passed, M deselected, ... in Xs``)."""
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed|errors?)\b.* in [\d.]+s", line)]
    if not lines:
        return Counter()
    return Counter({kind: int(count) for count, kind in re.findall(r"(\d+) ([a-z]+)", lines[-1])})


def _passed_per_module(junit: Path) -> Counter[str]:
    passed: Counter[str] = Counter()
    for case in ET.parse(junit).iter("testcase"):
        if not any(child.tag in {"failure", "error", "skipped"} for child in case):
            passed[case.get("classname", "").rsplit(".", 1)[-1] + ".py"] += 1
    return passed


@pytest.mark.contract
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("layout", ["embedded", "collection", "promoted", "encrypted"])
def test_strands_session_contract(mongo_uri: str, tmp_path: Path, layout: str) -> None:
    """strands' repository, file and S3 session tests pass with MongoDB storage in their place, in every layout.

    ``promoted`` is the embedded layout with ``max_embedded_messages=2``: agents move to the collection
    layout during the tests. ``encrypted`` is ``promoted`` with client-side field-level encryption (a local
    master key).
    """
    missing = [dist for module, dist in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        pytest.fail(f"strands' session tests need {', '.join(missing)} installed (dev dependencies)")

    version = importlib.metadata.version(DISTRIBUTION)
    root = _extract_tests(_fetch_sdist(version), tmp_path / "strands-tests")
    junit = tmp_path / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "strands_adapter",
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
        *(f"{SESSION_TESTS}/{module}" for module in MIN_PASSED),
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["MSM_CONTRACT_MONGODB_URI"] = mongo_uri
    env["MSM_CONTRACT_LAYOUT"] = layout
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ADAPTER_DIR), str(root), env.get("PYTHONPATH")]))
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=840, check=False)
    output = result.stdout + result.stderr
    print(output)

    counts = _summary(output)
    assert result.returncode == 0, f"strands' session tests failed (exit {result.returncode}):\n{output}"
    assert counts["failed"] == 0 and counts["errors"] == 0 and counts["error"] == 0, output
    passed = _passed_per_module(junit)
    assert counts["passed"] == sum(passed.values()), f"summary {dict(counts)} != junit {dict(passed)}"
    for module, minimum in MIN_PASSED.items():
        assert passed[module] >= minimum, f"only {passed[module]} tests passed in {module} (want >= {minimum})"
