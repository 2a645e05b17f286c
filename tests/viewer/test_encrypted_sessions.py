"""The Session Viewer over encrypted sessions: plaintext with the key, a marker per value without it, never a 500.

Sessions are written by ``MongoDBSessionManager`` with ``encryption=`` (a local master key, a key vault in the
test's own database) and real strands agents; the viewer reads them with the key file in its settings, or
without it. The secret strings are searched for in whole API responses.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient, monitoring
from strands import Agent, tool

from mongodb_session_manager import EncryptionSettings, MongoDBSessionManager
from mongodb_session_manager.encryption import generate_local_key, save_local_key
from mongodb_session_manager.testing import ScriptedModel
from session_viewer.backend import Settings, create_app

COLLECTION = "sessions"
BACKEND_PASSWORD = "correct-horse-battery-staple"
AUTH = {"Authorization": f"Bearer {BACKEND_PASSWORD}"}
LOCAL = "http://localhost"
QUESTION = "QUESTION-where-is-parcel-77"
ANSWER = "ANSWER-it-left-the-depot"
PROMPT = "PROMPT-you-help-with-parcels"
COMMENT = "COMMENT-courteous-and-quick"
ADDRESS = "ADDRESS-12-hidden-lane"
CUSTOMER = "CUSTOMER-alice-42"
SECRETS = (QUESTION, ANSWER, PROMPT, COMMENT, ADDRESS, CUSTOMER)
NO_KEY = {"encrypted": "no_key", "label": "encrypted, no key"}
KEY_ERASED = {"encrypted": "key_erased", "label": "key erased"}


@tool
def track_parcel(parcel: str) -> str:
    """Where a parcel is."""
    return f"parcel {parcel}: in transit"


class KeyVaultFinds(monitoring.CommandListener):
    """Counts the ``find`` commands sent to the key vault collection."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "keyvault":
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


@pytest.fixture
def key() -> bytes:
    return generate_local_key()


@pytest.fixture
def key_file(key: bytes, tmp_path: Path) -> Path:
    return save_local_key(tmp_path / "master.key", key)


@pytest.fixture
def encryption(key: bytes, database_name: str) -> EncryptionSettings:
    return EncryptionSettings.local(
        key,
        key_vault_namespace=f"{database_name}.keyvault",
        deterministic_metadata_fields=["customer"],
        random_metadata_fields=["address"],
    )


@pytest.fixture
def writer(mongo_uri: str) -> Iterator[MongoClient]:
    with MongoClient(mongo_uri, tz_aware=True) as client:
        yield client


def _manager(
    client: MongoClient, database_name: str, session_id: str, encryption: EncryptionSettings | None
) -> MongoDBSessionManager:
    return MongoDBSessionManager(
        session_id,
        client=client,
        database_name=database_name,
        collection_name=COLLECTION,
        metadata_fields=["status"],
        encryption=encryption,
    )


def _converse(manager: MongoDBSessionManager, customer: str) -> None:
    """A conversation with a tool call, a feedback comment and encrypted and clear metadata."""
    agent = Agent(
        agent_id="support",
        model=ScriptedModel([{"tool": "track_parcel", "input": {"parcel": "77"}, "id": "t1"}, ANSWER]),
        tools=[track_parcel],
        system_prompt=PROMPT,
        session_manager=manager,
        callback_handler=None,
    )
    agent(QUESTION)
    manager.add_feedback({"rating": "up", "comment": COMMENT})
    manager.update_metadata({"customer": customer, "address": ADDRESS, "status": "open"})


@pytest.fixture
def seeded(writer: MongoClient, database_name: str, encryption: EncryptionSettings) -> dict[str, str]:
    """Encrypted sessions secret-1 and secret-2, erased-1 (erased here), and clear-1 (written without encryption).

    Returns the viewer password of each session.
    """
    passwords = {}
    for session_id, customer, settings in (
        ("clear-1", CUSTOMER, None),
        ("secret-1", CUSTOMER, encryption),
        ("secret-2", "bob", encryption),
        ("erased-1", CUSTOMER, encryption),
    ):
        manager = _manager(writer, database_name, session_id, settings)
        _converse(manager, customer)
        passwords[session_id] = manager.get_session_viewer_password()
        if session_id == "erased-1":
            assert manager.erase_session_keys() == 1
    return passwords


