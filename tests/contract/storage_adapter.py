"""pytest plugin that runs strands' own storage and snapshot-session tests against ``MongoDBStorage``.

Loaded with ``-p storage_adapter`` by ``test_storage_contract.py`` in a subprocess whose rootdir is the
``tests/`` tree of the strands-agents sdist (fetched at test time, never vendored). Before any test module is
imported it puts MongoDB stand-ins where strands' tests import its shipped backends from:

* ``InMemoryStorage`` -> `MongoDBContractMemoryStorage`: each instance a fresh, empty collection, as each
  ``InMemoryStorage()`` is a fresh, empty dict. It keeps InMemoryStorage's ``_ephemeral`` marker, which only
  tells strands' context stash to inline its entries into snapshots (the snapshot tests check that path);
* ``LocalFileStorage`` -> `MongoDBContractFileStorage`: one collection per directory, so two storages on
  one directory (a "new process") see the same data and two directories do not;
* ``S3Storage`` -> `MongoDBContractS3Storage`: one collection per bucket; the ``prefix`` scopes keys as
  S3Storage's does, and the bucket strands' tests use for failures (``nonexistent-bucket-xyz``) is a
  MongoDB server that cannot be reached, so every operation fails and must raise ``StorageError``;
* in ``search/test_keyword.py``, ``KeywordSearchStrategy`` -> `MongoDBIndexSearch`, which answers with
  ``MongoDBStorage.search`` (the index-backed search), so strands' keyword-search tests check that our
  search finds and ranks what the keyword strategy does.

Tests that inspect a backend's own machinery (files, sandboxes, boto clients, the keyword scan's reads,
InMemoryStorage's synchronous ``clear()``) are deselected by name, each with its reason (`DESELECTED`);
everything else in the collected modules runs. An entry that matches no collected test is an error.
Every test gets its own database on the server named by ``MSM_CONTRACT_MONGODB_URI``. With
``MSM_CONTRACT_ENCRYPTED=1`` every stand-in encrypts its blobs (``MongoDBStorage(encryption=...)``: a local master
key made for the run, the key vault in the test's database).
"""

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from strands.storage.storage import _EPHEMERAL, _normalize_prefix

from mongodb_session_manager import EncryptionSettings, MongoDBStorage
from mongodb_session_manager.encryption import generate_local_key

URI_ENV = "MSM_CONTRACT_MONGODB_URI"
ENCRYPTED_ENV = "MSM_CONTRACT_ENCRYPTED"
_MASTER_KEY = generate_local_key()
"""The local master key of an encrypted run."""
UNREACHABLE_BUCKET = "nonexistent-bucket-xyz"
UNREACHABLE_URI = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1000&connectTimeoutMS=500"

STORAGE_TESTS = "test_storage.py"
MEMORY_TESTS = "test_in_memory_storage.py"
FILE_TESTS = "test_local_file_storage.py"
S3_TESTS = "test_s3_storage.py"
KEYWORD_TESTS = "test_keyword.py"
BM25_TESTS = "test_bm25.py"
SNAPSHOT_TESTS = "test_snapshot_session_manager.py"

_FILES = "inspects LocalFileStorage's files and directories on disk"
_SANDBOX = "LocalFileStorage's sandbox routing (MongoDBStorage has no sandbox)"
_BOTO = "S3Storage's boto3 client (construction, user agent or a mocked client)"
_SCAN = "KeywordSearchStrategy's scan, which reads every entry through storage.read; the index reads none"

