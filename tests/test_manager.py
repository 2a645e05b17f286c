"""MongoDBSessionManager: what a strands user sees, and what each turn costs in round trips."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient, monitoring
from strands import Agent, tool

from mongodb_session_manager import InvalidMetadataKeyError, MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's status."""
    return f"order {order_id} shipped"


@pytest.fixture
def make_manager(client: MongoClient, database_name: str):
    def make(session_id: str = "session-1", **kwargs) -> MongoDBSessionManager:
        return MongoDBSessionManager(
            session_id=session_id, client=client, database_name=database_name, collection_name="sessions", **kwargs
        )

    return make


@pytest.fixture
def stored(client: MongoClient, database_name: str):
    def read(session_id: str = "session-1") -> dict:
        return client[database_name]["sessions"].find_one({"_id": session_id})

    return read


def make_agent(manager, responses, agent_id="support", **kwargs) -> Agent:
    return Agent(
        agent_id=agent_id,
        model=ScriptedModel(responses, model_id="scripted-model"),
        session_manager=manager,
        callback_handler=None,
        system_prompt=kwargs.pop("system_prompt", "You help customers."),
        **kwargs,
    )


def test_conversation_and_state_come_back_in_a_new_manager(make_manager):
    manager = make_manager()
    agent = make_agent(manager, ["Nice to meet you, Alice."])
    agent("My name is Alice")
    agent.state.set("language", "eu")
    manager.sync_agent(agent)

    resumed_model = ScriptedModel(["You are Alice."])
    resumed = Agent(agent_id="support", model=resumed_model, session_manager=make_manager(), callback_handler=None)
    assert resumed.messages == agent.messages
    assert resumed.state.get("language") == "eu"
    resumed("What is my name?")
    assert resumed_model.calls[0][0]["content"][0]["text"] == "My name is Alice"


def test_turn_without_tools_costs_at_most_three_writes(make_manager, command_log):
    manager = make_manager()
    agent = make_agent(manager, ["first answer", "second answer"])
    agent("hello")
    command_log.clear()
    agent("again")
    assert len(command_log.writes) <= 3
    assert command_log.reads == []


def test_first_turn_of_a_new_agent_costs_at_most_three_writes(make_manager, command_log):
    manager = make_manager()
    agent = make_agent(manager, ["answer"])
    command_log.clear()
    agent("hello")
    assert len(command_log.writes) <= 3


def test_sync_with_nothing_changed_costs_nothing(make_manager, command_log):
    manager = make_manager()
    agent = make_agent(manager, ["answer"])
    agent("hello")
    command_log.clear()
    manager.sync_agent(agent)
    manager.sync_agent(agent)
    assert command_log.commands == []


def test_resuming_an_existing_agent_costs_at_most_three_reads(make_manager, command_log):
    agent = make_agent(make_manager(), ["a", "b"])
    agent("one")
    agent("two")
    command_log.clear()
    make_agent(make_manager(), [])
    assert len(command_log.reads) <= 3
    assert command_log.writes == []


def test_metrics_of_an_invocation_land_on_its_closing_assistant_message(make_manager, stored):
    manager = make_manager()
    agent = make_agent(manager, ["short answer", "a second, longer answer"])
    agent("hello there")
    agent("and once more")
    messages = stored()["agents"]["support"]["messages"]
    assert ["event_loop_metrics" in message for message in messages] == [False, True, False, True]
    metrics = messages[3]["event_loop_metrics"]
    usage = agent.event_loop_metrics.latest_agent_invocation.usage  # strands' own record of this invocation
    assert metrics["accumulated_usage"] == {
        "inputTokens": usage["inputTokens"],
        "outputTokens": usage["outputTokens"],
        "totalTokens": usage["totalTokens"],
    }
    assert 0 < metrics["accumulated_metrics"]["latencyMs"] < agent.event_loop_metrics.accumulated_metrics["latencyMs"]


def test_metrics_do_not_leak_into_restored_messages(make_manager):
    agent = make_agent(make_manager(), ["answer"])
    agent("hello")
    restored = make_agent(make_manager(), [])
    assert all("event_loop_metrics" not in message for message in restored.messages)


