"""``mongodb-session-manager sessions ...`` run as a child process: output, exit codes, one-line errors."""

import json
import os
import pty
import subprocess
import sys

import pytest
from strands import Agent

from mongodb_session_manager import EncryptionSettings, MongoDBSessionManager, MongoDBSessionRepository
from mongodb_session_manager.demo_model import calculator
from mongodb_session_manager.encryption import KEY_ID_FIELD, generate_local_key, load_local_key, save_local_key
from mongodb_session_manager.testing import ScriptedModel

pytestmark = pytest.mark.slow  # every test starts the command line as a child process

COLLECTION = "sessions"


def run_cli(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command line with ``args`` (stdin: ``input``, else nothing; ``env`` added); return the process."""
    return subprocess.run(
        [sys.executable, "-m", "mongodb_session_manager", *args],
        capture_output=True,
        text=True,
        input=input if input is not None else "",
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def ok(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    completed = run_cli(*args, input=input, env=env)
    assert completed.returncode == 0, completed.stderr
    return completed


def one_line_error(completed: subprocess.CompletedProcess[str]) -> str:
    """Assert exit 1 with exactly one ``error: ...`` line on stderr and no traceback; return that line."""
    assert completed.returncode == 1, completed.stderr
    assert completed.stderr.count("\n") == 1 and completed.stderr.startswith("error: "), completed.stderr
    return completed.stderr.strip()


@pytest.fixture
def store_args(mongo_uri, database_name) -> list[str]:
    return ["--uri", mongo_uri, "--database", database_name, "--collection", COLLECTION]


@pytest.fixture
def copy_args(client, mongo_uri, database_name) -> list[str]:
    """The options of a second database (dropped afterwards)."""
    yield ["--uri", mongo_uri, "--database", f"{database_name}_copy", "--collection", COLLECTION]
    client.drop_database(f"{database_name}_copy")


def repository(client, database_name: str) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)


@pytest.fixture
def conversations(client, database_name) -> dict[tuple[str, str], list]:
    """Three sessions written by real agents (s-2 in the collection layout, with a tool call); their messages."""
    scripts = {
        ("s-1", "assistant"): ["Hello!", "Fine, thanks."],
        ("s-2", "assistant"): [{"tool": "calculator", "input": {"expression": "6*7"}}, "It is 42."],
        ("s-3", "translator"): ["Kaixo"],
        ("s-3", "support.v2"): ["Reset it", "Done"],
    }
    for (session_id, agent_id), script in scripts.items():
        manager = MongoDBSessionManager(
            session_id,
            client=client,
            database_name=database_name,
            collection_name=COLLECTION,
            message_storage="collection" if session_id == "s-2" else "embedded",
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
        if session_id == "s-1":
            manager.update_metadata({"tenant": "acme"})
    return {key: repository(client, database_name).list_messages(*key) for key in scripts}


# ----------------------------------------------------------------- help and usage


def test_help_lists_the_session_commands_with_examples():
    completed = ok("sessions", "--help")
    for command in ("list", "show", "export", "import", "delete", "erase", "prune"):
        assert f"mongodb-session-manager sessions {command}" in completed.stdout
    assert "sessions" in ok("--help").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sessions", "list", "--created-after", "yesterday"], "is not an ISO 8601 date"),
        (["sessions", "list", "--metadata", "tenant"], "is not KEY=VALUE or KEY:=JSON"),
        (["sessions", "list", "--limit", "0"], "Invalid value for '--limit'"),
        (["sessions", "import", "x.jsonl", "--on-conflict", "merge"], "Invalid value for '--on-conflict'"),
        (["sessions", "prune", "s-1", "--agent", "a"], "give a session id, --agent and --keep-last"),
        (["sessions", "prune", "--orphans", "s-1"], "--orphans takes no session id"),
        (["sessions", "export", "s-1", "--prefix", "s-"], "give session ids or filters, not both"),
        (["sessions", "delete"], "Missing argument 'ID...'"),
        (["sessions", "erase"], "Missing argument 'ID...'"),
        (["sessions", "export", "s-1", "--decrypt"], "--decrypt needs the master key"),
    ],
)
def test_bad_usage_exits_2_with_clicks_message(args, message):
    completed = run_cli(*args, "--uri", "mongodb://127.0.0.1:1")
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr
    assert completed.stdout == ""


def test_an_unreachable_server_is_one_line(conversations):
    completed = run_cli("sessions", "list", "--uri", "mongodb://user:secret@127.0.0.1:1/?serverSelectionTimeoutMS=300")
    line = one_line_error(completed)
    assert line.startswith("error: MongoDB at mongodb://127.0.0.1:1/ did not answer within 0.3 s")
    assert "secret" not in line


# ----------------------------------------------------------------- list and show


def test_list_prints_a_table_newest_first_and_pages_with_the_cursor(store_args, conversations):
    lines = ok("sessions", "list", *store_args).stdout.splitlines()
    assert lines[0].split() == ["SESSION", "CREATED", "UPDATED", "MESSAGES", "METADATA"]
    assert [line.split()[0] for line in lines[1:]] == ["s-3", "s-2", "s-1"]
    assert "translator:2 support.v2:4" in lines[1]
    assert "assistant:4" in lines[2]  # collection layout: counted in the same listing
    assert lines[3].endswith('{"tenant": "acme"}')

    first = json.loads(ok("sessions", "list", "--limit", "2", "--json", *store_args).stdout)
    assert [s["session_id"] for s in first["sessions"]] == ["s-3", "s-2"]
    assert first["sessions"][1]["message_counts"] == {"assistant": 4}
    assert first["sessions"][0]["created_at"].endswith("+00:00")
    cursor = first["next_cursor"]
    rest = json.loads(ok("sessions", "list", "--limit", "2", "--cursor", cursor, "--json", *store_args).stdout)
    assert [s["session_id"] for s in rest["sessions"]] == ["s-1"]
    assert rest["next_cursor"] is None
    text = ok("sessions", "list", "--limit", "2", *store_args).stdout
    assert text.splitlines()[-1] == f"more sessions: add --cursor {first['next_cursor']}"


def test_list_filters_by_prefix_and_indexed_metadata_and_refuses_other_fields(
    client, database_name, store_args, conversations
):
    assert ok("sessions", "list", "--prefix", "s-2", *store_args).stdout.splitlines()[1].startswith("s-2 ")
    client[database_name][COLLECTION].create_index("metadata.tenant")
    listed = json.loads(ok("sessions", "list", "--metadata", "tenant=acme", "--json", *store_args).stdout)
    assert [s["session_id"] for s in listed["sessions"]] == ["s-1"]

    line = one_line_error(run_cli("sessions", "list", "--metadata", "user:=42", *store_args))
    assert "user" in line


def test_list_and_export_filter_by_application(client, database_name, store_args, conversations):
    MongoDBSessionManager(
        session_id="s-app",
        client=client,
        database_name=database_name,
        collection_name=COLLECTION,
        application_name="billing",
    )
    listed = json.loads(ok("sessions", "list", "--application", "billing", "--json", *store_args).stdout)
    assert [(s["session_id"], s["application_name"]) for s in listed["sessions"]] == [("s-app", "billing")]
    exported = ok("sessions", "export", "--application", "billing", *store_args).stdout.splitlines()
    assert [json.loads(line)["session"]["_id"] for line in exported] == ["s-app"]


def test_show_prints_the_summary_and_every_agents_messages(store_args, conversations):
    lines = ok("sessions", "show", "s-2", *store_args).stdout.splitlines()
    assert lines[0] == "session s-2 (AGENT)"
    assert lines[2] == "metadata: -"
    assert lines[3] == "agent assistant: 4 message(s)"
    assert lines[4] == "  #0 user: question 0"
    assert lines[5].startswith('  #1 assistant: [toolUse calculator {"expression": "6*7"}]')
    assert lines[6].startswith("  #2 user: [toolResult success")
    assert lines[7] == "  #3 assistant: It is 42."

    report = json.loads(ok("sessions", "show", "s-3", "--json", *store_args).stdout)
    assert list(report["agents"]) == ["translator", "support.v2"]
    assert [m["message_id"] for m in report["agents"]["support.v2"]] == [0, 1, 2, 3]
    reply = report["agents"]["translator"][1]["message"]
    assert (reply["role"], reply["content"]) == ("assistant", [{"text": "Kaixo"}])


def test_show_of_an_unknown_session_is_one_line(database_name, store_args, conversations):
    assert one_line_error(run_cli("sessions", "show", "nope", *store_args)) == (
        f"error: unknown session 'nope' in {database_name}.{COLLECTION}"
    )


# ----------------------------------------------------------------- export and import


def test_export_to_a_file_then_import_into_another_database(
    client, database_name, store_args, copy_args, conversations, tmp_path
):
    path = tmp_path / "all.jsonl"

    exported = ok("sessions", "export", "-o", str(path), *store_args)
    assert exported.stdout == f"{database_name}.{COLLECTION} -> {path}: 3 sessions, 14 messages\n"
    assert len(path.read_text().splitlines()) == 3
    imported = ok("sessions", "import", str(path), *copy_args)

    assert (
        imported.stdout
        == f"{path} -> {copy_args[3]}.{COLLECTION}: 3 read, 3 imported, 0 replaced, 0 skipped, 0 failed\n"
    )
    for key, messages in conversations.items():
        assert repository(client, copy_args[3]).list_messages(*key) == messages
    again = json.loads(ok("sessions", "import", str(path), "--json", *copy_args).stdout)
    assert (again["read"], again["skipped"], again["imported"]) == (3, 3, 0)


def test_export_to_stdout_pipes_into_import_from_stdin(client, store_args, copy_args, conversations):
    exported = ok("sessions", "export", "s-2", "s-3", *store_args)
    assert exported.stderr.endswith("-> stdout: 2 sessions, 10 messages\n")

    report = json.loads(ok("sessions", "import", "-", "--json", *copy_args, input=exported.stdout).stdout)

    assert (report["read"], report["imported"], report["failed"]) == (2, 2, 0)
    assert repository(client, copy_args[3]).list_messages("s-2", "assistant") == conversations["s-2", "assistant"]


def test_export_of_an_unknown_session_writes_nothing(store_args, conversations, tmp_path):
    path = tmp_path / "out.jsonl"
    line = one_line_error(run_cli("sessions", "export", "s-1", "nope", "-o", str(path), *store_args))
    assert line == "error: Unknown session(s): nope"
    assert list(tmp_path.iterdir()) == []


def test_import_conflicts_and_bad_lines_exit_1_and_are_listed(store_args, conversations, tmp_path):
    path = tmp_path / "s-1.jsonl"
    ok("sessions", "export", "s-1", "-o", str(path), *store_args)
    path.write_text(path.read_text() + "not json\n")

    completed = run_cli("sessions", "import", str(path), "--on-conflict", "fail", *store_args)

    assert completed.returncode == 1
    assert completed.stdout.endswith(": 2 read, 0 imported, 0 replaced, 0 skipped, 2 failed\n")
    assert completed.stderr.splitlines() == [
        "  failed line 1 (s-1): Session s-1 already exists",
        completed.stderr.splitlines()[1],
    ]
    assert completed.stderr.splitlines()[1].startswith("  failed line 2: not a JSON line")
    again = run_cli("sessions", "import", str(path), "--on-conflict", "replace", "--json", *store_args)
    assert again.returncode == 1
    replaced = json.loads(again.stdout)
    assert (replaced["read"], replaced["replaced"], replaced["failed"]) == (2, 1, 1)


def test_import_of_a_missing_file_is_one_line(store_args, tmp_path):
    line = one_line_error(run_cli("sessions", "import", str(tmp_path / "none.jsonl"), *store_args))
    assert line == f"error: cannot read {tmp_path / 'none.jsonl'}: No such file or directory"


def read_terminal(*args: str) -> tuple[int, str]:
    """Run the command line on a pseudo-terminal; return its exit status and everything it printed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mongodb_session_manager", *args], stdout=terminal, stderr=terminal, close_fds=True
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
    return process.wait(timeout=120), output.decode()


def test_export_and_import_draw_a_progress_bar_on_a_terminal(store_args, copy_args, conversations, tmp_path):
    path = tmp_path / "all.jsonl"
    status, text = read_terminal("sessions", "export", "-o", str(path), *store_args)
    assert status == 0, text
    assert "Exporting" in text and "3/3" in text

    status, text = read_terminal("sessions", "import", str(path), *copy_args)
    assert status == 0, text
    size = path.stat().st_size
    assert "Importing" in text and f"{size}/{size}" in text

    quiet = ok("sessions", "export", "-o", str(path), *store_args)
    assert quiet.stderr == ""


# ----------------------------------------------------------------- delete and prune


def test_delete_needs_yes_without_a_terminal_and_refuses_unknown_sessions(
    client, database_name, store_args, conversations
):
    refused = run_cli("sessions", "delete", "s-1", *store_args)
    assert refused.returncode == 2
    assert "refusing to delete without --yes" in refused.stderr

    line = one_line_error(run_cli("sessions", "delete", "s-1", "nope", "--yes", *store_args))
    assert line.endswith("unknown session(s) in " + f"{database_name}.{COLLECTION}: nope; nothing was deleted")
    assert repository(client, database_name).read_session("s-1") is not None

    report = json.loads(ok("sessions", "delete", "s-1", "s-2", "--yes", "--json", *store_args).stdout)
    assert report["deleted"] == ["s-1", "s-2"]
    assert client[database_name][COLLECTION].distinct("_id") == ["s-3"]
    assert client[database_name][f"{COLLECTION}.messages"].count_documents({}) == 0  # s-2's messages went too


def test_prune_keeps_the_newest_messages(client, database_name, store_args, conversations):
    report = json.loads(
        ok("sessions", "prune", "s-3", "--agent", "support.v2", "--keep-last", "1", "--json", *store_args).stdout
    )

    assert report["deleted"] == 3
    assert (
        repository(client, database_name).list_messages("s-3", "support.v2") == conversations["s-3", "support.v2"][3:]
    )
    text = ok("sessions", "prune", "s-3", "--agent", "support.v2", "--keep-last", "1", *store_args).stdout
    assert text == "s-3/support.v2: 0 message(s) deleted, the 1 newest kept\n"
    assert one_line_error(run_cli("sessions", "prune", "nope", "--agent", "a", "--keep-last", "1", *store_args)) == (
        f"error: unknown session 'nope' in {database_name}.{COLLECTION}"
    )


def test_prune_orphans_removes_the_messages_of_vanished_sessions(client, database_name, store_args, conversations):
    client[database_name][COLLECTION].delete_one({"_id": "s-2"})  # as the TTL monitor would

    young = json.loads(ok("sessions", "prune", "--orphans", "--json", *store_args).stdout)
    assert (young["sessions"], young["messages"]) == (1, 0)  # within the default grace period
    report = json.loads(ok("sessions", "prune", "--orphans", "--older-than", "0", "--json", *store_args).stdout)

    assert (report["sessions"], report["messages"], report["files"]) == (1, 4, 0)
    assert client[database_name][f"{COLLECTION}.messages"].count_documents({}) == 0


# ----------------------------------------------------------------- encrypted sessions

SECRET = "SECRET-juniper-harbour"


@pytest.fixture
def key_file(tmp_path) -> str:
    """A local master key file, as an application would keep it."""
    return str(save_local_key(tmp_path / "master.key", generate_local_key()))


@pytest.fixture
def encrypted(client, database_name, key_file) -> EncryptionSettings:
    """Session "secret" written with encryption (key vault in the test's database) and a clear session "plain"."""
    settings = EncryptionSettings.local(load_local_key(key_file), key_vault_namespace=f"{database_name}.keyvault")
    for session_id, encryption in (("secret", settings), ("plain", None)):
        manager = MongoDBSessionManager(
            session_id, client=client, database_name=database_name, collection_name=COLLECTION, encryption=encryption
        )
        Agent(agent_id="a", model=ScriptedModel(["noted"]), session_manager=manager, callback_handler=None)(SECRET)
    return settings


def test_erase_needs_only_the_key_vault_and_leaves_the_session_listed_but_unreadable(
    client, database_name, store_args, key_file, encrypted
):
    vault = ["--key-vault", f"{database_name}.keyvault"]
    keys = ["--local-key-file", key_file, *vault]
    assert f"  #0 user: {SECRET}" in ok("sessions", "show", "secret", *keys, *store_args).stdout
    assert one_line_error(run_cli("sessions", "show", "secret", *store_args)) == (
        "error: session 'secret' is encrypted: give its master key with --local-key-file (and --key-vault)"
    )
    refused = run_cli("sessions", "erase", "secret", *vault, *store_args)
    assert refused.returncode == 2 and "refusing to erase keys without --yes" in refused.stderr

    report = json.loads(
        ok("sessions", "erase", "secret", "plain", "gone", "--yes", "--json", *vault, *store_args).stdout
    )

    assert report["keys_deleted"] == {"secret": 1, "plain": 0, "gone": 0}
    assert client[database_name]["keyvault"].count_documents({}) == 0
    listed = ok("sessions", "list", *store_args).stdout
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["plain", "secret"]
    error = (
        "error: session 'secret' cannot be decrypted: its data key 'session:secret' is not in the key vault "
        f"{vault[1]} ("
    )
    for env in ({}, {"MONGODB_SESSION_MANAGER_LOCAL_KEY_FILE": key_file}):
        arguments = vault if env else keys
        assert one_line_error(run_cli("sessions", "show", "secret", *arguments, *store_args, env=env)).startswith(error)
    assert ok("sessions", "erase", "secret", "--yes", *vault, *store_args).stdout == (
        f"secret: 0 data key(s) deleted from {database_name}.keyvault (none left: already erased, or never encrypted)\n"
    )


def test_export_keeps_the_ciphertext_unless_decrypt_is_given_with_the_key(
    client, database_name, store_args, copy_args, key_file, encrypted, tmp_path
):
    keys = ["--local-key-file", key_file, "--key-vault", f"{database_name}.keyvault"]
    kept = ok("sessions", "export", "secret", *store_args).stdout
    assert SECRET not in kept and '"subType": "06"' in kept

    path = tmp_path / "clear.jsonl"
    report = json.loads(
        ok("sessions", "export", "secret", "--decrypt", "-o", str(path), "--json", *keys, *store_args).stdout
    )

    assert (report["decrypted"], report["exported"]) == (True, 1)
    assert SECRET in path.read_text() and KEY_ID_FIELD not in path.read_text()
    ok("sessions", "import", str(path), *copy_args)
    assert f"  #0 user: {SECRET}" in ok("sessions", "show", "secret", *copy_args).stdout  # a clear session: no key
    ok("sessions", "import", "-", "--collection", "kept", *store_args[:4], input=kept)
    copied = ok("sessions", "show", "secret", *keys, *store_args[:4], "--collection", "kept").stdout
    assert f"  #0 user: {SECRET}" in copied  # the ciphertext reads back with the same key vault


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "error: cannot read the local key file"), (b"short", "a local master key must be 96 bytes, not 5 bytes")],
)
def test_a_bad_key_file_is_one_line(store_args, encrypted, tmp_path, content, message):
    path = tmp_path / "bad.key"
    if content is not None:
        path.write_bytes(content)
    assert message in one_line_error(run_cli("sessions", "show", "secret", "--local-key-file", str(path), *store_args))