@pytest.fixture
def viewer(mongo_uri: str, database_name: str, key_file: Path) -> Callable[..., Any]:
    """Factory: a started viewer over the test database; ``with_key=False`` leaves the key file out."""

    @contextmanager
    def start(with_key: bool = True, listener: Any = None, **overrides: Any) -> Iterator[TestClient]:
        values: dict[str, Any] = {
            "mongodb_uri": mongo_uri,
            "database_name": database_name,
            "collection_name": COLLECTION,
            "backend_password": BACKEND_PASSWORD,
            "encryption_key_vault": f"{database_name}.keyvault",
            "encryption_deterministic_fields": "customer",
            "encryption_random_fields": "metadata.address",
            **({"encryption_local_key_file": str(key_file)} if with_key else {}),
            **overrides,
        }
        options = {"event_listeners": [listener]} if listener is not None else None
        with TestClient(create_app(Settings(_env_file=None, **values), options), base_url=LOCAL) as client:
            yield client

    return start


def detail(api: TestClient, session_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = api.get(f"/api/v1/sessions/{session_id}", headers=AUTH if headers is None else headers)
    assert response.status_code == 200, response.text
    return response.json()


def search(api: TestClient, **params: Any) -> Any:
    return api.get("/api/v1/sessions/search", params=params, headers=AUTH)


def found(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(session["session_id"] for session in response.json()["sessions"])


def messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in body["timeline"] if item["type"] == "message"]


# ----------------------------------------------------------------------------- with the key


def test_with_the_key_every_encrypted_value_is_shown_in_plaintext(viewer, seeded) -> None:
    with viewer() as api:
        body = detail(api, "secret-1")

    assert body["encryption"] == "decrypted"
    text = json.dumps(body)
    assert QUESTION in text and ANSWER in text and "in transit" in text  # the user's, the model's, the tool's
    assert body["metadata"] == {"customer": CUSTOMER, "address": ADDRESS, "status": "open"}
    assert body["agents"][0]["system_prompt"] == PROMPT
    assert [item["comment"] for item in body["timeline"] if item["type"] == "feedback"] == [COMMENT]
    assert all(block["kind"] != "encrypted" for item in messages(body) for block in item["blocks"])


def test_a_session_written_without_encryption_reads_as_before(viewer, seeded) -> None:
    with viewer() as api:
        body = detail(api, "clear-1")
    assert body["encryption"] == "none"
    assert QUESTION in json.dumps(body) and body["metadata"]["customer"] == CUSTOMER


def test_with_the_key_the_listing_decrypts_the_metadata_of_the_page(viewer, seeded) -> None:
    with viewer() as api:
        response = search(api, session_id="secret-")
    assert found(response) == ["secret-1", "secret-2"]
    assert [session["metadata"]["address"] for session in response.json()["sessions"]] == [ADDRESS, ADDRESS]
    assert [session["metadata"]["customer"] for session in response.json()["sessions"]] == [CUSTOMER, "bob"]


# ----------------------------------------------------------------------------- without the key


def test_without_the_key_each_encrypted_value_is_a_marker_and_the_timeline_loads(viewer, seeded) -> None:
    with viewer(with_key=False) as api:
        body = detail(api, "secret-1")

    assert body["encryption"] == "no_key"
    assert not any(secret in json.dumps(body) for secret in SECRETS)
    items = messages(body)
    assert [item["role"] for item in items] == ["user", "assistant", "user", "assistant"]  # roles are clear
    assert all(item["blocks"] == [{"kind": "encrypted", **NO_KEY}] for item in items)
    assert items[-1]["metrics"]["outputTokens"] > 0  # metrics are clear
    assert [tool["name"] for tool in items[-1]["metrics"]["toolUsage"]] == ["track_parcel"]
    assert body["metadata"] == {"customer": NO_KEY, "address": NO_KEY, "status": "open"}
    assert body["agents"][0]["system_prompt"] == NO_KEY
    assert body["agents"][0]["model"] == "scripted-model"
    feedback = [item for item in body["timeline"] if item["type"] == "feedback"]
    assert [(item["rating"], item["comment"]) for item in feedback] == [("up", NO_KEY)]


def test_without_the_key_listing_and_search_work_and_show_markers(viewer, seeded) -> None:
    with viewer(with_key=False) as api:
        response = search(api)
        by_status = search(api, filters='{"status": "open"}')
    assert found(response) == ["clear-1", "erased-1", "secret-1", "secret-2"]
    sessions = {session["session_id"]: session for session in response.json()["sessions"]}
    assert sessions["secret-1"]["metadata"] == {"customer": NO_KEY, "address": NO_KEY, "status": "open"}
    assert sessions["secret-1"]["message_count"] == 4
    assert sessions["clear-1"]["metadata"]["address"] == ADDRESS
    assert found(by_status) == ["clear-1", "erased-1", "secret-1", "secret-2"]


def test_without_any_encryption_settings_the_viewer_shows_markers_too(viewer, seeded) -> None:
    with viewer(with_key=False, encryption_deterministic_fields="", encryption_random_fields="") as api:
        body = detail(api, "secret-2")
    assert body["encryption"] == "no_key"
    assert body["metadata"]["address"] == NO_KEY


# ----------------------------------------------------------------------------- erased keys


def test_after_erasure_the_values_are_marked_key_erased_and_the_rest_still_shows(viewer, seeded) -> None:
    with viewer() as api:
        body = detail(api, "erased-1")
        listed = search(api, session_id="erased-")

    assert body["encryption"] == "key_erased"
    assert not any(secret in json.dumps(body) for secret in SECRETS)
    assert all(item["blocks"] == [{"kind": "encrypted", **KEY_ERASED}] for item in messages(body))
    assert body["metadata"] == {"address": KEY_ERASED, "status": "open"}  # erasure removed the queryable field
    assert body["agents"][0]["system_prompt"] == KEY_ERASED
    assert found(listed) == ["erased-1"]
    assert listed.json()["sessions"][0]["metadata"] == {"address": KEY_ERASED, "status": "open"}


def test_a_key_erased_by_another_process_costs_one_key_vault_lookup_per_request(
    viewer, seeded, writer, database_name
) -> None:
    writer[database_name]["keyvault"].delete_many({"keyAltNames": "session:secret-2"})  # what another process did
    finds = KeyVaultFinds()
    with viewer(listener=finds) as api:
        body = detail(api, "secret-2")

    assert body["encryption"] == "key_erased"
    assert all(item["blocks"] == [{"kind": "encrypted", **KEY_ERASED}] for item in messages(body))
    assert body["metadata"]["customer"] == "bob"  # its shared deterministic key still exists
    assert body["metadata"]["address"] == KEY_ERASED
    assert finds.count == 2  # the session's key (once, not once per value) and the shared key of "customer"


# ----------------------------------------------------------------------------- the session's own password


def test_an_encrypted_sessions_password_opens_it_only_when_the_viewer_can_decrypt_it(viewer, seeded) -> None:
    password = {"X-Session-Password": seeded["secret-1"]}
    with viewer() as api:
        assert detail(api, "secret-1", headers=password)["encryption"] == "decrypted"
        assert api.get("/api/v1/sessions/secret-2", headers=password).status_code == 401
    with viewer(with_key=False) as api:
        assert api.get("/api/v1/sessions/secret-1", headers=password).status_code == 401
        assert detail(api, "secret-1")["encryption"] == "no_key"  # the backend password still opens it
        assert detail(api, "clear-1", headers={"X-Session-Password": seeded["clear-1"]})["encryption"] == "none"
    with viewer() as api:
        erased = api.get("/api/v1/sessions/erased-1", headers={"X-Session-Password": seeded["erased-1"]})
    assert erased.status_code == 401


# ----------------------------------------------------------------------------- metadata filters


def test_a_deterministic_metadata_filter_finds_encrypted_and_clear_sessions(viewer, seeded) -> None:
    with viewer() as api:
        assert found(search(api, filters=json.dumps({"customer": CUSTOMER}))) == ["clear-1", "secret-1"]
        assert found(search(api, filters='{"customer": "bob"}')) == ["secret-2"]
        assert found(search(api, filters='{"customer": "nobody", "status": "open"}')) == []
        random_field = search(api, filters=json.dumps({"address": ADDRESS}))
        not_encryptable = search(api, filters='{"customer": 1.5}')
    assert random_field.status_code == 400 and "encrypted randomly" in random_field.json()["detail"]
    assert not_encryptable.status_code == 400 and "string or an integer" in not_encryptable.json()["detail"]


def test_without_the_key_an_encrypted_field_cannot_be_filtered_on(viewer, seeded) -> None:
    with viewer(with_key=False) as api:
        response = search(api, filters=json.dumps({"customer": CUSTOMER}))
    assert response.status_code == 400
    assert "needs the key" in response.json()["detail"]


def test_the_filterable_fields_show_decrypted_values_and_only_what_can_be_filtered(viewer, seeded) -> None:
    with viewer(enum_fields_str="customer,status") as api:
        fields = {field["field"]: field for field in api.get("/api/v1/metadata-fields", headers=AUTH).json()["fields"]}
    assert fields["customer"]["type"] == "enum"
    assert fields["customer"]["values"] == [CUSTOMER, "bob"]  # decrypted; the clear one and the encrypted one once
    assert fields["status"]["values"] == ["open"]
    with viewer(with_key=False) as api:
        listed = [field["field"] for field in api.get("/api/v1/metadata-fields", headers=AUTH).json()["fields"]]
    assert listed == ["status"]


# ----------------------------------------------------------------------------- the dashboard


def test_the_dashboard_counts_encrypted_sessions_and_filters_on_a_deterministic_field(viewer, seeded) -> None:
    def metrics(api: TestClient, **params: Any) -> Any:
        return api.get("/api/v1/metrics", params=params, headers=AUTH)

    with viewer() as api:
        everything = metrics(api).json()["totals"]
        alice = metrics(api, filters=json.dumps({"customer": CUSTOMER})).json()["totals"]
        random_field = metrics(api, filters=json.dumps({"address": ADDRESS}))
    with viewer(with_key=False) as api:
        without_key = metrics(api).json()["totals"]
        refused = metrics(api, filters=json.dumps({"customer": CUSTOMER}))

    assert (everything["sessions"], everything["messages"], everything["feedback_up"]) == (4, 16, 4)
    assert everything["input_tokens"] > 0
    assert (alice["sessions"], alice["messages"]) == (2, 8)  # secret-1 and clear-1 (erased-1 lost its value)
    assert without_key == everything  # the figures are clear
    assert random_field.status_code == 400 and refused.status_code == 400


# ----------------------------------------------------------------------------- snapshot sessions


def test_an_encrypted_snapshot_session_is_decrypted_with_the_key_and_marked_without(
    viewer, mongo_uri, database_name, encryption
) -> None:
    from strands.session import SnapshotSessionManager

    from mongodb_session_manager import MongoDBStorage

    storage = MongoDBStorage(
        mongo_uri, database_name=database_name, collection_name="strands_storage", encryption=encryption
    )
    manager = SnapshotSessionManager("snap-1", storage=storage)
    Agent(
        agent_id="solo",
        model=ScriptedModel([ANSWER]),
        system_prompt=PROMPT,
        session_manager=manager,
        callback_handler=None,
    )(QUESTION)

    with viewer() as api:
        clear = api.get("/api/v1/snapshots/snap-1", headers=AUTH)
    with viewer(with_key=False) as api:
        listed = api.get("/api/v1/snapshots/search", headers=AUTH)
        sealed = api.get("/api/v1/snapshots/snap-1", headers=AUTH)

    assert clear.status_code == 200, clear.text
    assert QUESTION in clear.text and ANSWER in clear.text
    assert [session["session_id"] for session in listed.json()["sessions"]] == ["snap-1"]  # keys are clear
    assert sealed.status_code == 200, sealed.text
    assert not any(secret in sealed.text for secret in SECRETS)
    assert sealed.json()["agents"][0]["system_prompt"] == NO_KEY
    assert [item["blocks"] for item in sealed.json()["timeline"]] == [[{"kind": "encrypted", **NO_KEY}]]