def test_agent_config_is_captured_and_can_be_updated(make_manager):
    manager = make_manager()
    make_agent(manager, ["x"], agent_id="translator", system_prompt="Translate.")("hi")
    make_agent(manager, ["y"], agent_id="support.v2", system_prompt="Support.")("hi")

    assert manager.get_agent_config("translator") == {
        "agent_id": "translator",
        "model": "scripted-model",
        "system_prompt": "Translate.",
        "prompt_metadata": None,
    }
    manager.update_agent_config("translator", model="faster-model")
    assert manager.get_agent_config("translator")["model"] == "faster-model"
    assert manager.get_agent_config("translator")["system_prompt"] == "Translate."
    assert sorted(manager.list_agents(), key=lambda a: a["agent_id"]) == [
        {"agent_id": "support.v2", "model": "scripted-model", "system_prompt": "Support.", "prompt_metadata": None},
        {"agent_id": "translator", "model": "faster-model", "system_prompt": "Translate.", "prompt_metadata": None},
    ]
    assert manager.get_agent_config("ghost") is None


@pytest.mark.filterwarnings("ignore:You're using default model")
def test_a_resumed_agent_built_without_model_or_system_prompt_keeps_the_recorded_config(make_manager):
    make_agent(make_manager(), ["hi"], system_prompt="You help customers.")("hello")

    manager = make_manager()
    resumed = Agent(agent_id="support", session_manager=manager, callback_handler=None)  # strands' default model
    assert resumed.system_prompt is None and resumed.model.get_config()["model_id"] != "scripted-model"
    resumed.state.set("step", 2)
    manager.sync_agent(resumed)  # a write happens: the config must not ride on it as None or the default model

    assert manager.get_agent_config("support") == {
        "agent_id": "support",
        "model": "scripted-model",
        "system_prompt": "You help customers.",
        "prompt_metadata": None,
    }


@pytest.mark.filterwarnings("ignore:You're using default model")
def test_strands_default_model_is_recorded_while_no_model_is(make_manager):
    manager = make_manager()
    agent = Agent(agent_id="fresh", session_manager=manager, callback_handler=None)
    assert manager.get_agent_config("fresh") == {
        "agent_id": "fresh",
        "model": agent.model.get_config()["model_id"],
        "system_prompt": None,
        "prompt_metadata": None,
    }


def test_a_new_config_value_is_recorded_on_resume_and_when_changed_later(make_manager, command_log):
    make_agent(make_manager(), ["hi"], system_prompt="Old prompt.")("hello")

    manager = make_manager()
    model = ScriptedModel(["ok"], model_id="better-model")
    resumed = Agent(
        agent_id="support", model=model, session_manager=manager, system_prompt="New prompt.", callback_handler=None
    )
    assert manager.get_agent_config("support")["model"] == "better-model"
    assert manager.get_agent_config("support")["system_prompt"] == "New prompt."

    resumed.system_prompt = "Newer prompt."
    command_log.clear()
    manager.sync_agent(resumed)
    manager.sync_agent(resumed)
    assert command_log.writes == ["update"]
    resumed.system_prompt = None
    manager.sync_agent(resumed)
    assert manager.get_agent_config("support")["system_prompt"] == "Newer prompt."


@pytest.mark.parametrize(("before", "after"), [(1, True), (1, 1.0), (True, 1), (0, False), ({"n": 1}, {"n": 1.0})])
def test_a_state_change_of_type_only_is_persisted(make_manager, stored, before, after):
    manager = make_manager()
    agent = make_agent(manager, [])
    agent.state.set("value", before)
    manager.sync_agent(agent)
    agent.state.set("value", after)
    manager.sync_agent(agent)

    restored = make_agent(make_manager(), []).state.get("value")
    assert restored == after
    assert type(restored) is type(after)
    if isinstance(after, dict):
        assert type(restored["n"]) is type(after["n"])
    assert type(stored()["agents"]["support"]["agent_data"]["state"]["value"]) is type(after)


def test_update_agent_config_of_missing_agent_raises_value_error(make_manager):
    with pytest.raises(ValueError, match="ghost"):
        make_manager().update_agent_config("ghost", model="m")


def test_list_agents_of_empty_session_is_empty(make_manager):
    assert make_manager().list_agents() == []


