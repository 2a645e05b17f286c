"""The Session Viewer's layout and wording in a real browser, at desktop (1280 px) and phone (390 px) widths.

Long metadata stays inside the results list (cut with an ellipsis, the whole value in the title), metadata
date-times read like the page's other dates, every message says who speaks to which agent, and a capped search
count reads "1,000+". Debian chromium driven by Playwright against the real backend; screenshots in the pytest
tmp dir.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo import MongoClient
from strands import Agent, tool
from strands.types.session import Session, SessionType

from browser_support import chromium, served, skip_without_chromium
from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionRepository
from mongodb_session_manager.documents import session_document
from mongodb_session_manager.testing import ScriptedModel

skip_without_chromium()
pytestmark = pytest.mark.slow  # a real browser

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from session_viewer.backend.app import create_app  # noqa: E402
from session_viewer.backend.config import Settings  # noqa: E402

BACKEND_PASSWORD = "layout-test-password-0123456789"
COLLECTION = "layout_sessions"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LONG_VALUE = "customer-reference-" + "0123456789abcdef" * 6  # 115 characters without a space
STRING_TIME = "2024-05-01T12:34:56+00:00"  # a date-time an application stored as a string
BSON_TIME = datetime(2024, 5, 2, 8, 0, 0, tzinfo=UTC)  # stored as a BSON date
BULK = 1_001  # one past the search's count cap

expect.set_options(timeout=10_000)


@tool
def lookup_order(order_id: str) -> dict:
    """Look up the shipping status of an order."""
    return {"order_id": order_id, "status": "shipped"}


def _seed(client: MongoClient, database_name: str) -> None:
    """One session written by a real agent (a tool call, long and date-time metadata) and 1,001 bare sessions."""
    with MongoDBSessionManager(
        "long-meta-1", client=client, database_name=database_name, collection_name=COLLECTION
    ) as manager:
        agent = Agent(
            agent_id="support",
            model=ScriptedModel(
                [{"tool": "lookup_order", "input": {"order_id": "7"}, "id": "tool-7"}, "Order 7 has shipped."]
            ),
            tools=[lookup_order],
            session_manager=manager,
            callback_handler=None,
        )
        agent("Where is order 7?")
        manager.update_metadata({"reference": LONG_VALUE, "opened_at": STRING_TIME, "follow_up": BSON_TIME})
    MongoDBSessionRepository(client=client, database_name=database_name, collection_name=COLLECTION).close()
    client[database_name][COLLECTION].insert_many(
        [session_document(Session(session_id=f"bulk-{n:04d}", session_type=SessionType.AGENT)) for n in range(BULK)]
    )


@pytest.fixture(scope="module")
def viewer_url(mongo_uri: str) -> Iterator[str]:
    """The real backend on a free local port, over a database seeded once for the module."""
    database_name = "test_layout_browser"
    with MongoClient(mongo_uri, tz_aware=True) as client:
        client.drop_database(database_name)
        _seed(client, database_name)
        settings = Settings(
            _env_file=None,
            mongodb_uri=mongo_uri,
            database_name=database_name,
            collection_name=COLLECTION,
            backend_password=BACKEND_PASSWORD,
        )
        try:
            with served(create_app(settings), "session-viewer-layout") as url:
                yield url
        finally:
            client.drop_database(database_name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium (never a downloaded browser)."""
    with chromium() as launched:
        yield launched


