"""Customer support with session metadata: a ticket's life from first message to archive, as a web app would do it.

Run it with ``uv run python examples/example_metadata_production.py`` (embedded MongoDB and the offline demo model
when nothing is configured).

Every step is a separate "request": a manager from one ``MongoDBSessionManagerFactory`` (shared client), an agent
restored from MongoDB, and partial metadata updates that never overwrite what other steps stored:

1. open the ticket (customer, channel, status, priority) and answer the customer;
2. escalate (status, priority, assignee, a nested escalation reason);
3. resolve (resolution, feedback from the customer);
4. archive (remove personal data, keep what reporting needs);
5. a support dashboard finds tickets by indexed metadata fields.
"""

import uuid
from datetime import UTC, datetime

from strands import Agent

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.demo_model import create_model, describe_model
from mongodb_session_manager.startup import require_mongodb

INDEXED_FIELDS = ["status", "priority", "customer_id"]
SYSTEM_PROMPT = "You are a customer support agent for an online shop. Be brief and kind."


def main() -> None:
    model = create_model()
    print(f"Model: {describe_model(model)}")
    factory = MongoDBSessionManagerFactory(metadata_fields=INDEXED_FIELDS)  # the default database and collection
    run = uuid.uuid4().hex[:8]
    ticket = f"ticket-{run}-1"

    def handle(session_id: str, message: str, metadata: dict) -> None:
        """One request: answer the customer and record what this step learned about the ticket."""
        with factory.create_session_manager(session_id) as session_manager:
            agent = Agent(
                agent_id="support",
                model=model,
                system_prompt=SYSTEM_PROMPT,
                session_manager=session_manager,
                callback_handler=None,
            )
            print(f"  customer: {message}")
            print(f"  support:  {str(agent(message)).strip()}")
            session_manager.update_metadata({**metadata, "last_activity": datetime.now(UTC)})
            stored = session_manager.get_metadata()["metadata"]
            print(f"  metadata: status={stored['status']!r} priority={stored['priority']!r} keys={sorted(stored)}")

    print(f"1. Ticket {ticket!r} opened")
    handle(
        ticket,
        "Hi, my name is Alice. I was charged twice for order 1001.",
        {
            "customer_id": "cust-1001",
            "customer_email": "alice@example.com",
            "channel": "web",
            "topic": "billing",
            "status": "open",
            "priority": "normal",
            "opened_at": datetime.now(UTC),
        },
    )

    print("2. Escalated to billing")
    handle(
        ticket,
        "It is urgent, please fix it today.",
        {
            "status": "escalated",
            "priority": "high",
            "assigned_to": "billing-agent-42",
            "escalation.reason": "double charge",
            "escalation.at": datetime.now(UTC),
        },
    )

    print("3. Resolved")
    handle(ticket, "Thanks, I can see the refund now.", {"status": "resolved", "resolution": "refund issued"})
    with factory.create_session_manager(ticket) as session_manager:
        session_manager.add_feedback({"rating": "up", "comment": "Fast refund, thank you"})
        print(f"  feedback: {[(f['rating'], f['comment']) for f in session_manager.get_feedbacks()]}")

    print("4. Archived: personal data removed, reporting fields kept")
    with factory.create_session_manager(ticket) as session_manager:
        session_manager.delete_metadata(["customer_email"])
        session_manager.update_metadata({"archived": True})
        print(f"  metadata keys: {sorted(session_manager.get_metadata()['metadata'])}")

    other = f"ticket-{run}-2"
    print(f"(another customer opens {other!r})")
    handle(other, "Where is my parcel?", {"customer_id": "cust-2002", "status": "open", "priority": "normal"})

    print("5. Support dashboard: queries on indexed metadata fields")
    collection = factory.client[factory.database_name][factory.collection_name]
    indexed = sorted(name for name in collection.index_information() if name.startswith("metadata."))
    print(f"  metadata indexes: {indexed}")
    mine = {"_id": {"$in": [ticket, other]}}
    for status in ("open", "escalated", "resolved"):
        found = [doc["_id"] for doc in collection.find({**mine, "metadata.status": status}, {"_id": 1})]
        print(f"  status={status!r}: {found}")
    factory.close()


if __name__ == "__main__":
    require_mongodb("example_metadata_production")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