def test_update_metadata_keeps_other_fields(make_manager):
    manager = make_manager()
    manager.update_metadata({"user_name": "Alice", "priority": "high", "category": "support"})
    manager.update_metadata({"priority": "low", "prefs.theme": "dark"})
    assert manager.get_metadata() == {
        "metadata": {"user_name": "Alice", "priority": "low", "category": "support", "prefs": {"theme": "dark"}}
    }


def test_delete_metadata_removes_only_named_fields(make_manager):
    manager = make_manager()
    manager.update_metadata({"user_name": "Alice", "temp": 1, "token": "abc"})
    manager.delete_metadata(["temp", "token"])
    assert manager.get_metadata() == {"metadata": {"user_name": "Alice"}}


def test_metadata_hook_wraps_every_operation(make_manager):
    calls = []

    def audit(original_func, action, session_id, **kwargs):
        assert original_func.session_manager is manager
        calls.append((action, session_id, dict(kwargs)))
        return original_func(**kwargs) if kwargs else original_func()

    manager = make_manager(metadata_hook=audit)
    manager.update_metadata({"status": "active"})
    assert manager.get_metadata() == {"metadata": {"status": "active"}}
    manager.delete_metadata(["status"])
    assert calls == [
        ("update", "session-1", {"metadata": {"status": "active"}}),
        ("get", "session-1", {}),
        ("delete", "session-1", {"keys": ["status"]}),
    ]


def test_metadata_hook_can_validate_and_block(make_manager):
    def validate(original_func, action, session_id, **kwargs):
        if action == "update" and kwargs["metadata"].get("priority") not in (None, "low", "high"):
            raise ValueError("Invalid priority")
        return original_func(*kwargs.values())

    manager = make_manager(metadataHook=validate)
    with pytest.raises(ValueError, match="Invalid priority"):
        manager.update_metadata({"priority": "urgent"})
    manager.update_metadata({"priority": "high"})
    assert manager.get_metadata()["metadata"] == {"priority": "high"}


def test_feedback_is_stored_with_created_at_in_order(make_manager, mongo_uri, database_name):
    manager = make_manager()
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates keep milliseconds
    manager.add_feedback({"rating": "up", "comment": "Great!"})
    manager.add_feedback({"rating": None, "comment": "testing", "category": "accuracy"})
    after = datetime.now(UTC)
    feedbacks = manager.get_feedbacks()
    assert [(f["rating"], f["comment"]) for f in feedbacks] == [("up", "Great!"), (None, "testing")]
    assert feedbacks[1]["category"] == "accuracy"

    # A manager that builds its own client reads the stored BSON dates back as timezone-aware UTC datetimes.
    with MongoDBSessionManager(
        "session-1", connection_string=mongo_uri, database_name=database_name, collection_name="sessions"
    ) as own_client:
        created = [feedback["created_at"] for feedback in own_client.get_feedbacks()]
    assert all(isinstance(value, datetime) and value.utcoffset() == timedelta(0) for value in created)
    assert before <= created[0] <= created[1] <= after
    # The fixture's client is not tz-aware: the same instants, as naive UTC datetimes.
    assert [feedback["created_at"] for feedback in feedbacks] == [value.replace(tzinfo=None) for value in created]


def test_feedback_hook_sees_the_feedback_and_can_reject_it(make_manager):
    seen = []

    def require_comment(original_func, action, session_id, **kwargs):
        feedback = kwargs["feedback"]
        seen.append((action, session_id, feedback))
        if feedback.get("rating") == "down" and not feedback.get("comment"):
            raise ValueError("Please provide a comment with negative feedback")
        return original_func(feedback)

    manager = make_manager(feedbackHook=require_comment)
    with pytest.raises(ValueError):
        manager.add_feedback({"rating": "down"})
    manager.add_feedback({"rating": "down", "comment": "too slow"})
    assert [f["comment"] for f in manager.get_feedbacks()] == ["too slow"]
    assert [s[0] for s in seen] == ["add", "add"]


def test_viewer_password_is_generated_once_per_session(make_manager):
    password = make_manager().get_session_viewer_password()
    assert len(password) == 32 and password.isalnum()
    assert make_manager().get_session_viewer_password() == password
    assert make_manager("other").get_session_viewer_password() != password


