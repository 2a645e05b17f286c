"""The chat playground in a real browser: Debian chromium driven by Playwright against the real backend.

The backend is the playground app served by uvicorn on 127.0.0.1 with the offline demo model, storing in the
test's MongoDB database; the page, script and stylesheet are the files the app serves.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pymongo import MongoClient

from browser_support import chromium, served, skip_without_chromium

skip_without_chromium()
pytestmark = pytest.mark.slow  # a real browser

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from mongodb_session_manager.demo_model import DemoModel  # noqa: E402
from playground.chat import Settings, create_app  # noqa: E402

COLLECTION = "chat_sessions"
SESSION_KEY = "mongodb-session-manager.playground.session"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script>"
GREETING = "[demo model] Nice to meet you, Alice! I will remember your name."
RESULT = "[demo model] The result is 84."

expect.set_options(timeout=15_000)


@dataclass
class Playground:
    url: str
    mongo_uri: str
    database_name: str

    def stored_session(self, session_id: str) -> dict | None:
        with MongoClient(self.mongo_uri) as client:
            return client[self.database_name][COLLECTION].find_one({"_id": session_id})


@pytest.fixture
def playground(mongo_uri: str, database_name: str) -> Iterator[Playground]:
    """The real backend on a free local port; the demo model streams with a visible pause per token."""
    settings = Settings(
        mongodb_uri=mongo_uri, database_name=database_name, collection_name=COLLECTION, demo_token_delay_ms=60
    )
    with served(create_app(settings, model=DemoModel()), "playground") as url:
        yield Playground(url=url, mongo_uri=mongo_uri, database_name=database_name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium (never a downloaded browser)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (empty sessionStorage); fails the test on any JavaScript error or console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


def open_chat(page: Page, playground: Playground) -> None:
    page.goto(f"{playground.url}/chat.html")
    expect(page.locator(".chat-widget")).to_have_attribute("data-ready", "true")
    page.get_by_role("button", name="Open chat").click()
    expect(page.get_by_role("dialog", name="Chat")).to_be_visible()


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.keyboard.press("Enter")


def wait_for_answer(page: Page, text: str) -> None:
    latest = page.locator(".msg-assistant").last
    expect(latest.locator(".bubble")).to_have_text(text)
    expect(latest).to_have_attribute("data-state", "done")
    expect(page.locator(".chat-widget")).to_have_attribute("data-busy", "false")


def test_chat_streams_answers_reloads_history_and_stores_feedback(page, playground, tmp_path):
    open_chat(page, playground)
    expect(page.locator(".model-badge")).to_have_text("offline demo model")

    send(page, "Hi! My name is Alice.")
    expect(page.locator(".msg-user .bubble")).to_have_text(["Hi! My name is Alice."])
    # Part of the answer is on screen while the rest is still streaming.
    page.wait_for_function(
        """() => {
            const reply = [...document.querySelectorAll('.msg-assistant')].pop();
            return reply && reply.dataset.state === 'streaming'
                && reply.textContent.startsWith('[demo model] Nice') && !reply.textContent.endsWith('name.');
        }"""
    )
    page.screenshot(path=tmp_path / "chat-streaming.png")
    wait_for_answer(page, GREETING)
    expect(page.locator(".msg-assistant .msg-meta").last).to_contain_text("tokens")

    send(page, "What is 12 * (3 + 4)?")
    expect(page.locator(".tool-chip").first).to_have_text('calculator(expression: "12 * (3 + 4)")')
    wait_for_answer(page, RESULT)
    page.screenshot(path=tmp_path / "chat-streamed.png")

    session_id = page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")
    assert session_id.startswith("chat-")

    page.reload()
    expect(page.locator(".chat-widget")).to_have_attribute("data-ready", "true")
    expect(page.get_by_role("dialog", name="Chat")).to_be_visible()  # stays open in this tab
    expect(page.locator(".msg-user .bubble")).to_have_text(["Hi! My name is Alice.", "What is 12 * (3 + 4)?"])
    expect(page.locator(".msg-assistant .bubble")).to_have_text([GREETING, RESULT])
    expect(page.locator(".tool-chip")).to_have_text(['calculator(expression: "12 * (3 + 4)")', "84"])
    assert page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')") == session_id

    send(page, "What is my name?")  # the backend restores the conversation for every request
    wait_for_answer(page, "[demo model] Your name is Alice.")

    page.get_by_role("button", name="Session", exact=True).click()
    info = page.get_by_role("region", name="Session information")
    expect(info).to_contain_text(session_id)
    expect(info.locator(".metadata")).to_contain_text("playground")
    expect(info.locator(".metadata")).to_contain_text("Hi! My name is Alice.")
    expect(info.locator(".metrics")).to_contain_text("tokens")
    page.get_by_label("Feedback comment").fill("Streams nicely")
    page.get_by_role("button", name="Helpful", exact=True).click()
    expect(info.locator(".feedback-status")).to_have_text("Thanks! Your feedback is stored in MongoDB.")
    expect(info.locator(".feedback-list li")).to_have_count(1)
    expect(info.locator(".feedback-list li")).to_contain_text("Streams nicely")
    expect(page.locator(".msg-assistant").last).to_be_in_viewport()
    page.screenshot(path=tmp_path / "chat-session-panel.png")

    stored = playground.stored_session(session_id)
    assert [(f["rating"], f["comment"]) for f in stored["feedbacks"]] == [("up", "Streams nicely")]
    assert len(stored["agents"]["assistant"]["messages"]) == 8


def test_markup_in_messages_is_shown_as_text_never_run(page, playground, tmp_path):
    open_chat(page, playground)
    hostile = f"{XSS_IMG} {XSS_SCRIPT}"

    send(page, hostile)
    wait_for_answer(
        page,
        f'[demo model] You said: "{hostile}". I am an offline demo model: I can do arithmetic '
        'with a calculator tool and remember "my name is ...".',
    )
    expect(page.locator(".msg-user .bubble")).to_have_text([hostile])
    page.screenshot(path=tmp_path / "chat-xss.png")

    page.reload()
    expect(page.locator(".chat-widget")).to_have_attribute("data-ready", "true")
    expect(page.locator(".msg-user .bubble")).to_have_text([hostile])
    expect(page.locator(".msg-assistant .bubble")).to_contain_text([hostile])
    assert page.locator(".chat-panel img, .chat-panel script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_new_chat_starts_another_session(page, playground):
    open_chat(page, playground)
    send(page, "Hi! My name is Alice.")
    wait_for_answer(page, GREETING)
    first = page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")

    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".msg-user")).to_have_count(0)
    second = page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")
    assert second != first
    send(page, "What is my name?")
    wait_for_answer(page, '[demo model] I don\'t know your name yet. Tell me with "my name is ...".')
    assert playground.stored_session(first) and playground.stored_session(second)


def test_phone_sized_screen_shows_the_panel_full_width(browser, playground, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_chat(page, playground)
        send(page, "What is 2 * 21?")
        wait_for_answer(page, "[demo model] The result is 42.")
        box = page.get_by_role("dialog", name="Chat").bounding_box()
        assert box["x"] == 0 and box["width"] == 390
        page.screenshot(path=tmp_path / "chat-phone.png")
    finally:
        context.close()


def assistant_metrics(page: Page) -> list[str]:
    """The metrics line under each answer, in order."""
    return page.locator(".msg-assistant .msg-meta").all_text_contents()


def test_reload_keeps_each_answers_metrics(page, playground, tmp_path):
    open_chat(page, playground)
    send(page, "Hi! My name is Alice.")
    wait_for_answer(page, GREETING)
    send(page, "What is 12 * (3 + 4)?")
    wait_for_answer(page, RESULT)
    expect(page.locator(".msg-assistant .msg-meta")).to_have_count(2)
    live = assistant_metrics(page)
    assert all("ms model latency" in line and line.endswith(" tokens") for line in live), live

    page.reload()
    expect(page.locator(".chat-widget")).to_have_attribute("data-ready", "true")
    expect(page.locator(".msg-assistant .bubble")).to_have_text([GREETING, RESULT])
    # the same figures as while streaming: both come from the metrics stored with each answer
    assert assistant_metrics(page) == live
    expect(page.locator(".msg-assistant").nth(1).locator(".msg-meta")).to_have_text(live[1])
    page.screenshot(path=tmp_path / "chat-reloaded-metrics.png")


def test_phone_width_nothing_overflows_the_screen(browser, playground, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_chat(page, playground)
        long_word = "metadata_" * 12  # no break opportunity: it must wrap anywhere, not push the layout
        send(page, f"My name is {long_word}")
        expect(page.locator(".chat-widget")).to_have_attribute("data-busy", "false")
        send(page, "What is 123456789 * 987654321?")
        wait_for_answer(page, "[demo model] The result is 121932631112635269.")
        page.get_by_role("button", name="Session", exact=True).click()
        info = page.get_by_role("region", name="Session information")
        expect(info.locator(".metrics")).to_contain_text("tokens")
        expect(info.locator(".metadata")).to_contain_text(long_word[:40])

        for scroller in (".chat-messages", ".chat-info"):
            page.locator(scroller).evaluate("node => { node.scrollTop = node.scrollHeight; }")
            page.screenshot(path=tmp_path / f"chat-phone-{scroller.strip('.')}.png")
        overflowing = page.evaluate(
            """() => [...document.querySelectorAll('.chat-panel *')]
                .filter(node => node.getClientRects().length)
                .filter(node => node.getBoundingClientRect().right > window.innerWidth + 0.5
                             || node.getBoundingClientRect().left < -0.5)
                .map(node => `${node.tagName.toLowerCase()}.${node.className.baseVal ?? node.className}`)"""
        )
        assert overflowing == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for scroller in (".chat-messages", ".chat-info"):
            sizes = page.locator(scroller).evaluate("node => [node.scrollWidth, node.clientWidth]")
            assert sizes[0] <= sizes[1], (scroller, sizes)
    finally:
        context.close()
