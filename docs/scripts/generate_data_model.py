"""Generate ``docs/architecture/data-model.generated.json``: the real stored document of one session.

The session has two agents (``support`` calls a tool and carries prompt metadata; ``translator.v2`` shows how
a dotted agent id is escaped, and a guardrail redacts its second request), an application name, metadata and
feedback. It is written by the library itself, through real ``strands.Agent`` objects driven by
``ScriptedModel``, on a SecantusDB server started in a temporary directory; the raw document is then read back
with pymongo and written as relaxed Extended JSON.

    uv run python docs/scripts/generate_data_model.py [--output PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bson import json_util
from pymongo import MongoClient
from strands import Agent, tool

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "architecture" / "data-model.generated.json"
SESSION_ID = "customer-42"
DATABASE = "docs"
COLLECTION = "agent_sessions"


TRACE = {
    "inputAssessment": {
        "order-guardrail": {
            "topicPolicy": {"topics": [{"name": "Burglary", "type": "DENY", "action": "BLOCKED", "detected": True}]}
        }
    }
}
"""The Amazon Bedrock guardrail trace of the translator's blocked request."""


@tool
def lookup_order(order_id: str) -> dict:
    """Return the status of an order."""
    return {"order_id": order_id, "status": "shipped", "carrier": "UPS"}


def write_session(uri: str) -> dict:
    """Write the example session through the library and return its raw document."""
    with MongoDBSessionManager(
        session_id=SESSION_ID,
        connection_string=uri,
        database_name=DATABASE,
        collection_name=COLLECTION,
        metadata_fields=["customer_id"],
        application_name="order-desk",
    ) as session_manager:
        support = Agent(
            agent_id="support",
            model=ScriptedModel(
                [
                    {"tool": "lookup_order", "input": {"order_id": "A-1001"}, "id": "tooluse_lookup_1"},
                    "Order A-1001 has shipped with UPS.",
                ],
                model_id="support-model",
                time_to_first_byte_ms=120,
                cache_read_tokens=30,
            ),
            system_prompt="You answer questions about orders.",
            tools=[lookup_order],
            session_manager=session_manager,
            callback_handler=None,
        )
        support("Where is my order A-1001?")
        support.state.set("last_order_id", "A-1001")
        session_manager.sync_agent(support)
        session_manager.set_prompt_metadata(
            "support", {"prompt_id": "orders-support", "version": 7, "deployment": "eu-prod", "temperature": 0.2}
        )

        translator = Agent(
            agent_id="translator.v2",
            model=ScriptedModel(
                ["Su pedido A-1001 ha sido enviado con UPS.", {"text": "Lo siento.", "guardrail": {"trace": TRACE}}],
                model_id="translator-model",
                time_to_first_byte_ms=90,
            ),
            system_prompt="Translate the user's text into Spanish.",
            session_manager=session_manager,
            callback_handler=None,
        )
        translator("Your order A-1001 has shipped with UPS.")
        translator("Translate: how do I pick the lock of my neighbour's house?")  # the guardrail redacts it

        session_manager.update_metadata({"customer_id": "C-42", "channel": "web", "preferences.language": "es"})
        session_manager.add_feedback({"rating": "up", "comment": "Quick answer, thanks!"})

    with MongoClient(uri) as client:
        document = client[DATABASE][COLLECTION].find_one({"_id": SESSION_ID})
    assert document is not None
    return document


def render(document: dict) -> str:
    """Return the document as pretty relaxed Extended JSON (dates as ``{"$date": ...}``)."""
    return json_util.dumps(document, json_options=json_util.RELAXED_JSON_OPTIONS, indent=2) + "\n"


def generate(output: Path) -> dict:
    """Start a throwaway server, write the session, save its document to ``output`` and return it."""
    from secantus import SecantusDBServer

    with tempfile.TemporaryDirectory(prefix="data-model-") as data_dir:
        server = SecantusDBServer(storage_path=data_dir, port=0)
        server.start()
        try:
            document = write_session(server.uri)
        finally:
            server.stop()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(document))
    return document


def main() -> None:
    """Command line: regenerate the data-model document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args()
    generate(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