def _page(browser: Browser, viewport: dict[str, int], **options) -> Iterator[Page]:
    """A fresh context in Paris time (dates must be converted to be right); fails on any JavaScript error."""
    context = browser.new_context(viewport=viewport, timezone_id="Europe/Paris", **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture(params=["desktop", "phone"])
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    if request.param == "desktop":
        yield from _page(browser, DESKTOP)
    else:
        yield from _page(browser, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def _log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    page.get_by_label("Backend password").fill(BACKEND_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#results .summary")).to_contain_text("found")


def _open(page: Page, url: str, session_id: str) -> None:
    _log_in(page, url)
    page.goto(f"{url}/#/sessions/{session_id}")
    expect(page.locator("#detail .session-id")).to_have_text(session_id)


def _search_prefix(page: Page, text: str, anywhere: bool = False) -> None:
    if page.get_by_role("navigation", name="Panels").is_visible():
        page.get_by_role("navigation", name="Panels").get_by_role("button", name="Filters").click()
    page.get_by_label("Session ID").fill(text)
    if anywhere:
        page.get_by_label("Match anywhere in the id (slower)").check()
    page.get_by_role("button", name="Search").click()


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


def test_long_metadata_stays_inside_the_results_list(page: Page, viewer_url: str, tmp_path: Path) -> None:
    _log_in(page, viewer_url)
    _search_prefix(page, "long-")
    expect(page.locator("#results .summary")).to_have_text("1 session found")
    chip = page.locator("#results .chip", has_text="reference")
    expect(chip).to_have_attribute("title", f"reference: {LONG_VALUE}")  # the whole value, on hover
    _shot(page, tmp_path, "long-metadata")

    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('#results .results-list, #results a.result, #results .result-line,'
                                              + ' #results .chips')]
                  .filter(node => node.scrollWidth > node.clientWidth)
                  .map(node => `${node.className}: ${node.scrollWidth} > ${node.clientWidth}`)"""
    )
    assert overflowing == []
    result = page.locator("#results a.result").first.bounding_box()
    for box in (chip.bounding_box(), page.locator("#results .chips").bounding_box()):
        assert box is not None and result is not None
        assert result["x"] <= box["x"] and box["x"] + box["width"] <= result["x"] + result["width"], (box, result)
    assert chip.evaluate("node => getComputedStyle(node).textOverflow") == "ellipsis"
    assert chip.evaluate("node => node.scrollWidth > node.clientWidth")  # cut, not wrapped out of the line
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_metadata_date_times_read_like_the_pages_dates(page: Page, viewer_url: str, tmp_path: Path) -> None:
    _open(page, viewer_url, "long-meta-1")
    metadata = page.locator("#detail .kv")
    expect(metadata.locator("time")).to_have_count(2)
    for stored, shown in ((STRING_TIME, "2024-05-01 14:34:56"), ("2024-05-02T08:00:00", "2024-05-02 10:00:00")):
        date = metadata.locator(f"time[datetime^='{stored[:19]}']")
        expect(date).to_have_text(shown)  # the page's format, in the reader's zone (Paris: UTC+2 in May)
        assert date.get_attribute("title").startswith(stored[:19])  # the stored value, on hover
    assert STRING_TIME not in metadata.inner_text()
    expect(metadata).to_contain_text(LONG_VALUE)  # the detail shows long values whole, wrapped
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    _shot(page, tmp_path, "metadata-dates")

    _search_prefix(page, "long-")
    chips = page.locator("#results .chip")
    expect(chips.locator("time")).to_have_count(2)
    expect(page.locator("#results .chip", has_text="opened_at").locator("time")).to_have_text("2024-05-01 14:34:56")


def test_each_message_says_who_speaks_to_which_agent(page: Page, viewer_url: str, tmp_path: Path) -> None:
    _open(page, viewer_url, "long-meta-1")
    speakers = page.locator("#detail li.tl-message .speaker")
    expect(speakers).to_have_count(4)
    assert speakers.all_inner_texts() == [
        "User, to agent support",
        "Agent support",
        "Tool results, to agent support",
        "Agent support",
    ]
    assert page.locator("#detail li.tl-message").evaluate_all("items => items.map(i => i.dataset.role)") == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    _shot(page, tmp_path, "speakers")


def test_a_capped_count_reads_1000_plus_and_pages_on(page: Page, viewer_url: str, tmp_path: Path) -> None:
    _log_in(page, viewer_url)
    expect(page.locator("#results .summary")).to_have_text("1,002 sessions found")  # no criterion: exact
    _search_prefix(page, "bulk-")
    expect(page.locator("#results .summary")).to_have_text("1,000+ sessions found")
    expect(page.locator("#results-count")).to_have_text("(1,000+)")
    expect(page.locator("#results .pager-position")).to_have_text("1\u201320 of 1,000+")
    assert page.locator("#results .result-id").first.inner_text() == "bulk-0000"  # a prefix lists in id order
    _shot(page, tmp_path, "capped-count")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#results .pager-position")).to_have_text("21\u201340 of 1,000+")

    _search_prefix(page, "ULK-100")  # a prefix is case-sensitive and anchored
    expect(page.locator("#results .summary")).to_have_text("No sessions match.")
    _search_prefix(page, "ULK-100", anywhere=True)
    expect(page.locator("#results .summary")).to_have_text("1 session found")
    assert page.locator("#results .result-id").all_inner_texts() == ["bulk-1000"]
