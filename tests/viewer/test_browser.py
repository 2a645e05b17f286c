"""The Session Viewer in a real browser: Debian chromium driven by Playwright against the real backend.

Sessions are written by the library itself (real ``strands.Agent`` objects with ``ScriptedModel``), the backend is
the real FastAPI app served by uvicorn on 127.0.0.1, and the pages are the static files it serves.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import MongoClient
from strands import Agent, tool

from browser_support import chromium, served, skip_without_chromium
from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.testing import ScriptedModel

skip_without_chromium()
pytestmark = pytest.mark.slow  # a real browser

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from session_viewer.backend.app import create_app  # noqa: E402
from session_viewer.backend.config import Settings  # noqa: E402

BACKEND_PASSWORD = "browser-test-password-0123456789"
COLLECTION = "viewer_sessions"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script>"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(2040)
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=10_000)


@tool
def lookup_order(order_id: str) -> dict:
    """Look up the shipping status of an order."""
    return {"order_id": order_id, "status": "shipped", "carrier": "DHL"}


@dataclass
class Viewer:
    """A running viewer backend and what was seeded into its database."""

    url: str
    session_passwords: dict[str, str] = field(default_factory=dict)


def _seed(client: MongoClient, database_name: str) -> dict[str, str]:
    """Write three sessions with the library and return their viewer passwords."""

    def manager(session_id: str, application_name: str | None = None) -> MongoDBSessionManager:
        return MongoDBSessionManager(
            session_id,
            client=client,
            database_name=database_name,
            collection_name=COLLECTION,
            metadata_fields=["status", "customer"],
            application_name=application_name,
        )

    passwords: dict[str, str] = {}

    order = manager("order-1001", application_name="shop")
    support = Agent(
        agent_id="support",
        model=ScriptedModel(
            [
                {"tool": "lookup_order", "input": {"order_id": "1001"}, "id": "tool-1001"},
                "Your order **1001** has shipped:\n\n- carrier: `DHL`\n- [track it](https://example.com/track/1001)",
                "You're welcome!",
            ]
        ),
        tools=[lookup_order],
        session_manager=order,
        system_prompt="You help customers with their orders.",
        callback_handler=None,
    )
    planner = Agent(
        agent_id="planner.v2",
        model=ScriptedModel(["1. Email the customer\n2. Close the ticket"]),
        session_manager=order,
        callback_handler=None,
    )
    support("Where is my order 1001?")
    planner("Plan the follow-up")
    support("Thanks!")
    order.update_metadata({"status": "open", "customer": "alice", "priority": 2})
    order.add_feedback({"rating": "up", "comment": "Quick and correct answer"})
    passwords["order-1001"] = order.get_session_viewer_password()

    refund = manager("order-1002", application_name="shop")
    agent = Agent(
        agent_id="support",
        model=ScriptedModel(["I see the damage. A refund is on its way."]),
        session_manager=refund,
        callback_handler=None,
    )
    agent(
        [
            {"text": "My parcel arrived broken, see the photo"},
            {"image": {"format": "png", "source": {"bytes": PNG_BYTES}}},
        ]
    )
    refund.update_metadata({"status": "closed", "customer": "bob"})
    refund.add_feedback({"rating": "down", "comment": "Took too long"})
    passwords["order-1002"] = refund.get_session_viewer_password()

    hostile = manager("xss-1")
    agent = Agent(
        agent_id="support",
        model=ScriptedModel(["I can only help with orders."]),
        session_manager=hostile,
        callback_handler=None,
    )
    agent(f"{XSS_IMG} and {XSS_SCRIPT}\n\n[click me](javascript:window.__xss=3)")
    hostile.update_metadata({"status": "open", "customer": "mallory"})
    passwords["xss-1"] = hostile.get_session_viewer_password()
    return passwords


@pytest.fixture
def viewer_settings(request: pytest.FixtureRequest) -> dict:
    """Extra backend settings for one test (parametrise indirectly to change them)."""
    return getattr(request, "param", {})


@pytest.fixture
def viewer(mongo_uri: str, database_name: str, viewer_settings: dict) -> Iterator[Viewer]:
    """The real backend on a free local port, over a database seeded by the library."""
    with MongoClient(mongo_uri) as client:
        passwords = _seed(client, database_name)
    settings = Settings(
        mongodb_uri=mongo_uri,
        database_name=database_name,
        collection_name=COLLECTION,
        backend_password=BACKEND_PASSWORD,
        enum_fields_str="status",
        **viewer_settings,
    )
    with served(create_app(settings), "session-viewer") as url:
        yield Viewer(url=url, session_passwords=passwords)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium (never a downloaded browser)."""
    with chromium() as launched:
        yield launched


