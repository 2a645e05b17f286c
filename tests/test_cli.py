"""The ``mongodb-session-manager`` command line, run as a child process (``python -m mongodb_session_manager``)."""

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionRepository, __version__
from mongodb_session_manager.demo_model import calculator
from mongodb_session_manager.testing import ScriptedModel

pytestmark = pytest.mark.slow  # every test starts the command line as a child process

COLLECTION = "sessions"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line with ``args``; return the finished process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "mongodb_session_manager", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def store_args(mongo_uri, database_name) -> list[str]:
    """The options that point the command line at this test's collection."""
    return ["--uri", mongo_uri, "--database", database_name, "--collection", COLLECTION]


@pytest.fixture
def conversations(client, database_name) -> dict[tuple[str, str], list]:
    """Three sessions written by real agents (one with two agents, one with a tool call); their messages."""
    scripts = {
        ("s-1", "assistant"): ["Hello!", "Fine, thanks."],
        ("s-2", "assistant"): [{"tool": "calculator", "input": {"expression": "6*7"}}, "It is 42."],
        ("s-3", "translator"): ["Kaixo"],
        ("s-3", "support.v2"): ["Reset it", "Done"],
    }
    for (session_id, agent_id), script in scripts.items():
        manager = MongoDBSessionManager(
            session_id, client=client, database_name=database_name, collection_name=COLLECTION
        )
        agent = Agent(
            agent_id=agent_id,
            model=ScriptedModel(script),
            tools=[calculator],
            session_manager=manager,
            callback_handler=None,
        )
        for turn in range(len([item for item in script if isinstance(item, str)])):
            agent(f"question {turn}")
    return {key: stored_messages(client, database_name, *key) for key in scripts}


def stored_messages(client, database_name: str, session_id: str, agent_id: str) -> list:
    """Read an agent's messages through the library, whatever their layout."""
    repository = MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)
    return repository.list_messages(session_id, agent_id)


def raw_collections(client, database_name: str) -> dict[str, list[bytes]]:
    """The BSON bytes of every document of every collection of the database, in ``_id`` order."""
    database = client[database_name]
    return {
        name: [bytes(batch) for batch in database[name].find_raw_batches(sort=[("_id", 1)])]
        for name in sorted(database.list_collection_names())
    }


def migrate(store_args: list[str], *args: str) -> dict:
    """Run ``migrate --json`` and return its report."""
    completed = run_cli("migrate", *args, "--json", *store_args)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    return json.loads(completed.stdout)


# ----------------------------------------------------------------- help and usage


def test_help_of_the_group_lists_migrate_and_shows_an_example():
    completed = run_cli("--help")
    assert completed.returncode == 0
    assert "migrate" in completed.stdout
    assert "Example:" in completed.stdout
    assert "mongodb-session-manager migrate --to collection" in completed.stdout


def test_help_of_migrate_shows_examples_and_the_defaults():
    completed = run_cli("migrate", "--help")
    assert completed.returncode == 0
    assert "mongodb-session-manager migrate --to embedded --session s-1" in completed.stdout
    words = " ".join(completed.stdout.split())
    assert "[default: database_name]" in words
    assert "[default: collection_name]" in words


def test_the_console_script_runs_the_same_command_line():
    script = Path(sys.executable).with_name("mongodb-session-manager")
    completed = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    assert completed.stdout == f"mongodb-session-manager, version {__version__}\n"


def test_an_unknown_layout_is_a_usage_error():
    completed = run_cli("migrate", "--to", "sideways")
    assert completed.returncode == 2
    assert "Invalid value for '--to'" in completed.stderr
    assert completed.stdout == ""


def test_migrate_without_to_is_a_usage_error():
    completed = run_cli("migrate", "--uri", "mongodb://127.0.0.1:1")
    assert completed.returncode == 2
    assert "Missing option '--to'" in completed.stderr


# ----------------------------------------------------------------- failures


def test_an_unreachable_server_fails_with_one_line_within_the_cli_timeout():
    completed = run_cli("migrate", "--to", "collection", "--uri", "mongodb://user:secret@127.0.0.1:1")
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [completed.stderr.strip()]
    assert completed.stderr.startswith("error: MongoDB at mongodb://127.0.0.1:1 did not answer within 5 s (")
    assert "secret" not in completed.stderr
    assert "Traceback" not in completed.stderr