# (module file name, "Class::test" or "test") -> why it does not apply to MongoDBStorage. Parametrized tests
# are deselected with all their parameters; "*" deselects a whole module.
DESELECTED: dict[tuple[str, str], str] = {
    (MEMORY_TESTS, "TestInMemoryStorage::test_clear"): "InMemoryStorage's synchronous clear() (not in the protocol)",
    (MEMORY_TESTS, "TestInMemoryStorage::test_namespace_clear_only_clears_prefix"): "InMemoryStorage's clear()",
    (FILE_TESTS, "TestLocalFileStorage::test_write_creates_directories"): _FILES,
    (FILE_TESTS, "TestLocalFileStorage::test_atomic_write"): _FILES + " (temporary files)",
    (FILE_TESTS, "TestLocalFileStorage::test_namespace_returns_local_file_storage"): _FILES + " (base_dir)",
    (FILE_TESTS, "TestLocalFileStorage::test_normpath_prevents_trailing_slash_in_namespace"): _FILES + " (base_dir)",
    (FILE_TESTS, "TestLocalFileStorage::test_write_error_raises_storage_error"): _FILES
    + " (an unwritable directory; an unreachable server is test_s3_storage.py's failure tests)",
    (FILE_TESTS, "TestLocalFileStorage::test_read_error_raises_storage_error"): _FILES + " (chmod 000)",
    (FILE_TESTS, "TestLocalFileStorage::test_write_atomic_cleanup_on_replace_failure"): _FILES + " (os.replace)",
    (FILE_TESTS, "TestLocalFileStorage::test_for_sandbox_returns_self_if_same"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_for_sandbox_returns_new_if_different"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_sandbox_binary_round_trip"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_sandbox_delete"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_sandbox_delete_missing_is_noop"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_sandbox_list"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_sandbox_list_nested"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_namespace_preserves_for_sandbox"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_delete_error_raises_storage_error"): _SANDBOX + " (a failing sandbox)",
    (FILE_TESTS, "TestLocalFileStorage::test_list_error_raises_storage_error"): _SANDBOX + " (a failing sandbox)",
    (FILE_TESTS, "TestLocalFileStorage::test_sandbox_write_skips_indexing"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_for_sandbox_preserves_search_strategy"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_rejects_host_fs_strategy_with_sandbox"): _SANDBOX,
    (FILE_TESTS, "TestLocalFileStorage::test_for_sandbox_drops_host_fs_strategy_with_warning"): _SANDBOX,
    (S3_TESTS, "TestS3Storage::test_namespace_shares_client"): _BOTO + " (S3Storage._get_client)",
    (S3_TESTS, "TestS3Storage::test_namespace_keeps_subclass_overrides_and_shares_client"): _BOTO
    + " (S3Storage._get_client); the same subclass check runs in test_in_memory_storage.py",
    (S3_TESTS, "TestS3Storage::test_rejects_both_region_and_session"): "S3Storage's region/boto-session arguments",
    (S3_TESTS, "TestS3Storage::test_read_error_raises_storage_error"): _BOTO,
    (S3_TESTS, "TestS3Storage::test_read_nosuchkey_via_response_code"): _BOTO,
    (S3_TESTS, "TestS3Storage::test_client_created_with_boto_session"): _BOTO,
    (S3_TESTS, "TestS3Storage::test_client_created_with_region"): _BOTO,
    (S3_TESTS, "TestS3Storage::test_client_merges_user_agent_on_existing_config"): _BOTO,
    (S3_TESTS, "TestS3Storage::test_list_paginates"): _BOTO + " (S3 list pages)",
    (S3_TESTS, "TestS3StorageWithPrefix::test_prefix_scopes_keys"): "reads the S3 object with boto3",
    (KEYWORD_TESTS, "TestKeywordSearch::test_skips_keys_where_read_returns_none"): _SCAN
    + " (patches read and InMemoryStorage._store)",
    (KEYWORD_TESTS, "TestKeywordSearch::test_skips_entries_whose_read_fails"): _SCAN + " (patches read)",
    (KEYWORD_TESTS, "TestKeywordSearch::test_reads_entries_in_concurrent_batches_of_at_most_8"): _SCAN,
    (BM25_TESTS, "*"): "the SQLite FTS5 strategy keeps its index in LocalFileStorage's directory (base_dir): "
    "it cannot serve MongoDBStorage; search ranking is checked by test_keyword.py here",
    (SNAPSHOT_TESTS, "TestSnapshotStashIntegration::test_save_writes_external_ref_for_durable_storage"): (
        "asserts the stash's storage class name recorded in the snapshot is 'LocalFileStorage'"
    ),
}

