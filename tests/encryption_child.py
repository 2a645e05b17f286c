"""Child process for ``test_encryption.py``: resumes an encrypted session in a process of its own.

Usage: ``python encryption_child.py URI DATABASE KEY_FILE SESSION_ID AGENT_ID`` builds a real ``Agent`` on a
``MongoDBSessionManager`` with the local master key read from ``KEY_FILE`` and prints, as JSON, the restored
messages and state (``{"messages": [...], "state": {...}}``), or ``{"error": "<exception class name>"}`` when
the session cannot be opened (its keys were erased, for example).
"""

import json
import sys

from strands import Agent

from mongodb_session_manager import EncryptionSettings, MongoDBSessionManager
from mongodb_session_manager.encryption import load_local_key
from mongodb_session_manager.errors import EncryptionKeyError
from mongodb_session_manager.testing import ScriptedModel

COLLECTION = "sessions"


def main() -> None:
    """Resume the session named on the command line and print what came back."""
    uri, database, key_file, session_id, agent_id = sys.argv[1:]
    settings = EncryptionSettings.local(load_local_key(key_file), key_vault_namespace=f"{database}.keyvault")
    try:
        with MongoDBSessionManager(
            session_id, uri, database_name=database, collection_name=COLLECTION, encryption=settings
        ) as manager:
            agent = Agent(agent_id=agent_id, model=ScriptedModel([]), session_manager=manager, callback_handler=None)
            print(json.dumps({"messages": agent.messages, "state": agent.state.get()}))
    except EncryptionKeyError as error:
        print(json.dumps({"error": type(error).__name__}))


if __name__ == "__main__":
    main()