def test_metadata_tool_called_directly(make_manager):
    manager = make_manager()
    metadata_tool = manager.get_metadata_tool()
    assert metadata_tool.tool_name == "manage_metadata"
    assert metadata_tool(action="set", metadata={"priority": "high", "topic": "AI"}) == (
        "Successfully updated metadata fields: ['priority', 'topic']"
    )
    assert json.loads(metadata_tool(action="get").removeprefix("All metadata: ")) == {"priority": "high", "topic": "AI"}
    assert json.loads(metadata_tool(action="get", keys=["topic"]).removeprefix("Metadata: ")) == {"topic": "AI"}
    assert metadata_tool(action="update", metadata='{"status": "open"}').startswith("Successfully updated")
    assert metadata_tool(action="delete", keys='["topic"]') == "Successfully deleted metadata fields: ['topic']"
    assert manager.get_metadata()["metadata"] == {"priority": "high", "status": "open"}
    assert metadata_tool(action="explode").startswith("Error: unknown action")
    assert metadata_tool(action="set", metadata={"$bad": 1}).startswith("Error:")


def test_metadata_tool_used_by_an_agent(make_manager):
    manager = make_manager()
    agent = make_agent(
        manager,
        [{"tool": "manage_metadata", "input": {"action": "set", "metadata": {"customer": "Alice"}}}, "Saved."],
        tools=[manager.get_metadata_tool()],
    )
    agent("Remember I am Alice")
    assert manager.get_metadata()["metadata"] == {"customer": "Alice"}
    tool_result = agent.messages[2]["content"][0]["toolResult"]
    assert tool_result["status"] == "success"


def test_tool_calls_and_results_are_persisted_in_order(make_manager, stored):
    agent = make_agent(make_manager(), [{"tool": "lookup_order", "input": {"order_id": "42"}}, "It shipped."])
    agent.tool_registry.process_tools([lookup_order])
    agent("Where is order 42?")
    messages = [m["message"] for m in stored()["agents"]["support"]["messages"]]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["content"][-1]["toolUse"]["name"] == "lookup_order"
    assert "order 42 shipped" in json.dumps(messages[2]["content"][0]["toolResult"])


def test_invalid_metadata_key_is_refused_before_hooks_write(make_manager):
    manager = make_manager()
    with pytest.raises(InvalidMetadataKeyError, match=r"\$where"):
        manager.update_metadata({"$where": "1"})
    assert manager.get_metadata() == {"metadata": {}}


def test_owned_client_closes_and_borrowed_client_stays_open(mongo_uri, client, database_name):
    with MongoDBSessionManager("s", connection_string=mongo_uri, database_name=database_name, maxPoolSize=5) as owned:
        assert owned.session_repository.client.options.pool_options.max_pool_size == 5
    with pytest.raises(Exception, match=r"closed|after close"):
        owned.get_metadata()
    borrowed = MongoDBSessionManager("s", client=client, database_name=database_name)
    borrowed.close()
    assert borrowed.get_metadata() == {"metadata": {}}


def test_non_client_kwargs_do_not_reach_mongo_client(mongo_uri, database_name):
    with MongoDBSessionManager(
        "s", connection_string=mongo_uri, database_name=database_name, serverSelectionTimeoutMS=2000, feedbackHook=None
    ) as manager:
        assert manager.session_repository.client.options.server_selection_timeout == 2


def test_a_session_created_by_another_request_meanwhile_is_opened_not_refused(mongo_uri, database_name):
    class CreateSessionDuringRead(monitoring.CommandListener):
        """Plays the other request: inserts the session right after our manager looked for it."""

        def __init__(self) -> None:
            self.armed = True

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            pass

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            if self.armed and event.command_name == "find":
                self.armed = False
                with MongoDBSessionManager("raced", connection_string=mongo_uri, database_name=database_name):
                    pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    listener = CreateSessionDuringRead()
    with MongoClient(mongo_uri, event_listeners=[listener]) as raced_client:
        manager = MongoDBSessionManager("raced", client=raced_client, database_name=database_name)
        assert not listener.armed
        password = manager.get_session_viewer_password()
    with MongoClient(mongo_uri) as check:
        documents = list(check[database_name]["collection_name"].find({"_id": "raced"}))
    assert len(documents) == 1
    assert documents[0]["session_viewer_password"] == password
