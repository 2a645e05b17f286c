"""The pieces both web apps share (``web_common``): one JSON conversion and one DOM helper, served by both."""

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from bson import Binary, Decimal128, ObjectId
from fastapi.testclient import TestClient

from mongodb_session_manager.demo_model import DemoModel
from mongodb_session_manager.documents import encode_value
from playground.chat import Settings as PlaygroundSettings
from playground.chat import create_app as create_playground
from playground.chat.app import STATIC_DIR as PLAYGROUND_DIR
from session_viewer.backend import Settings as ViewerSettings
from session_viewer.backend import create_app as create_viewer
from session_viewer.backend.routes.frontend import FRONTEND_DIR
from web_common.assets import COMMON_STATIC_DIR, COMMON_STATIC_PATH
from web_common.values import json_safe, parse_timestamp, plain_json

LOCAL = "http://localhost"

# ----------------------------------------------------------------------------- json_safe / plain_json


def test_json_safe_turns_stored_values_into_json() -> None:
    stored = {
        "when": datetime(2025, 1, 2, 3, 4, 5, 6000),  # pymongo reads BSON dates as naive UTC
        "local": datetime(2025, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        "blob": Binary(b"\x00\x01\x02"),
        "strands_bytes": {"__bytes_encoded__": True, "data": "AAEC"},
        "ids": (ObjectId("0123456789abcdef01234567"), Decimal128("1.5")),
        "floats": [1.5, math.inf, math.nan],
        "plain": [None, True, 3, "text"],
        7: "an int key",
    }

    assert json_safe(stored) == {
        "when": "2025-01-02T03:04:05.006000+00:00",
        "local": "2025-01-02T03:04:05.000000+00:00",
        "blob": {"binary_size_bytes": 3},
        "strands_bytes": {"binary_size_bytes": 3},
        "ids": ["0123456789abcdef01234567", "1.5"],
        "floats": [1.5, "inf", "nan"],
        "plain": [None, True, 3, "text"],
        "7": "an int key",
    }


def test_json_safe_decodes_the_librarys_stored_form_and_plain_json_does_not_decode_again() -> None:
    written = {"$gt": 1, "a.b": 2**70}
    assert json_safe(encode_value(written)) == {"$gt": 1, "a.b": 2**70}
    # a value already read through the library stays as it is, even when it looks like the stored form
    looks_encoded = encode_value({"$gt": 1})
    assert plain_json(looks_encoded) == looks_encoded
    assert json_safe(looks_encoded) != looks_encoded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2025, 1, 2, 3, 4, 5), datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T04:04:05+01:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("not a date", None),
        (42, None),
    ],
)
def test_parse_timestamp_reads_dates_and_iso_strings_as_utc(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


# ----------------------------------------------------------------------------- the shared DOM helper


def test_both_apps_serve_the_same_dom_helper_at_the_same_path(mongo_uri: str, database_name: str) -> None:
    common = {"_env_file": None, "mongodb_uri": mongo_uri, "database_name": database_name}
    viewer = create_viewer(ViewerSettings(**common, backend_password="shared-layer-test-password-0123456789"))
    playground = create_playground(PlaygroundSettings(**common), model=DemoModel())
    shared = (COMMON_STATIC_DIR / "dom.js").read_bytes()
    for app in (viewer, playground):
        with TestClient(app, base_url=LOCAL) as client:
            response = client.get(f"{COMMON_STATIC_PATH}/dom.js")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/javascript")
            assert response.content == shared
            assert client.get(f"{COMMON_STATIC_PATH}/").status_code == 404  # no directory listing
            assert client.get(f"{COMMON_STATIC_PATH}/missing.js").status_code == 404


def test_each_app_imports_el_from_the_shared_file_and_defines_none_of_its_own() -> None:
    playground_js = PLAYGROUND_DIR / "js"
    sources = {path: path.read_text() for path in [*FRONTEND_DIR.glob("js/*.js"), *playground_js.glob("*.js")]}
    assert not [path.name for path, source in sources.items() if "function el(" in source]
    importing = [path for path, source in sources.items() if f'from "{COMMON_STATIC_PATH}/dom.js"' in source]
    assert FRONTEND_DIR / "js" / "dom.js" in importing
    assert playground_js / "app.js" in importing
    assert "export function el(" in (COMMON_STATIC_DIR / "dom.js").read_text()
