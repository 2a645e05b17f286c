"""The AWS examples run on a fresh machine: their own moto server, the embedded MongoDB, exit code 0."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AWS_CONFIGURATION = (
    "MONGODB_URI",
    "AWS_ENDPOINT_URL",
    "FEEDBACK_TOPIC_ARN_GOOD",
    "FEEDBACK_TOPIC_ARN_BAD",
    "FEEDBACK_TOPIC_ARN_NEUTRAL",
    "METADATA_QUEUE_URL",
    "WEBSOCKET_API_ENDPOINT",
    "WEBSOCKET_CONNECTION_ID",
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]  # each example runs in its own process


@pytest.fixture(autouse=True)
def _own_embedded_server(embedded_dir, monkeypatch):
    """Each example starts its own embedded server, as on a fresh machine; it is stopped after the test."""
    monkeypatch.setenv("MONGODB_SESSION_MANAGER_DATA_DIR", str(embedded_dir))


def run_example(name: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in AWS_CONFIGURATION}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)], cwd=cwd, env=env, capture_output=True, text=True, timeout=150
    )


def test_feedback_sns_example_prints_an_alert_per_topic(tmp_path):
    result = run_example("aws_feedback_sns.py", tmp_path)

    assert result.returncode == 0, result.stderr
    assert "starting a local moto server" in result.stdout
    assert "started embedded development MongoDB server" in result.stderr
    assert "stored 3 feedbacks" in result.stdout
    for topic, rating in (("good", "positive"), ("bad", "negative"), ("neutral", "neutral")):
        assert f"--- topic feedback-{topic} (rating attribute: {rating})" in result.stdout
    assert "Subject: [DEMO] URGENT: Virtual Agents Feedback negative on session aws-feedback-" in result.stdout
    assert "🚨 NEGATIVE FEEDBACK ALERT 🚨" in result.stdout
    assert result.stdout.count("Password: ") == 3


def test_metadata_sqs_example_prints_the_selected_fields_that_arrived(tmp_path):
    result = run_example("aws_metadata_sqs.py", tmp_path)

    assert result.returncode == 0, result.stderr
    assert "starting a local moto server" in result.stdout
    assert 'update {"status": "processing", "priority": "high"}' in result.stdout
    assert 'update {"agent_state": "thinking"}' in result.stdout
    assert 'delete {"priority": null}' in result.stdout
    assert "internal_data" not in result.stdout.split("Messages on", 1)[1]


def test_metadata_websocket_example_prints_the_frames_posted_to_the_connection(tmp_path):
    result = run_example("aws_metadata_websocket.py", tmp_path)

    assert result.returncode == 0, result.stderr
    assert "starting a local moto server" in result.stdout
    frames = result.stdout.split("Frames posted to connection", 1)[1]
    assert "update {'status': 'processing', 'progress': 10, 'agent_state': 'thinking'}" in frames
    assert "update {'progress': 100, 'status': 'done'}" in frames
    assert "delete {'agent_state': None}" in frames
    assert "not pushed" not in frames
