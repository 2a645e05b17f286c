"""Snapshot sessions in the Session Viewer, in a real browser (Debian chromium driven by Playwright).

A classic session (``MongoDBSessionManager``) and snapshot sessions (strands' ``SnapshotSessionManager`` on
``MongoDBStorage``, gzip-compressed) are written by real agents; the real backend serves the real pages.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.session import SnapshotSessionManager

from browser_support import chromium, served, skip_without_chromium
from mongodb_session_manager import MongoDBSessionManager, MongoDBStorage
from mongodb_session_manager.demo_model import calculator
from mongodb_session_manager.testing import ScriptedModel

skip_without_chromium()
pytestmark = pytest.mark.slow  # a real browser

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from session_viewer.backend.app import create_app  # noqa: E402
from session_viewer.backend.config import Settings  # noqa: E402

BACKEND_PASSWORD = "browser-test-password-0123456789"
COLLECTION = "viewer_sessions"
XSS_IMG = '<img src=x onerror="window.__xss=1">'

expect.set_options(timeout=10_000)


def _seed(mongo_uri: str, database_name: str) -> None:
    """One classic session and two snapshot sessions (one with a tool call, agent state and checkpoints)."""
    with MongoClient(mongo_uri) as client:
        manager = MongoDBSessionManager(
            "classic-1", client=client, database_name=database_name, collection_name=COLLECTION
        )
        Agent(agent_id="support", model=ScriptedModel(["Hello"]), session_manager=manager, callback_handler=None)("Hi")
    storage = MongoDBStorage(mongo_uri, database_name=database_name, compress="gzip")
    manager = SnapshotSessionManager("snap-maths", storage=storage, snapshot_trigger=lambda *, agent_data, **_: True)
    agent = Agent(
        agent_id="calc",
        model=ScriptedModel(
            [{"tool": "calculator", "input": {"expression": "6 * 7"}, "id": "t1"}, "It is **42**.", "Noted."]
        ),
        tools=[calculator],
        session_manager=manager,
        callback_handler=None,
    )
    agent("What is 6 * 7?")
    agent.state.set("favourite_number", 42)
    agent(XSS_IMG)
    other = SnapshotSessionManager("snap-other", storage=storage)
    Agent(agent_id="solo", model=ScriptedModel(["Bye."]), session_manager=other, callback_handler=None)("Goodbye")


@contextmanager
def _viewer(mongo_uri: str, database_name: str) -> Iterator[str]:
    settings = Settings(
        mongodb_uri=mongo_uri,
        database_name=database_name,
        collection_name=COLLECTION,
        backend_password=BACKEND_PASSWORD,
    )
    with served(create_app(settings), "session-viewer") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def _log_in(page: Page) -> None:
    page.get_by_label("Backend password").fill(BACKEND_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_snapshot_sessions_are_listed_beside_sessions_and_open_read_only(
    page: Page, mongo_uri: str, database_name: str, tmp_path: Path
) -> None:
    _seed(mongo_uri, database_name)
    with _viewer(mongo_uri, database_name) as url:
        page.goto(url + "/")
        _log_in(page)
        expect(page.locator("#results .summary")).to_have_text("1 session found")
        expect(page.locator("#snapshots")).to_be_visible()
        expect(page.locator("#snapshot-results .summary")).to_have_text("2 sessions found")
        ids = page.locator("#snapshot-results a.result .result-id").all_text_contents()
        assert ids == ["snap-maths", "snap-other"]
        expect(page.locator("#snapshot-results a.result").first).to_contain_text("2 checkpoints")

        page.locator("#snapshot-results a.result", has_text="snap-maths").click()
        assert page.url.endswith("#/snapshots/snap-maths")
        head = page.locator("#detail header.session-head")
        expect(head).to_contain_text("snapshot · read-only")
        expect(head).to_contain_text("Checkpoints")
        expect(page.locator("#detail li.tl-item")).to_have_count(6)
        roles = page.locator("#detail li.tl-item").evaluate_all("items => items.map(i => i.dataset.role)")
        assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]
        expect(page.locator("#detail details.tool-use")).to_contain_text("calculator")
        expect(page.locator("#detail strong", has_text="42")).to_be_visible()
        expect(page.locator("#detail .agent-state pre")).to_contain_text('"favourite_number": 42')
        expect(page.locator("#detail")).not_to_contain_text("Feedback")
        expect(page.locator("#detail")).not_to_contain_text("Metadata")
        expect(page.locator("#detail li.tl-item").nth(4)).to_contain_text(XSS_IMG)  # literal text, never markup
        assert page.evaluate("window.__xss") is None
        expect(page.locator("#snapshot-results a.result[aria-current='true']")).to_have_text(re.compile("snap-maths"))
        shot = tmp_path / "snapshot-session.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0

        page.get_by_label("Session id").fill("other")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#snapshot-results .summary")).to_have_text("1 session found")
        expect(page.locator("#results .summary")).to_have_text("No sessions match.")


def test_a_snapshot_link_asks_for_the_backend_password_only(page: Page, mongo_uri: str, database_name: str) -> None:
    _seed(mongo_uri, database_name)
    with _viewer(mongo_uri, database_name) as url:
        page.goto(url + "/#/snapshots/snap-other")
        expect(page.locator("#login-intro")).to_contain_text("snapshot session “snap-other”")
        expect(page.locator("#login-switch")).to_be_hidden()  # no session password for snapshot sessions
        _log_in(page)
        expect(page.locator("#detail header.session-head")).to_contain_text("snap-other")
        expect(page.locator("#detail li.tl-item")).to_have_count(2)


def test_without_the_storage_collection_no_snapshot_list_is_shown(
    page: Page, mongo_uri: str, database_name: str
) -> None:
    with MongoClient(mongo_uri) as client:
        manager = MongoDBSessionManager(
            "classic-1", client=client, database_name=database_name, collection_name=COLLECTION
        )
        Agent(agent_id="support", model=ScriptedModel(["Hello"]), session_manager=manager, callback_handler=None)("Hi")
    with _viewer(mongo_uri, database_name) as url:
        page.goto(url + "/")
        _log_in(page)
        expect(page.locator("#results .summary")).to_have_text("1 session found")
        expect(page.locator("#snapshot-results .summary")).to_have_text("No snapshot sessions match.")
        expect(page.locator("#snapshots")).to_be_hidden()