_database: str | None = None


def _uri() -> str:
    uri = os.environ.get(URI_ENV)
    if not uri:
        raise pytest.UsageError(f"{URI_ENV} must name the MongoDB server the contract tests run against")
    return uri


def _current_database() -> str:
    if _database is None:
        raise RuntimeError("a MongoDB contract storage was built outside a test (no database chosen yet)")
    return _database


def _encryption() -> dict[str, Any]:
    """``encryption=`` for a stand-in when the run is encrypted (nothing otherwise)."""
    if os.environ.get(ENCRYPTED_ENV) != "1":
        return {}
    vault = f"{_current_database()}.keyvault"
    return {"encryption": EncryptionSettings.local(_MASTER_KEY, key_vault_namespace=vault)}


class MongoDBContractMemoryStorage(MongoDBStorage):
    """``InMemoryStorage()`` stand-in: a MongoDBStorage on a fresh collection of the current test's database."""

    _ephemeral = _EPHEMERAL

    def __init__(self, *, search_strategy: Any = None) -> None:
        """Open a new, empty collection."""
        super().__init__(
            _uri(),
            database_name=_current_database(),
            collection_name=f"memory_{uuid.uuid4().hex[:12]}",
            search_strategy=search_strategy,
            **_encryption(),
        )


class MongoDBContractFileStorage(MongoDBStorage):
    """``LocalFileStorage(base_dir)`` stand-in: the collection of that directory in the current test's database."""

    def __init__(self, base_dir: str = "./.strands/", *, sandbox: Any = None, search_strategy: Any = None) -> None:
        """Open the directory's collection (the sandbox is ignored)."""
        digest = hashlib.sha256(os.path.abspath(base_dir).encode()).hexdigest()[:16]
        super().__init__(
            _uri(),
            database_name=_current_database(),
            collection_name=f"files_{digest}",
            search_strategy=search_strategy,
            **_encryption(),
        )


class MongoDBContractS3Storage(MongoDBStorage):
    """``S3Storage(bucket, prefix=...)`` stand-in: the bucket's collection (``nonexistent-bucket-xyz``: unreachable)."""

    def __init__(self, bucket: str, *, prefix: str = "", search_strategy: Any = None, **boto_options: Any) -> None:
        """Open the bucket's collection under ``prefix`` (boto options are ignored)."""
        super().__init__(
            UNREACHABLE_URI if bucket == UNREACHABLE_BUCKET else _uri(),
            database_name=_current_database(),
            collection_name=f"s3_{bucket}",
            search_strategy=search_strategy,
            **_encryption(),
        )
        normalized = _normalize_prefix(prefix).rstrip("/")
        self._prefix = f"{normalized}/" if normalized else ""


class MongoDBIndexSearch:
    """``KeywordSearchStrategy`` stand-in: answers with the storage's own index-backed ``search``."""

    requires_host_fs = False

    async def index(self, storage: Any, key: str, data: bytes, **kwargs: Any) -> None:
        """Nothing to do: MongoDBStorage indexes on write."""

    async def search(self, storage: Any, query: str, **kwargs: Any) -> list[Any]:
        """Return ``storage.search(query)`` of a MongoDBStorage."""
        assert isinstance(storage, MongoDBStorage), f"the keyword tests searched a {type(storage).__name__}"
        return await storage.search(query)


