"""The hooks package imports without boto3 and says so; creating a hook then explains what to install.

strands itself imports boto3, so the check loads ``mongodb_session_manager.hooks`` on its own (the parent
package's ``__init__`` is stood in for) in a process where importing boto3 or botocore fails.
"""

import subprocess
import sys
from pathlib import Path

import mongodb_session_manager

PACKAGE_DIR = Path(mongodb_session_manager.__file__).parent

SCRIPT = """
import importlib, sys, types

class NoBoto:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("boto3", "botocore"):
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoBoto())
parent = types.ModuleType("mongodb_session_manager")
parent.__path__ = [PACKAGE_DIR]
sys.modules["mongodb_session_manager"] = parent

hooks = importlib.import_module("mongodb_session_manager.hooks")
print("available:", hooks.is_feedback_sns_hook_available(), hooks.is_metadata_sqs_hook_available(),
      hooks.is_metadata_websocket_hook_available())
print("exported:", hooks.FeedbackSNSHook.__name__, hooks.MetadataSQSHook.__name__, hooks.MetadataWebSocketHook.__name__)
try:
    hooks.create_metadata_sqs_hook("https://sqs.eu-west-1.amazonaws.com/123456789012/q")
except ImportError as error:
    print("error:", error)
print("boto3 imported:", "boto3" in sys.modules)
"""


def test_hooks_import_without_boto3_and_creating_one_says_what_to_install():
    script = SCRIPT.replace("PACKAGE_DIR", repr(str(PACKAGE_DIR)))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "available: False False False",
        "exported: FeedbackSNSHook MetadataSQSHook MetadataWebSocketHook",
        "error: MetadataSQSHook needs boto3: install the 'aws' extra: pip install 'mongodb-session-manager[aws]'",
        "boto3 imported: False",
    ]
