"""Session metadata: partial updates keep the other fields, dotted keys set nested fields, deletes remove fields.

Run it with ``uv run python examples/example_metadata_update.py`` (embedded MongoDB when ``MONGODB_URI`` is unset).

Each step prints the metadata as stored in MongoDB afterwards. The last step shows that an invalid key is refused
before anything is written.
"""

import uuid

from strands import Agent

from mongodb_session_manager import InvalidMetadataKeyError, create_mongodb_session_manager
from mongodb_session_manager.demo_model import create_model, describe_model
from mongodb_session_manager.startup import require_mongodb


def main() -> None:
    session_id = f"metadata-update-{uuid.uuid4().hex[:8]}"
    model = create_model()
    print(f"Model: {describe_model(model)}")
    print(f"Session {session_id!r}")

    with create_mongodb_session_manager(session_id=session_id) as session_manager:

        def show(step: str) -> None:
            print(f"{step}\n  -> {session_manager.get_metadata()['metadata']}")

        agent = Agent(agent_id="assistant", model=model, session_manager=session_manager, callback_handler=None)
        print(f"  assistant: {str(agent('Hello, my name is Alice.')).strip()}")

        session_manager.update_metadata({"user_id": "user-123", "priority": "high", "department": "sales"})
        show("update_metadata({user_id, priority, department})")

        session_manager.update_metadata({"priority": "medium", "assigned_to": "agent-456"})
        show("update_metadata({priority: medium, assigned_to}): user_id and department are kept")

        session_manager.update_metadata({"preferences": {"language": "en", "theme": "light"}})
        session_manager.update_metadata({"preferences.theme": "dark"})
        show('update_metadata({"preferences.theme": "dark"}): only the nested field changes')

        session_manager.update_metadata({"user_email": "alice@example.com", "phone_number": "+1-555-0100"})
        session_manager.delete_metadata(["user_email", "phone_number"])
        show("delete_metadata([user_email, phone_number]): personal data removed, the rest kept")

        try:
            session_manager.update_metadata({"status": "closed", "$where": "1"})
        except InvalidMetadataKeyError as error:
            print(f"update_metadata with a '$' key raises {type(error).__name__}: {error}")
        show("nothing of that refused update was written (status is not set)")


if __name__ == "__main__":
    require_mongodb("example_metadata_update")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
