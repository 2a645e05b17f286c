"""The data-model page shows the document the library really stores, so it cannot drift from the code.

``docs/architecture/data-model.generated.json`` is written by ``docs/scripts/generate_data_model.py``; this test
runs the script into a temporary file and compares the structure (every key path and the JSON type at it) with the
committed file. Values such as timestamps, ids and the viewer password differ from run to run and are not compared.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "scripts" / "generate_data_model.py"
COMMITTED = ROOT / "docs" / "architecture" / "data-model.generated.json"
PAGE = ROOT / "docs" / "architecture" / "data-model.md"


def key_paths(value: Any, path: str = "") -> dict[str, str]:
    """Map every path in a JSON value (``agents.support.messages[0].message_id``) to its JSON type."""
    if isinstance(value, dict):
        paths = {path or "$": "object"}
        for key, child in value.items():
            paths.update(key_paths(child, f"{path}.{key}" if path else key))
        return paths
    if isinstance(value, list):
        paths = {path: "array"}
        for index, child in enumerate(value):
            paths.update(key_paths(child, f"{path}[{index}]"))
        return paths
    kind = "null" if value is None else {bool: "boolean", str: "string", int: "number", float: "number"}[type(value)]
    return {path: kind}


def regenerate(output: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(output)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(output.read_text())


@pytest.mark.slow
def test_generated_document_has_the_structure_of_the_committed_one(tmp_path: Path):
    fresh = key_paths(regenerate(tmp_path / "data-model.json"))
    committed = key_paths(json.loads(COMMITTED.read_text()))
    missing = sorted(committed.keys() - fresh.keys())
    added = sorted(fresh.keys() - committed.keys())
    changed = sorted(path for path in committed.keys() & fresh.keys() if committed[path] != fresh[path])
    assert not (missing or added or changed), (
        "the stored document changed: rerun `uv run python docs/scripts/generate_data_model.py` and review the page\n"
        f"missing: {missing}\nadded: {added}\nchanged type: {changed}"
    )


def test_committed_document_shows_what_the_page_promises():
    document = json.loads(COMMITTED.read_text())
    agents = document["agents"]
    assert set(agents) == {"support", "translator%2Ev2"}  # two agents, one with an escaped dotted id
    assert agents["translator%2Ev2"]["agent_data"]["agent_id"] == "translator.v2"
    contents = [block for message in agents["support"]["messages"] for block in message["message"]["content"]]
    assert any("toolUse" in block for block in contents) and any("toolResult" in block for block in contents)
    assert any("event_loop_metrics" in message for message in agents["support"]["messages"])
    assert document["metadata"] and document["feedbacks"]
    assert "$date" in document["created_at"]  # relaxed Extended JSON: real BSON dates
    assert len(document["session_viewer_password"]) == 32


def test_page_includes_the_generated_document():
    assert '--8<-- "architecture/data-model.generated.json"' in PAGE.read_text()