def test_the_uri_timeout_wins_and_debug_shows_the_traceback():
    uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"
    completed = run_cli("migrate", "--to", "collection", "--uri", uri, "--debug")
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr
    assert "StorageUnavailableError: MongoDB at mongodb://127.0.0.1:1/ did not answer within 0.2 s" in completed.stderr


# ----------------------------------------------------------------- migrate


def test_migrate_to_collection_and_back_keeps_every_message(client, database_name, store_args, conversations):
    to_collection = migrate(store_args, "--to", "collection")
    assert to_collection | {"failures": []} == {
        "to": "collection",
        "dry_run": False,
        "namespace": f"{database_name}.{COLLECTION}",
        "seen": 3,
        "migrated": 3,
        "already_in_place": 0,
        "failed": 0,
        "failures": [],
    }
    assert client[database_name][f"{COLLECTION}.messages"].count_documents({}) == sum(map(len, conversations.values()))
    for key, messages in conversations.items():
        assert stored_messages(client, database_name, *key) == messages

    back = migrate(store_args, "--to", "embedded")
    assert (back["seen"], back["migrated"], back["already_in_place"], back["failed"]) == (3, 3, 0, 0)
    assert client[database_name][f"{COLLECTION}.messages"].count_documents({}) == 0
    for key, messages in conversations.items():
        assert stored_messages(client, database_name, *key) == messages


def test_a_second_run_finds_everything_in_place(client, database_name, store_args, conversations):
    migrate(store_args, "--to", "collection")
    before = raw_collections(client, database_name)

    again = migrate(store_args, "--to", "collection")

    assert (again["seen"], again["migrated"], again["already_in_place"], again["failed"]) == (3, 0, 3, 0)
    assert raw_collections(client, database_name) == before


def test_dry_run_changes_nothing(client, database_name, store_args, conversations):
    before = raw_collections(client, database_name)

    report = migrate(store_args, "--to", "collection", "--dry-run")

    assert report["dry_run"] is True
    assert (report["seen"], report["migrated"], report["already_in_place"], report["failed"]) == (3, 3, 0, 0)
    assert raw_collections(client, database_name) == before


def test_session_option_migrates_only_the_named_sessions(client, database_name, store_args, conversations):
    report = migrate(store_args, "--to", "collection", "--session", "s-1", "--session", "s-3")
    assert (report["seen"], report["migrated"], report["failed"]) == (2, 2, 0)

    rest = migrate(store_args, "--to", "collection")
    assert (rest["seen"], rest["migrated"], rest["already_in_place"]) == (3, 1, 2)
    for key, messages in conversations.items():
        assert stored_messages(client, database_name, *key) == messages


def test_an_unknown_session_is_a_failure_reported_in_the_summary(store_args, conversations):
    completed = run_cli("migrate", "--to", "collection", "--session", "nope", "--session", "s-1", *store_args)

    assert completed.returncode == 1
    assert completed.stdout.endswith("2 sessions seen, 1 migrated, 0 already in place, 1 failed\n")
    assert completed.stderr == "  failed nope: Session nope does not exist\n"


def test_json_report_lists_the_failures(store_args, conversations):
    completed = run_cli("migrate", "--to", "collection", "--session", "nope", "--json", *store_args)

    assert completed.returncode == 1
    report = json.loads(completed.stdout)
    assert (report["seen"], report["migrated"], report["failed"]) == (1, 0, 1)
    assert report["failures"] == [{"session_id": "nope", "error": "Session nope does not exist"}]


def test_human_output_is_a_summary_without_progress_bar_when_not_on_a_terminal(store_args, conversations):
    completed = run_cli("migrate", "--to", "collection", *store_args)

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.splitlines() == [
        f"{store_args[3]}.{COLLECTION} -> collection: 3 sessions seen, 3 migrated, 0 already in place, 0 failed"
    ]


def test_progress_bar_is_drawn_on_a_terminal(store_args, conversations):
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mongodb_session_manager", "migrate", "--to", "collection", *store_args],
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal (EIO on Linux)
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0
    text = output.decode()
    assert "Migrating" in text
    assert "3/3" in text
    assert "3 sessions seen, 3 migrated" in text
