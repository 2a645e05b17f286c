"""An encrypted session in the Session Viewer, in a real browser, on a viewer that holds no key.

The session is written by the library with ``encryption=`` (a local master key) and a real strands agent; the
backend is the real app served by uvicorn, the page Debian chromium driven by Playwright.
"""

from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from strands import Agent

from browser_support import chromium, served, skip_without_chromium
from mongodb_session_manager import EncryptionSettings, MongoDBSessionManager
from mongodb_session_manager.encryption import generate_local_key
from mongodb_session_manager.testing import ScriptedModel

skip_without_chromium()
pytestmark = pytest.mark.slow  # a real browser

from playwright.sync_api import Page, expect  # noqa: E402

from session_viewer.backend.app import create_app  # noqa: E402
from session_viewer.backend.config import Settings  # noqa: E402

BACKEND_PASSWORD = "browser-test-password-0123456789"
COLLECTION = "encrypted_sessions"
QUESTION = "QUESTION-where-is-parcel-77"
COMMENT = "COMMENT-courteous-and-quick"
ADDRESS = "ADDRESS-12-hidden-lane"

expect.set_options(timeout=10_000)


@pytest.fixture
def viewer_url(mongo_uri: str, database_name: str) -> Iterator[str]:
    """A viewer without key access over one encrypted session."""
    encryption = EncryptionSettings.local(
        generate_local_key(), key_vault_namespace=f"{database_name}.keyvault", random_metadata_fields=["address"]
    )
    with MongoClient(mongo_uri) as client:
        manager = MongoDBSessionManager(
            "parcel-77", client=client, database_name=database_name, collection_name=COLLECTION, encryption=encryption
        )
        agent = Agent(
            agent_id="support",
            model=ScriptedModel(["It left the depot this morning."]),
            session_manager=manager,
            callback_handler=None,
        )
        agent(QUESTION)
        manager.update_metadata({"address": ADDRESS, "status": "open"})
        manager.add_feedback({"rating": "up", "comment": COMMENT})
    settings = Settings(
        _env_file=None,
        mongodb_uri=mongo_uri,
        database_name=database_name,
        collection_name=COLLECTION,
        backend_password=BACKEND_PASSWORD,
        encryption_random_fields="address",
    )
    with served(create_app(settings), "session-viewer") as url:
        yield url


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        context.close()
        assert not errors, f"JavaScript errors in the page: {errors}"


def test_a_viewer_without_the_key_shows_encrypted_no_key_and_the_clear_parts(page, viewer_url, tmp_path):
    page.goto(viewer_url + "/")
    page.get_by_label("Backend password").fill(BACKEND_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    result = page.locator("#results a.result", has_text="parcel-77")
    expect(result.locator(".encrypted-value")).to_have_text("encrypted, no key")  # the address chip
    expect(result).to_contain_text("open")

    result.click()
    expect(page.locator("#detail .session-id")).to_have_text("parcel-77")
    expect(page.locator("#detail .badge-encryption")).to_have_text("encrypted, no key")
    items = page.locator("#detail li.tl-item")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_have_attribute("data-role", "user")
    expect(items.nth(0).locator(".encrypted-value")).to_have_text("encrypted, no key")
    expect(items.nth(1)).to_have_attribute("data-role", "assistant")
    expect(items.nth(1).locator(".encrypted-value")).to_have_text("encrypted, no key")
    expect(items.nth(1).locator(".metrics")).to_contain_text("tokens")  # metrics are clear
    expect(items.nth(2).locator(".feedback-comment .encrypted-value")).to_have_text("encrypted, no key")
    expect(page.locator("#detail .kv")).to_contain_text("encrypted, no key")
    detail = page.locator("#detail").inner_text()
    assert QUESTION not in detail and COMMENT not in detail and ADDRESS not in detail
    page.screenshot(path=str(tmp_path / "encrypted-no-key.png"), full_page=True)
