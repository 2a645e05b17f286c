"""The quickstart page prints what it says it prints, on every run: a second run starts from an empty session."""

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from test_snippets import _RUNNER, ROOT, parse_page

PAGE = ROOT / "docs" / "getting-started" / "quickstart.md"
RESTORED = "6 {'favourite_number': 84}"  # the comment of the page's print(len(agent.messages), agent.state.get())


@pytest.mark.slow
def test_the_quickstart_page_prints_the_same_counts_when_run_twice(tmp_path: Path, embedded_dir: Path):
    blocks = [block for block in parse_page(PAGE)[0] if block.illustrative is None]
    assert any(f"# {RESTORED}" in block.code for block in blocks), "the page no longer shows the count it prints"
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(json.dumps([asdict(block) for block in blocks]))
    env = {key: value for key, value in os.environ.items() if key not in ("MONGODB_URI", "STRANDS_MODEL_ID")}
    env.update(STRANDS_MODEL_PROVIDER="demo", MONGODB_SESSION_MANAGER_DATA_DIR=str(embedded_dir))
    for run in (1, 2):  # the same server both times: the second run finds the first one's sessions there
        result = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(blocks_file)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        assert RESTORED in result.stdout.splitlines(), f"run {run}:\n{result.stdout}"
