"""pytest plugin that runs strands' own session tests against ``MongoDBSessionRepository``.

Loaded with ``-p strands_adapter`` by ``test_strands_contract.py`` in a subprocess whose rootdir is
the ``tests/`` tree of the strands-agents sdist (fetched from the package registry at test time, never
vendored here). It

* replaces ``tests.fixtures.mock_session_repository.MockedSessionRepository`` (the in-memory
  repository strands' ``test_repository_session_manager.py`` runs against) with
  :class:`MongoDBContractRepository`, a ``MongoDBSessionRepository`` on a fresh database;
* replaces ``FileSessionManager`` and ``S3SessionManager`` (manager and repository in one object) with
  :class:`MongoDBContractSessionManager`, a ``MongoDBSessionManager`` that also answers the repository
  methods, so strands' file and S3 repository tests exercise our storage;
* deselects, by name and with a reason each, the few tests that inspect the file or S3 storage
  layout (paths, JSON files, S3 keys, boto client settings) instead of the repository contract.

The message layout of every repository and manager is chosen by ``MSM_CONTRACT_LAYOUT``
(``embedded``, ``collection``, ``promoted`` or ``encrypted``: see `LAYOUTS`); the outer test runs the suite once
per layout. ``encrypted`` is ``promoted`` with client-side field-level encryption: a local master key made for the
run, the key vault in each test's database.

Every test gets its own database on the server named by ``MSM_CONTRACT_MONGODB_URI``; every
repository or manager a test builds uses that database, so a second manager in the same test (a
"new process" over the same storage) sees what the first one wrote.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager import EncryptionSettings, MongoDBSessionManager, MongoDBSessionRepository
from mongodb_session_manager.encryption import generate_local_key

URI_ENV = "MSM_CONTRACT_MONGODB_URI"
LAYOUT_ENV = "MSM_CONTRACT_LAYOUT"

# MSM_CONTRACT_LAYOUT -> the layout settings every repository and manager of the run gets: both layouts,
# and "promoted" (embedded agents that move to the collection layout after two messages, so that most
# tests write across a promotion).
LAYOUTS: dict[str, dict[str, Any]] = {
    "embedded": {"message_storage": "embedded"},
    "collection": {"message_storage": "collection"},
    "promoted": {"message_storage": "embedded", "max_embedded_messages": 2},
    "encrypted": {"message_storage": "embedded", "max_embedded_messages": 2, "encrypted": True},
}
_MASTER_KEY = generate_local_key()
"""The local master key of the ``encrypted`` run."""
COLLECTION = "sessions"

REPOSITORY_TESTS = "test_repository_session_manager.py"
FILE_TESTS = "test_file_session_manager.py"
S3_TESTS = "test_s3_session_manager.py"

_LAYOUT = "inspects the storage layout of strands' {} (not part of the repository contract)"
_FILE_LAYOUT = _LAYOUT.format("FileSessionManager: files and directories on disk")
_S3_LAYOUT = _LAYOUT.format("S3SessionManager: objects under S3 keys")

# (module file name, test function name) -> why it does not apply to a MongoDB repository.
# Parametrized tests are deselected with all their parameters. Everything else in the three
# modules runs; an entry that matches no collected test is an error (the upstream suite changed).
DESELECTED: dict[tuple[str, str], str] = {
    (FILE_TESTS, "test_create_session"): _FILE_LAYOUT + "; create/read is covered by test_read_session",
    (FILE_TESTS, "test_delete_session"): _FILE_LAYOUT + " (checks the session directory is gone)",
    (FILE_TESTS, "test_create_agent"): _FILE_LAYOUT + "; create/read is covered by test_read_agent",
    (FILE_TESTS, "test_create_message"): _FILE_LAYOUT + "; create/read is covered by test_read_message",
    (FILE_TESTS, "test_message_durable_id_persists"): _FILE_LAYOUT
    + "; the tracking_id round trip is covered by test_register_hooks_persists_messages_and_state",
    (FILE_TESTS, "test_create_multi_agent"): _FILE_LAYOUT + "; create/read is covered by test_read_multi_agent",
    (FILE_TESTS, "test_create_session_multi_agent_directory_structure"): _FILE_LAYOUT,
    (FILE_TESTS, "test_corrupted_json_file"): "calls FileSessionManager._read_file on a hand-written JSON file",
    (FILE_TESTS, "test_permission_error_handling"): "patches builtins.open to fake a file-system error",
    (FILE_TESTS, "test__get_session_path_invalid_session_id"): "private file-path helper _get_session_path",
    (FILE_TESTS, "test__get_agent_path_invalid_agent_id"): "private file-path helper _get_agent_path",
    (FILE_TESTS, "test__get_message_path_invalid_message_id"): "private file-path helper _get_message_path",
    (S3_TESTS, "test_init_s3_session_manager"): "checks the boto3 client's user agent",
    (S3_TESTS, "test_init_s3_session_manager_with_config"): "checks the boto3 client's user agent",
    (S3_TESTS, "test_init_s3_session_manager_with_existing_user_agent"): "checks the boto3 client's user agent",
    (S3_TESTS, "test_init_s3_session_manager_with_endpoint_url"): "checks the boto3 client's endpoint URL",
    (S3_TESTS, "test_create_session"): _S3_LAYOUT + "; create/read is covered by test_read_session",
    (S3_TESTS, "test_delete_session"): _S3_LAYOUT + " (head_object on the session key)",
    (S3_TESTS, "test_create_agent"): _S3_LAYOUT + "; create/read is covered by test_read_agent",
    (S3_TESTS, "test_create_message"): _S3_LAYOUT + "; create/read is covered by test_read_message",
    (S3_TESTS, "test_create_multi_agent"): _S3_LAYOUT + "; create/read is covered by test_read_multi_agent",
    (S3_TESTS, "test__get_session_path_prefix_normalization"): "private S3-key helper _get_session_path",
    (S3_TESTS, "test__get_session_path_invalid_session_id"): "private S3-key helper _get_session_path",
    (S3_TESTS, "test__get_agent_path_invalid_agent_id"): "private S3-key helper _get_agent_path",
    (S3_TESTS, "test__get_message_path_invalid_message_id"): "private S3-key helper _get_message_path",
}

# (module file name, test function name) -> reason: known bugs of ours, run as strict xfail.
# Empty when the repository passes the whole contract.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

_client: MongoClient | None = None
_database: str | None = None


def _shared_client() -> MongoClient:
    """One plain client per test run, borrowed by every repository (as an application would)."""
    global _client
    if _client is None:
        uri = os.environ.get(URI_ENV)
        if not uri:
            raise pytest.UsageError(f"{URI_ENV} must name the MongoDB server the contract tests run against")
        _client = MongoClient(uri)
    return _client


def _layout_settings() -> dict[str, Any]:
    """The layout settings of this run (``MSM_CONTRACT_LAYOUT``, default embedded)."""
    name = os.environ.get(LAYOUT_ENV, "embedded")
    if name not in LAYOUTS:
        raise pytest.UsageError(f"{LAYOUT_ENV}={name!r}: expected one of {sorted(LAYOUTS)}")
    settings = dict(LAYOUTS[name])
    if settings.pop("encrypted", False):
        vault = f"{_current_database()}.keyvault"
        settings["encryption"] = EncryptionSettings.local(_MASTER_KEY, key_vault_namespace=vault)
    return settings


def _current_database() -> str:
    if _database is None:
        raise RuntimeError("a MongoDB contract repository was built outside a test (no database chosen yet)")
    return _database


class MongoDBContractRepository(MongoDBSessionRepository):
    """``MockedSessionRepository()`` stand-in: our repository on the current test's database."""

    def __init__(self) -> None:
        """Bind to the current test's database with the shared client."""
        super().__init__(
            client=_shared_client(),
            database_name=_current_database(),
            collection_name=COLLECTION,
            **_layout_settings(),
        )