# module file name -> {global name in that test module: the class it must be after substitution}
EXPECTED_GLOBALS: dict[str, dict[str, type]] = {
    MEMORY_TESTS: {"InMemoryStorage": MongoDBContractMemoryStorage},
    FILE_TESTS: {"LocalFileStorage": MongoDBContractFileStorage},
    S3_TESTS: {"S3Storage": MongoDBContractS3Storage},
    KEYWORD_TESTS: {"InMemoryStorage": MongoDBContractMemoryStorage, "KeywordSearchStrategy": MongoDBIndexSearch},
    SNAPSHOT_TESTS: {"InMemoryStorage": MongoDBContractMemoryStorage, "LocalFileStorage": MongoDBContractFileStorage},
}


def pytest_configure(config: pytest.Config) -> None:
    """Substitute the stand-ins where strands' test modules import the backends from (before collection).

    strands' own modules are imported first, so they keep the real classes (the snapshot manager's
    fallback to LocalFileStorage, the context manager's default in-memory stash, ...).
    """
    import strands.agent
    import strands.multiagent
    import strands.session.snapshot_session_manager
    import strands.storage
    import strands.storage.in_memory_storage as memory_module
    import strands.storage.search.bm25
    import strands.vended_memory_stores.file_memory_store
    import strands.vended_plugins.context_offloader

    strands.storage.InMemoryStorage = MongoDBContractMemoryStorage  # type: ignore[misc, assignment]
    strands.storage.LocalFileStorage = MongoDBContractFileStorage  # type: ignore[misc, assignment]
    strands.storage.S3Storage = MongoDBContractS3Storage  # type: ignore[misc, assignment]
    memory_module.InMemoryStorage = MongoDBContractMemoryStorage  # type: ignore[misc]
    _uri()


@pytest.fixture(autouse=True)
def _mongodb_contract_database() -> Iterator[str]:
    """A fresh database for each test, dropped afterwards."""
    global _database
    name = f"strands_storage_{uuid.uuid4().hex[:12]}"
    _database = name
    try:
        yield name
    finally:
        _database = None
        with MongoClient(_uri()) as client:
            client.drop_database(name)


def _key(item: pytest.Item) -> tuple[str, str]:
    return Path(str(item.fspath)).name, re.sub(r"\[.*\]$", "", item.nodeid.split("::", 1)[-1])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Retarget the keyword tests at our search, check the substitutions took effect, deselect."""
    seen_modules: set[str] = set()
    for item in items:
        module_name, module = Path(str(item.fspath)).name, getattr(item, "module", None)
        if module is None or module_name in seen_modules:
            continue
        seen_modules.add(module_name)
        if module_name == KEYWORD_TESTS:
            module.KeywordSearchStrategy = MongoDBIndexSearch
        for name, expected in EXPECTED_GLOBALS.get(module_name, {}).items():
            if getattr(module, name, None) is not expected:
                raise pytest.UsageError(
                    f"{module_name}: {name} is {getattr(module, name, None)!r}, not the MongoDB stand-in; "
                    "the upstream tests changed how they import it, update storage_adapter.py"
                )

    used: set[tuple[str, str]] = set()
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        module_name, test = _key(item)
        for key in ((module_name, test), (module_name, "*")):
            if key in DESELECTED:
                used.add(key)
                deselected.append(item)
                break
        else:
            kept.append(item)

    stale = sorted(key for key in DESELECTED if key[0] in seen_modules and key not in used)
    if stale:
        raise pytest.UsageError(f"deselection entries match no collected test (upstream changed): {stale}")
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    config.stash[_deselected_key] = sorted(key for key in used)


_deselected_key = pytest.StashKey[list[tuple[str, str]]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """List what was deselected and why, so the outer test's output documents it."""
    keys = config.stash.get(_deselected_key, [])
    if not keys:
        return
    terminalreporter.section("MongoDBStorage contract adapter: deselected (not part of the storage contract)")
    for module_name, test in keys:
        terminalreporter.write_line(f"{module_name}::{test}: {DESELECTED[(module_name, test)]}")