def _open_page(browser: Browser, **context_options) -> Iterator[Page]:
    """A fresh browser context (empty sessionStorage); fails the test on any JavaScript error in the page."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, viewport=DESKTOP)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def _log_in(page: Page, viewer: Viewer, password: str = BACKEND_PASSWORD) -> None:
    page.goto(viewer.url + "/")
    page.get_by_label("Backend password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _listed_sessions(page: Page) -> list[str]:
    return page.locator("#results a.result .result-id").all_text_contents()


def _timeline(page: Page) -> list[dict]:
    return page.locator("#detail li.tl-item").evaluate_all(
        """items => items.map(item => ({
            type: item.dataset.type,
            role: item.dataset.role || item.dataset.rating || null,
            agent: item.dataset.agent || null,
            timestamp: item.querySelector("time")?.getAttribute("datetime"),
            text: item.textContent,
        }))"""
    )


def _shot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


def test_login_lists_sessions_and_health_is_ok(page, viewer, tmp_path):
    page.goto(viewer.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#health")).to_have_attribute("data-status", "ok")
    expect(page.locator("#health")).to_contain_text("Backend OK")
    _shot(page, tmp_path, "login")

    _log_in(page, viewer, password="not-the-backend-password")
    expect(page.get_by_role("alert")).to_contain_text("not right")
    expect(page.locator("#workspace")).to_be_hidden()

    page.get_by_label("Backend password").fill(BACKEND_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")
    assert sorted(_listed_sessions(page)) == ["order-1001", "order-1002", "xss-1"]
    expect(page.locator("#health")).to_have_attribute("data-status", "ok")
    _shot(page, tmp_path, "logged-in")

    page.reload()  # the password lives in sessionStorage: a reload keeps the user signed in
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Backend password")).to_be_visible()


@pytest.mark.parametrize("viewer_settings", [{"default_page_size": 2}], indirect=True)
def test_results_are_paged_newest_first(page, viewer, tmp_path):
    _log_in(page, viewer)
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")
    expect(page.locator("#results .pager-position")).to_have_text("1\u20132 of 3")
    assert _listed_sessions(page) == ["xss-1", "order-1002"]
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()
    _shot(page, tmp_path, "paged")

    page.get_by_role("button", name="Next").click()
    expect(page.locator("#results .pager-position")).to_have_text("3 of 3")
    assert _listed_sessions(page) == ["order-1001"]
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#results .pager-position")).to_have_text("1\u20132 of 3")


def test_filter_by_metadata_enum_field_and_date_range(page, viewer, tmp_path):
    _log_in(page, viewer)
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")

    page.get_by_label("Metadata field to filter by").select_option("status")
    page.get_by_role("button", name="Add filter").click()
    status = page.locator("#filters").get_by_label("status", exact=True)
    expect(status).to_be_focused()
    assert status.evaluate("node => node.tagName") == "SELECT"
    assert status.locator("option").all_text_contents() == ["closed", "open"]
    status.select_option(label="open")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .summary")).to_have_text("2 sessions found")
    assert sorted(_listed_sessions(page)) == ["order-1001", "xss-1"]
    _shot(page, tmp_path, "filtered-by-status")

    page.get_by_role("button", name="Remove filter status").click()
    expect(page.locator("#filters .filter-row")).to_have_count(0)
    page.get_by_label("Metadata field to filter by").select_option("customer")
    page.get_by_role("button", name="Add filter").click()
    page.locator("#filters").get_by_label("customer", exact=True).fill("bob")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .summary")).to_have_text("1 session found")
    assert _listed_sessions(page) == ["order-1002"]

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")
    page.get_by_label("From").fill(tomorrow)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .summary")).to_have_text("No sessions match.")
    page.get_by_label("From").fill("")
    page.get_by_label("Session ID").fill("order-")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .summary")).to_have_text("2 sessions found")


def test_filter_by_application_shows_its_name_in_the_results(page, viewer):
    _log_in(page, viewer)
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")

    page.locator("#filters").get_by_label("Application").fill("shop")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .summary")).to_have_text("2 sessions found")
    assert _listed_sessions(page) == ["order-1002", "order-1001"]
    expect(page.locator("#results .badge-application")).to_have_text(["shop", "shop"])

    page.locator("#filters").get_by_label("Application").fill("other")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .summary")).to_have_text("No sessions match.")


def test_open_session_shows_the_timeline_in_order(page, viewer, tmp_path):
    _log_in(page, viewer)
    page.locator("#results a.result", has_text="order-1001").click()
    expect(page).to_have_url(viewer.url + "/#/sessions/order-1001")
    expect(page.locator("#detail .session-id")).to_have_text("order-1001")
    expect(page.locator("#results a.result[aria-current='true']")).to_contain_text("order-1001")

    timeline = _timeline(page)
    assert [(item["type"], item["role"], item["agent"]) for item in timeline] == [
        ("message", "user", "support"),
        ("message", "assistant", "support"),
        ("message", "user", "support"),
        ("message", "assistant", "support"),
        ("message", "user", "planner.v2"),
        ("message", "assistant", "planner.v2"),
        ("message", "user", "support"),
        ("message", "assistant", "support"),
        ("feedback", "up", None),
    ]
    times = [datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00")) for item in timeline]
    assert times == sorted(times)
    assert "Where is my order 1001?" in timeline[0]["text"]
    assert "Plan the follow-up" in timeline[4]["text"]
    assert "Quick and correct answer" in timeline[8]["text"]

    items = page.locator("#detail li.tl-item")
    tool_call = items.nth(1).locator("details.tool-use")
    expect(tool_call.locator("summary")).to_contain_text("lookup_order")
    expect(tool_call.locator("pre")).to_be_hidden()
    tool_call.locator("summary").click()
    expect(tool_call.locator("pre")).to_contain_text('"order_id": "1001"')
    expect(items.nth(2).locator("details.tool-result summary")).to_contain_text("success")
    expect(items.nth(3).locator(".metrics")).to_contain_text("tokens")

    answer = items.nth(3)
    expect(answer.locator("strong")).to_have_text("1001")
    expect(answer.locator("code")).to_have_text("DHL")
    link = answer.get_by_role("link", name="track it")
    expect(link).to_have_attribute("href", "https://example.com/track/1001")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    expect(page.locator("#detail .kv")).to_contain_text("alice")
    _shot(page, tmp_path, "timeline")

    page.locator("#results a.result", has_text="order-1002").click()
    expect(page.locator("#detail .session-id")).to_have_text("order-1002")
    expect(page.locator("#detail .attachment")).to_contain_text("png")
    expect(page.locator("#detail .attachment")).to_contain_text("image")
    expect(page.locator("#detail .attachment")).to_contain_text("KB")


def test_stored_html_is_shown_as_text_and_never_runs(page, viewer, tmp_path):
    _log_in(page, viewer)
    page.locator("#results a.result", has_text="xss-1").click()
    first = page.locator("#detail li.tl-item").first
    expect(first).to_contain_text(XSS_IMG)
    expect(first).to_contain_text(XSS_SCRIPT)
    expect(first).to_contain_text("click me")
    assert page.locator("#detail img, #detail script, #detail [onerror]").count() == 0
    assert first.locator("a").count() == 0  # the javascript: link is only text
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    _shot(page, tmp_path, "stored-html")


def test_deep_link_with_the_session_password_opens_only_that_session(page, viewer, tmp_path):
    page.goto(viewer.url + "/#/sessions/order-1001")
    expect(page.get_by_role("heading", name="Open a shared session")).to_be_visible()
    page.get_by_label("Session password").fill(viewer.session_passwords["order-1002"])
    page.get_by_role("button", name="Open session").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")

    page.get_by_label("Session password").fill(viewer.session_passwords["order-1001"])
    page.get_by_role("button", name="Open session").click()
    expect(page.locator("#detail .session-id")).to_have_text("order-1001")
    expect(page.locator("#detail li.tl-item")).to_have_count(9)
    expect(page.locator("#panel-filters")).to_be_hidden()
    expect(page.locator("#panel-results")).to_be_hidden()
    _shot(page, tmp_path, "deep-link")

    page.goto(viewer.url + "/#/sessions/order-1002")
    expect(page.get_by_role("heading", name="Open a shared session")).to_be_visible()
    expect(page.locator("#workspace")).to_be_hidden()
    page.goto(viewer.url + "/#/")
    expect(page.get_by_label("Backend password")).to_be_visible()

    page.goto(viewer.url + "/#/sessions/order-1002")
    page.get_by_role("button", name="Use the backend password instead").click()
    page.get_by_label("Backend password").fill(BACKEND_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#detail .session-id")).to_have_text("order-1002")
    expect(page.locator("#panel-results")).to_be_visible()


def _archive(mongo_uri: str, database_name: str) -> str:
    """Write one session into a second collection of the same database; return its viewer password."""
    with (
        MongoClient(mongo_uri) as client,
        MongoDBSessionManager(
            "archived-7", client=client, database_name=database_name, collection_name="archive"
        ) as manager,
    ):
        agent = Agent(agent_id="support", model=ScriptedModel(["Archived answer"]), session_manager=manager)
        agent("An old question")
        return manager.get_session_viewer_password()


def test_the_header_shows_the_collection_read_and_switches_to_another(page, viewer, mongo_uri, database_name, tmp_path):
    password = _archive(mongo_uri, database_name)
    configured, archive = f"{database_name}.{COLLECTION}", f"{database_name}.archive"
    _log_in(page, viewer)
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")
    switch = page.get_by_label("Collection")
    expect(switch).to_be_visible()
    expect(switch).to_have_value(configured)
    options = switch.locator("option").all_text_contents()
    assert options[0] == configured and archive in options
    _shot(page, tmp_path, "collection-configured")

    switch.select_option(archive)
    expect(page.locator("#results .summary")).to_have_text("1 session found")
    assert _listed_sessions(page) == ["archived-7"]
    assert f"collection={archive}" in page.url
    page.locator("#results a.result", has_text="archived-7").click()
    expect(page.locator("#detail li.tl-item")).to_have_count(2)
    expect(page.locator("#detail li.tl-item").nth(1)).to_contain_text("Archived answer")
    _shot(page, tmp_path, "collection-switched")

    page.reload()  # the choice is in the URL: a reload reads the same collection
    expect(page.get_by_label("Collection")).to_have_value(archive)
    expect(page.locator("#detail .session-id")).to_have_text("archived-7")

    page.get_by_label("Collection").select_option(configured)
    expect(page.locator("#results .summary")).to_have_text("3 sessions found")
    assert "collection=" not in page.url and page.url.endswith("/#/")

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{viewer.url}/?collection={archive}#/sessions/archived-7")  # a shared link into that collection
    page.get_by_label("Session password").fill(password)
    page.get_by_role("button", name="Open session").click()
    expect(page.locator("#detail .session-id")).to_have_text("archived-7")
    expect(page.locator("#collection-picker")).to_be_hidden()


def test_phone_sized_screen_shows_one_usable_panel_at_a_time(phone, viewer, tmp_path):
    _log_in(phone, viewer)
    switcher = phone.get_by_role("navigation", name="Panels")
    expect(switcher).to_be_visible()
    expect(phone.locator("#results .summary")).to_have_text("3 sessions found")
    expect(phone.locator("#panel-filters")).to_be_hidden()
    _shot(phone, tmp_path, "phone-results")

    switcher.get_by_role("button", name="Filters").click()
    expect(phone.locator("#panel-filters")).to_be_visible()
    expect(phone.locator("#panel-results")).to_be_hidden()
    phone.get_by_label("Metadata field to filter by").select_option("status")
    phone.get_by_role("button", name="Add filter").click()
    phone.locator("#filters").get_by_label("status", exact=True).select_option(label="closed")
    _shot(phone, tmp_path, "phone-filters")
    phone.get_by_role("button", name="Search").tap()
    expect(phone.locator("#panel-results")).to_be_visible()
    expect(phone.locator("#results .summary")).to_have_text("1 session found")

    phone.locator("#results a.result", has_text="order-1002").tap()
    expect(phone.locator("#panel-detail")).to_be_visible()
    expect(phone.locator("#panel-results")).to_be_hidden()
    expect(phone.locator("#detail li.tl-item")).to_have_count(3)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = phone.locator("#detail li.tl-item").first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    _shot(phone, tmp_path, "phone-detail")

    phone.goto(viewer.url + "/#/sessions/order-1001")
    expect(phone.locator("#detail .session-id")).to_have_text("order-1001")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(phone.locator("#health")).to_have_attribute("data-status", "ok")
