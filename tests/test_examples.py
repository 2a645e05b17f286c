"""The runnable examples work on a fresh machine: embedded server, offline demo model."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "MONGODB_URI"}
    env["STRANDS_MODEL_PROVIDER"] = "demo"
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_quickstart_resumes_history_and_state_in_a_new_process(tmp_path):
    result = run_example("quickstart.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "started embedded development MongoDB server" in result.stderr
    assert "[demo model] The result is 84." in result.stdout
    assert "restored 6 messages and state {'favourite_number': 84}" in result.stdout
    assert "[demo model] Your name is Alice." in result.stdout
    assert (tmp_path / ".mongodb-session-manager" / "data").is_dir()
    assert not (tmp_path / ".mongodb-session-manager" / "server.json").exists()