class MongoDBContractSessionManager(MongoDBSessionManager):
    """``FileSessionManager``/``S3SessionManager`` stand-in: a MongoDB manager that is also the repository.

    The storage arguments of the file and S3 managers are accepted and ignored: the data goes to the
    current test's database. The repository methods delegate to the manager's own
    ``MongoDBSessionRepository``.
    """

    def __init__(
        self,
        session_id: str,
        storage_dir: str | None = None,
        bucket: str | None = None,
        prefix: str = "",
        boto_session: Any = None,
        boto_client_config: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Open the session in the current test's database with the shared client."""
        super().__init__(
            session_id=session_id,
            client=_shared_client(),
            database_name=_current_database(),
            collection_name=COLLECTION,
            **{**_layout_settings(), **kwargs},
        )

    def create_session(self, session: Any, **kwargs: Any) -> Any:
        """Delegate to the repository."""
        return self.session_repository.create_session(session, **kwargs)

    def read_session(self, session_id: str, **kwargs: Any) -> Any:
        """Delegate to the repository."""
        return self.session_repository.read_session(session_id, **kwargs)

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delegate to the repository."""
        self.session_repository.delete_session(session_id, **kwargs)

    def create_agent(self, session_id: str, session_agent: Any, **kwargs: Any) -> None:
        """Delegate to the repository."""
        self.session_repository.create_agent(session_id, session_agent, **kwargs)

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> Any:
        """Delegate to the repository."""
        return self.session_repository.read_agent(session_id, agent_id, **kwargs)

    def update_agent(self, session_id: str, session_agent: Any, **kwargs: Any) -> None:
        """Delegate to the repository."""
        self.session_repository.update_agent(session_id, session_agent, **kwargs)

    def create_message(self, session_id: str, agent_id: str, session_message: Any, **kwargs: Any) -> None:
        """Delegate to the repository."""
        self.session_repository.create_message(session_id, agent_id, session_message, **kwargs)

    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> Any:
        """Delegate to the repository."""
        return self.session_repository.read_message(session_id, agent_id, message_id, **kwargs)

    def update_message(self, session_id: str, agent_id: str, session_message: Any, **kwargs: Any) -> None:
        """Delegate to the repository."""
        self.session_repository.update_message(session_id, agent_id, session_message, **kwargs)

    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> Any:
        """Delegate to the repository."""
        return self.session_repository.list_messages(session_id, agent_id, limit=limit, offset=offset, **kwargs)

    def create_multi_agent(self, session_id: str, multi_agent: Any, **kwargs: Any) -> None:
        """Delegate to the repository."""
        self.session_repository.create_multi_agent(session_id, multi_agent, **kwargs)

    def read_multi_agent(self, session_id: str, multi_agent_id: str, **kwargs: Any) -> Any:
        """Delegate to the repository."""
        return self.session_repository.read_multi_agent(session_id, multi_agent_id, **kwargs)

    def update_multi_agent(self, session_id: str, multi_agent: Any, **kwargs: Any) -> None:
        """Delegate to the repository."""
        self.session_repository.update_multi_agent(session_id, multi_agent, **kwargs)


# module file name -> {global name in that test module: the class it must be after substitution}
EXPECTED_GLOBALS: dict[str, dict[str, type]] = {
    REPOSITORY_TESTS: {
        "MockedSessionRepository": MongoDBContractRepository,
        "FileSessionManager": MongoDBContractSessionManager,
    },
    FILE_TESTS: {"FileSessionManager": MongoDBContractSessionManager},
    S3_TESTS: {"S3SessionManager": MongoDBContractSessionManager},
}


def pytest_configure(config: pytest.Config) -> None:
    """Substitute our classes where strands' test modules will import theirs from (before collection)."""
    import strands.session.file_session_manager as file_module
    import strands.session.s3_session_manager as s3_module
    import tests.fixtures.mock_session_repository as mock_module

    mock_module.MockedSessionRepository = MongoDBContractRepository  # type: ignore[misc, assignment]
    file_module.FileSessionManager = MongoDBContractSessionManager  # type: ignore[misc, assignment]
    s3_module.S3SessionManager = MongoDBContractSessionManager  # type: ignore[misc, assignment]
    _shared_client()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the shared client."""
    global _client
    if _client is not None:
        _client.close()
        _client = None


@pytest.fixture(autouse=True)
def _mongodb_contract_database() -> Iterator[str]:
    """A fresh database for each test, dropped afterwards."""
    global _database
    name = f"strands_contract_{uuid.uuid4().hex[:12]}"
    _database = name
    try:
        yield name
    finally:
        _database = None
        _shared_client().drop_database(name)


def _key(item: pytest.Item) -> tuple[str, str]:
    function = getattr(item, "originalname", None) or item.name
    return Path(str(item.fspath)).name, function


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check the substitution took effect, deselect layout tests, mark known failures."""
    seen_modules: set[str] = set()
    for item in items:
        module_name = Path(str(item.fspath)).name
        module = getattr(item, "module", None)
        if module is None or module_name in seen_modules or module_name not in EXPECTED_GLOBALS:
            continue
        seen_modules.add(module_name)
        for name, expected in EXPECTED_GLOBALS[module_name].items():
            if getattr(module, name, None) is not expected:
                raise pytest.UsageError(
                    f"{module_name}: {name} is {getattr(module, name, None)!r}, not the MongoDB stand-in; "
                    "the upstream tests changed how they import it, update strands_adapter.py"
                )

    used: set[tuple[str, str]] = set()
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        key = _key(item)
        if key in DESELECTED:
            used.add(key)
            deselected.append(item)
            continue
        if key in KNOWN_FAILURES:
            used.add(key)
            item.add_marker(pytest.mark.xfail(reason=KNOWN_FAILURES[key], strict=True))
        kept.append(item)

    stale = sorted(key for key in {*DESELECTED, *KNOWN_FAILURES} if key[0] in seen_modules and key not in used)
    if stale:
        raise pytest.UsageError(f"deselection/xfail entries match no collected test (upstream changed): {stale}")
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    config.stash[_deselected_key] = sorted({_key(item) for item in deselected})


_deselected_key = pytest.StashKey[list[tuple[str, str]]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """List what was deselected and why, so the outer test's output documents it."""
    keys = config.stash.get(_deselected_key, [])
    if not keys:
        return
    terminalreporter.section("MongoDB contract adapter: deselected (not part of the repository contract)")
    for module_name, function in keys:
        terminalreporter.write_line(f"{module_name}::{function}: {DESELECTED[(module_name, function)]}")
