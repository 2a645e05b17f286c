"""The runnable examples work on a fresh machine: embedded server, offline demo model."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mongodb_session_manager.embedded import embedded_status

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# One characteristic line of each example's output: what it exists to demonstrate.
EXPECTED_OUTPUT = {
    "example_calculator_tool.py": "#1 assistant toolUse calculator({'expression': '6 * 7'})",
    "example_agent_config.py": "restored 2 messages; system prompt 'You answer customer questions in one sentence.'",
    "example_fastapi.py": "-> [demo model] Your name is Alice.  (8 messages in the session)",
    "example_fastapi_streaming.py": "assistant: [calling calculator] [demo model] The result is 42.",
    "example_stream_async.py": "assistant: [called calculator] [demo model] The result is 84.",
    "example_metadata_update.py": "'preferences': {'language': 'en', 'theme': 'dark'}}",
    "example_metadata_production.py": "metadata keys: ['archived', 'assigned_to', 'channel', 'customer_id',",
    "example_metadata_tool.py": "stored metadata: {'user_name': 'Alice', 'theme': 'dark'}",
    "example_metadata_hook.py": "5 x get_metadata(): 1 MongoDB read(s), 4 cache hits",
    "example_feedback_hook.py": "stored: [('down', 'Too slow'), ('up', 'Now it works')]",
    "example_performance.py": "Median ratio (per request / factory):",
    "example_snapshot_storage.py": "checkpoints: 3; restored the first: 2 messages",
    "example_encrypted_sessions.py": "raw document: 0 of 4 secrets in clear []",
}


# Credentials of an unrelated AWS account: they must never make an example pick Bedrock on its own.
UNRELATED_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAUNRELATEDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "unrelated-secret",
    "AWS_REGION": "us-east-1",
}


def run_example(name: str, cwd: Path, *args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "MONGODB_URI"}
    env["STRANDS_MODEL_PROVIDER"] = "demo"
    env.update(environment)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_quickstart_resumes_history_and_state_in_a_new_process(tmp_path, embedded_dir):
    # No STRANDS_MODEL_PROVIDER and AWS credentials in the environment: still the offline demo model.
    result = run_example(
        "quickstart.py",
        tmp_path,
        STRANDS_MODEL_PROVIDER="",
        MONGODB_SESSION_MANAGER_DATA_DIR=str(embedded_dir),
        **UNRELATED_AWS_CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    assert "Model: offline demo model (set STRANDS_MODEL_PROVIDER=" in result.stdout
    assert "started embedded development MongoDB server" in result.stderr
    assert "[demo model] The result is 84." in result.stdout
    assert "restored 6 messages and state {'favourite_number': 84}" in result.stdout
    assert "[demo model] Your name is Alice." in result.stdout
    assert 'tool call: calculator({"expression": "12 * (3 + 4)"})' in result.stdout
    pids = re.findall(r"process \d \(pid (\d+)", result.stdout)
    assert len(pids) == 2 and pids[0] != pids[1], result.stdout
    assert (embedded_dir / "data").is_dir()
    assert embedded_status(embedded_dir)["state"] == "running", "the embedded server outlives the example"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs_offline_and_shows_what_it_demonstrates(name, tmp_path, embedded_dir):
    result = run_example(name, tmp_path, MONGODB_SESSION_MANAGER_DATA_DIR=str(embedded_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "offline demo model" in result.stdout
    assert "started embedded development MongoDB server" in result.stderr
    assert EXPECTED_OUTPUT[name] in result.stdout, result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def test_every_example_script_is_run_by_the_tests():
    scripts = {path.name for path in EXAMPLES.glob("example_*.py")}
    assert scripts == set(EXPECTED_OUTPUT)
