"""Every stored value round-trips exactly, whatever its keys: the value codec of ``documents.py``.

Values are written through the public API (repository and manager) on the wire-protocol server and read
back through a fresh client; ``==`` must hold. Keys starting with ``$`` (``$ref``/``$id`` pairs, which
pymongo would read back as ``bson.DBRef``), dotted, empty and NUL-containing keys, the codec's own marker
names, integers outside int64, lone surrogates and bytes are all generated on purpose.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterator
from typing import Any

import bson
import pytest
from bson.dbref import DBRef
from bson.raw_bson import RawBSONDocument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from strands import Agent, tool
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    InvalidMetadataKeyError,
    MongoDBSessionManager,
    MongoDBSessionRepository,
    SessionDataError,
)
from mongodb_session_manager import documents as docs
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"
AGENT = "agent.v1"
SERVER_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ----------------------------------------------------------------- strategies

SPECIAL_KEYS = [
    "",
    "$",
    "$ref",
    "$id",
    "$db",
    "$set",
    ".",
    "a.b",
    "\x00",
    "k\x00",
    "\ud800",
    "x\udfffy",
    docs.MAP_MARKER,
    docs.INT_MARKER,
    docs.STR_MARKER,
    "__bytes_encoded__",
    "data",
]
SPECIAL_INTS = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**200, -(2**200)]

texts = st.one_of(
    st.text(max_size=8),
    st.builds(operator.add, st.text(max_size=3), st.characters(categories=["Cs"])),  # a lone surrogate
)
keys = st.one_of(texts, st.sampled_from(SPECIAL_KEYS))
ints = st.one_of(st.integers(), st.integers(min_value=-(2**200), max_value=2**200), st.sampled_from(SPECIAL_INTS))
scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(allow_nan=False), texts, st.binary(max_size=8))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
        st.fixed_dictionaries({"$ref": texts, "$id": children}, optional={"$db": texts, "extra": children}),
        st.fixed_dictionaries({"__bytes_encoded__": st.just(True), "data": st.just("aGk=")}),  # strands' own form
    )


values = st.recursive(scalars, _containers, max_leaves=12)
objects = st.dictionaries(keys, values, max_size=4)

# ordinary values: what earlier versions stored, which must be stored byte for byte as before
safe_keys = st.text(st.characters(codec="utf-8", exclude_characters=".$\x00"), min_size=1, max_size=8).filter(
    lambda key: key not in {docs.MAP_MARKER, docs.INT_MARKER, docs.STR_MARKER}
)
ordinary = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.binary(max_size=8),
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(safe_keys, children, max_size=4)),
    max_leaves=12,
)


# ----------------------------------------------------------------- helpers


class FakeMultiAgent:
    """The two members of ``MultiAgentBase`` a repository uses."""

    def __init__(self, multi_agent_id: str, state: dict[str, Any]) -> None:
        self.id = multi_agent_id
        self.state = state

    def serialize_state(self) -> dict[str, Any]:
        return self.state


@pytest.fixture
def repo(client: MongoClient, database_name: str) -> MongoDBSessionRepository:
    return MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION)


@pytest.fixture
def fresh(mongo_uri: str, database_name: str) -> Any:
    """Open a repository on a new client (nothing cached from the writer); close it on leaving ``with``."""

    def open_repository() -> MongoDBSessionRepository:
        return MongoDBSessionRepository(mongo_uri, database_name=database_name, collection_name=COLLECTION)

    return open_repository


@pytest.fixture
def reader(mongo_uri: str) -> Iterator[MongoClient]:
    """A separate client that reads documents back as raw BSON."""
    with MongoClient(mongo_uri, document_class=RawBSONDocument) as mongo_client:
        yield mongo_client


def _new_session(repo: MongoDBSessionRepository) -> str:
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    return session_id


def _manager(client: MongoClient, database_name: str, session_id: str) -> MongoDBSessionManager:
    return MongoDBSessionManager(session_id, client=client, database_name=database_name, collection_name=COLLECTION)


def _raw(reader: MongoClient, database_name: str, session_id: str) -> bytes:
    document = reader[database_name][COLLECTION].find_one({"_id": session_id})
    assert document is not None
    return bytes(document.raw)


def _tool_message(value: Any, role: str = "assistant") -> dict[str, Any]:
    return {
        "role": role,
        "content": [
            {"toolUse": {"toolUseId": "tooluse_1", "name": "check", "input": value}},
            {"json": value},
        ],
    }


def _without_created_at(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in entry.items() if key != "created_at"}


# ----------------------------------------------------------------- the codec itself


@settings(max_examples=150, deadline=None)
@given(ordinary)
def test_ordinary_values_are_stored_exactly_as_before(value: Any) -> None:
    assert bson.encode({"v": docs.encode_value(value)}) == bson.encode({"v": value})


@settings(max_examples=150, deadline=None)
@given(values)
def test_any_value_survives_bson_through_the_codec(value: Any) -> None:
    stored = bson.decode(bson.encode({"v": docs.encode_value(value)}))["v"]
    assert docs.decode_value(stored) == value


def test_marker_forms() -> None:
    assert docs.encode_value({"$ref": "#/a", "$id": 1}) == {docs.MAP_MARKER: [["$ref", "#/a"], ["$id", 1]]}
    assert docs.encode_value({"ok": {"a.b": 1}}) == {"ok": {docs.MAP_MARKER: [["a.b", 1]]}}
    assert docs.encode_value([2**64, -(2**63)]) == [{docs.INT_MARKER: str(2**64)}, -(2**63)]
    assert docs.encode_value("a\ud800") == {docs.STR_MARKER: b"a\xed\xa0\x80"}
    assert docs.encode_value({"\ud800": 1}) == {docs.MAP_MARKER: [[{docs.STR_MARKER: b"\xed\xa0\x80"}, 1]]}
    assert docs.encode_value(("t", 1)) == ["t", 1]
    assert docs.encode_value({docs.INT_MARKER: "5"}) == {docs.MAP_MARKER: [[docs.INT_MARKER, "5"]]}


def test_a_marker_dict_with_the_wrong_payload_decodes_as_a_plain_dict() -> None:
    for stored in ({docs.INT_MARKER: "five"}, {docs.STR_MARKER: "text"}, {docs.MAP_MARKER: [["a"]]}):
        assert docs.decode_value(stored) == stored


def test_dbref_of_an_earlier_version_decodes_to_the_dict_it_was_written_as() -> None:
    stored = {"schema": DBRef("orders", {"nested": DBRef("x", 1)}, "shop", extra=[1, 2])}
    assert docs.decode_value(stored) == {
        "schema": {"$ref": "orders", "$id": {"nested": {"$ref": "x", "$id": 1}}, "$db": "shop", "extra": [1, 2]}
    }


def test_direct_rebuild_matches_strands_from_dict_and_ignores_extra_fields() -> None:
    image = {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}}
    message = SessionMessage.from_message({"role": "user", "content": [{"text": "hi"}, image]}, 3)
    metrics = {"accumulated_usage": {"totalTokens": 3}}
    stored = bson.decode(bson.encode({**docs.message_document(message), "event_loop_metrics": metrics}))
    assert docs.session_message_from(stored) == SessionMessage.from_dict(dict(stored)) == message

    agent = SessionAgent(agent_id="a", state={"k": [1]}, conversation_manager_state={"removed_message_count": 2})
    data = bson.decode(bson.encode({**docs.agent_data(agent), "model": "m", "system_prompt": "p"}))
    assert docs.session_agent_from(data) == SessionAgent.from_dict(dict(data)) == agent

    without_internal_state = {"agent_id": "a", "state": {}, "conversation_manager_state": {}}
    assert docs.session_agent_from(without_internal_state)._internal_state == {}


# ----------------------------------------------------------------- round trips through the public API


@SERVER_SETTINGS
@given(message=values, redacted=values)
def test_messages_round_trip(repo: MongoDBSessionRepository, fresh: Any, message: Any, redacted: Any) -> None:
    session_id = _new_session(repo)
    repo.create_agent(session_id, SessionAgent(agent_id=AGENT, state={}, conversation_manager_state={}))
    written = [
        SessionMessage.from_message(_tool_message(message), 0),
        SessionMessage.from_message({"role": "user", "content": [{"text": "plain"}]}, 1),
    ]
    for session_message in written:
        repo.create_message(session_id, AGENT, session_message)
    written[0].redact_message = _tool_message(redacted)
    repo.update_message(session_id, AGENT, written[0])

    with fresh() as reader_repo:
        assert reader_repo.list_messages(session_id, AGENT) == written
        assert reader_repo.read_message(session_id, AGENT, 0) == written[0]


@SERVER_SETTINGS
@given(state=objects, conversation=objects, internal=objects, updated=objects)
def test_agent_state_round_trips(
    repo: MongoDBSessionRepository, fresh: Any, state: Any, conversation: Any, internal: Any, updated: Any
) -> None:
    session_id = _new_session(repo)
    agent = SessionAgent(agent_id=AGENT, state=state, conversation_manager_state=conversation, _internal_state=internal)
    repo.create_agent(session_id, agent)
    with fresh() as reader_repo:
        assert reader_repo.read_agent(session_id, AGENT) == agent

    agent.state = updated
    repo.update_agent(session_id, agent)
    with fresh() as reader_repo:
        restored = reader_repo.read_agent(session_id, AGENT)
    assert restored is not None
    assert restored.state == updated
    assert restored.conversation_manager_state == conversation


@SERVER_SETTINGS
@given(value=values, nested=values)
def test_metadata_round_trips(client: MongoClient, database_name: str, mongo_uri: str, value: Any, nested: Any) -> None:
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    with _manager(client, database_name, session_id) as manager:
        manager.update_metadata({"value": value, "prefs.nested": nested, "plain": "kept"})

    with MongoDBSessionManager(
        session_id, connection_string=mongo_uri, database_name=database_name, collection_name=COLLECTION
    ) as reader_manager:
        assert reader_manager.get_metadata() == {
            "metadata": {"value": value, "prefs": {"nested": nested}, "plain": "kept"}
        }


@SERVER_SETTINGS
@given(feedback=st.dictionaries(keys.filter(lambda key: key != "created_at"), values, max_size=4), comment=values)
def test_feedback_round_trips(
    client: MongoClient, database_name: str, mongo_uri: str, fresh: Any, feedback: Any, comment: Any
) -> None:
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    entries = [{"rating": "up", "comment": comment}, feedback]
    with _manager(client, database_name, session_id) as manager:
        for entry in entries:
            manager.add_feedback(entry)
        returned = manager.session_repository.add_feedback(session_id, feedback)
    assert _without_created_at(returned) == feedback

    with fresh() as reader_repo:
        stored = reader_repo.get_feedbacks(session_id)
    assert [_without_created_at(entry) for entry in stored] == [*entries, feedback]
    assert all(entry["created_at"] is not None for entry in stored)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=objects, updated=objects)
def test_multi_agent_state_round_trips(repo: MongoDBSessionRepository, fresh: Any, state: Any, updated: Any) -> None:
    session_id = _new_session(repo)
    graph = FakeMultiAgent("graph.main", state)
    repo.create_multi_agent(session_id, graph)
    with fresh() as reader_repo:
        assert reader_repo.read_multi_agent(session_id, "graph.main") == state
    graph.state = updated
    repo.update_multi_agent(session_id, graph)
    with fresh() as reader_repo:
        assert reader_repo.read_multi_agent(session_id, "graph.main") == updated


def test_ordinary_values_keep_their_field_names_in_the_database(
    client: MongoClient, database_name: str, repo: MongoDBSessionRepository
) -> None:
    session_id = _new_session(repo)
    with _manager(client, database_name, session_id) as manager:
        manager.update_metadata({"customer": {"tier": "gold", "ids": [1, 2]}})
        manager.add_feedback({"rating": "down", "comment": "slow", "context": {"$ref": "#/x", "$id": 1}})

    stored = client[database_name][COLLECTION].find_one({"_id": session_id})
    assert stored is not None
    assert stored["metadata"] == {"customer": {"tier": "gold", "ids": [1, 2]}}
    assert stored["feedbacks"][0]["rating"] == "down"
    assert stored["feedbacks"][0]["context"] == {docs.MAP_MARKER: [["$ref", "#/x"], ["$id", 1]]}
    assert client[database_name][COLLECTION].count_documents({"feedbacks.rating": "down"}) == 1


def test_huge_ints_and_lone_surrogates_are_stored(repo: MongoDBSessionRepository, fresh: Any) -> None:
    session_id = _new_session(repo)
    state = {"big": 2**64, "small": -(2**70), "text": "emoji half \ud83d", "\udc00key": [2**100]}
    repo.create_agent(session_id, SessionAgent(agent_id=AGENT, state=state, conversation_manager_state={}))
    repo.update_metadata(session_id, {"big": 10**30, "text": "\udfff"})

    with fresh() as reader_repo:
        restored = reader_repo.read_agent(session_id, AGENT)
        metadata = reader_repo.get_metadata(session_id)
    assert restored is not None and restored.state == state
    assert metadata == {"metadata": {"big": 10**30, "text": "\udfff"}}


@pytest.mark.parametrize(
    "key", [docs.INT_MARKER, f"prefs.{docs.MAP_MARKER}", "a\x00b", "x.\ud800"], ids=["marker", "nested", "nul", "surr"]
)
def test_metadata_keys_that_cannot_be_field_names_are_refused(
    repo: MongoDBSessionRepository, reader: MongoClient, database_name: str, key: str
) -> None:
    session_id = _new_session(repo)
    before = _raw(reader, database_name, session_id)
    with pytest.raises(InvalidMetadataKeyError):
        repo.update_metadata(session_id, {key: "5"})
    assert _raw(reader, database_name, session_id) == before


# ----------------------------------------------------------------- refused writes change nothing


class Opaque:
    """An object BSON cannot encode."""


BAD_VALUES = {
    "set": {1, 2},
    "object": Opaque(),
    "int-key": {1: "one", "$ref": "x"},
    "nested": {"$ref": "x", "$id": [{"deep": {3, 4}}]},
}


def _write_with(repo: MongoDBSessionRepository, session_id: str, how: str, bad: Any) -> None:
    if how == "message":
        repo.create_message(session_id, AGENT, SessionMessage.from_message(_tool_message(bad), 1))
    elif how == "redaction":
        redacted = SessionMessage.from_message(_tool_message("ok"), 0)
        redacted.redact_message = _tool_message(bad)
        repo.update_message(session_id, AGENT, redacted)
    elif how == "agent":
        repo.update_agent(session_id, SessionAgent(agent_id=AGENT, state={"bad": bad}, conversation_manager_state={}))
    elif how == "metadata":
        repo.update_metadata(session_id, {"fine": 1, "bad": bad})
    elif how == "feedback":
        repo.add_feedback(session_id, {"rating": "up", "bad": bad})
    else:
        repo.update_multi_agent(session_id, FakeMultiAgent("graph", {"bad": bad}))


@pytest.mark.parametrize("how", ["message", "redaction", "agent", "metadata", "feedback", "multi_agent"])
@pytest.mark.parametrize("bad", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_a_refused_write_leaves_the_document_byte_identical(
    repo: MongoDBSessionRepository, reader: MongoClient, database_name: str, how: str, bad: Any
) -> None:
    session_id = _new_session(repo)
    repo.create_agent(session_id, SessionAgent(agent_id=AGENT, state={"k": 1}, conversation_manager_state={}))
    repo.create_message(session_id, AGENT, SessionMessage.from_message(_tool_message({"$ref": "#/ok"}), 0))
    repo.update_metadata(session_id, {"fine": 0})
    repo.create_multi_agent(session_id, FakeMultiAgent("graph", {"status": "executing"}))
    before = _raw(reader, database_name, session_id)

    with pytest.raises(SessionDataError, match=session_id):
        _write_with(repo, session_id, how, bad)

    assert _raw(reader, database_name, session_id) == before


# ----------------------------------------------------------------- agents and earlier versions' documents

ORDER_SCHEMA = {
    "$id": "https://example.com/schemas/order",
    "$ref": "#/$defs/order",
    "$defs": {"order": {"type": "object", "properties": {"order.id": {"type": "string"}}, "required": ["order.id"]}},
}


@tool
def check_schema(json_schema: dict) -> str:
    """Report which definition a JSON schema refers to."""
    return f"the schema refers to {json_schema.get('$ref')}"


def test_agent_with_a_ref_schema_in_a_tool_call_resumes_in_a_new_manager(
    client: MongoClient, database_name: str, mongo_uri: str
) -> None:
    script = [{"tool": "check_schema", "input": {"json_schema": ORDER_SCHEMA}}, "The schema points to the order."]
    agent = Agent(
        agent_id="a",
        model=ScriptedModel(script),
        tools=[check_schema],
        session_manager=_manager(client, database_name, "schema"),
        callback_handler=None,
    )
    agent.state.set("last_schema", ORDER_SCHEMA)
    agent("Which definition does this schema use?")

    with MongoDBSessionManager(
        "schema", connection_string=mongo_uri, database_name=database_name, collection_name=COLLECTION
    ) as manager:
        model = ScriptedModel(["Still the order."])
        resumed = Agent(agent_id="a", model=model, tools=[check_schema], session_manager=manager, callback_handler=None)
        assert resumed.messages == agent.messages
        assert resumed.state.get("last_schema") == ORDER_SCHEMA
        resumed("And now?")
    assert model.calls[0][1]["content"][-1]["toolUse"]["input"] == {"json_schema": ORDER_SCHEMA}


def test_a_ref_dict_stored_by_an_earlier_version_still_reads(
    client: MongoClient, database_name: str, mongo_uri: str
) -> None:
    agent = Agent(
        agent_id="a",
        model=ScriptedModel(["hi"]),
        session_manager=_manager(client, database_name, "old"),
        callback_handler=None,
    )
    agent("hello")
    old_state = {"schema": {"$ref": "orders", "$id": 7, "$db": "shop", "note": "extra"}, "plain": [1, "two"]}
    client[database_name][COLLECTION].update_one({"_id": "old"}, {"$set": {"agents.a.agent_data.state": old_state}})
    assert isinstance(
        client[database_name][COLLECTION].find_one({"_id": "old"})["agents"]["a"]["agent_data"]["state"]["schema"],
        DBRef,
    )  # how pymongo reads what earlier versions wrote

    with MongoDBSessionManager(
        "old", connection_string=mongo_uri, database_name=database_name, collection_name=COLLECTION
    ) as manager:
        resumed = Agent(agent_id="a", model=ScriptedModel([]), session_manager=manager, callback_handler=None)
        assert resumed.state.get() == old_state
        assert resumed.messages == agent.messages
