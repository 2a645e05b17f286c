"""The Session Viewer's Metrics view and the timeline's per-invocation figures, in a real browser.

Debian chromium driven by Playwright against the real backend (``GET /api/v1/metrics``). The data set is written
by the library: sessions, agents and messages through ``MongoDBSessionRepository`` (each invocation's closing
message with its ``event_loop_metrics`` as ``extra_fields``), feedback through ``add_feedback``, and then moved
back in time through ``export_sessions``/``import_sessions`` (an import keeps the dates it reads), so that the
sessions and the feedback fall on the days the test chose. Every figure the page must show is written out below.

Set ``UPDATE_DOCS_SCREENSHOTS=1`` to also refresh ``docs/images/metrics-dashboard.png`` (the user guide's picture)
from the desktop test.
"""

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import json_util
from pymongo import MongoClient
from strands import Agent
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from browser_support import chromium, served, skip_without_chromium
from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionRepository
from mongodb_session_manager.demo_model import calculator
from mongodb_session_manager.testing import ScriptedModel
from mongodb_session_manager.transfer import export_line, export_sessions

skip_without_chromium()
pytestmark = pytest.mark.slow  # a real browser

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from session_viewer.backend.app import create_app  # noqa: E402
from session_viewer.backend.config import Settings  # noqa: E402

BACKEND_PASSWORD = "browser-test-password-0123456789"
COLLECTION = "viewer_sessions"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "metrics-dashboard.png"

expect.set_options(timeout=10_000)


@dataclass(frozen=True)
class Invocation:
    """One agent invocation: its messages' day and the figures stored on its closing message."""

    session_id: str
    agent_id: str
    days_ago: int
    latency_ms: int
    ttfb_ms: int | None
    input_tokens: int
    output_tokens: int
    cache_read: int | None = None
    cache_write: int | None = None
    tools: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (calls, errors)


@dataclass(frozen=True)
class SeededSession:
    """One session: its application, metadata status, creation day, agents and feedback."""

    application: str
    status: str
    days_ago: int
    models: dict[str, str]  # agent id -> model
    feedback: list[tuple[str | None, int]]  # (rating, days ago)


SESSIONS = {
    "order-2001": SeededSession("shop", "open", 5, {"support": "model-a"}, [("up", 5)]),
    "order-2002": SeededSession(
        "shop", "closed", 3, {"support": "model-a", "planner": "model-b"}, [("down", 3), ("up", 2)]
    ),
    "faq-3001": SeededSession("faq", "open", 1, {"faq": "model-b"}, [(None, 1)]),
    "faq-3002": SeededSession("faq", "open", 0, {"faq": "model-b"}, [("up", 0)]),
}
INVOCATIONS = [
    Invocation(
        "order-2001", "support", 5, 1000, 200, 100, 40, cache_read=50, cache_write=10, tools={"lookup_order": (2, 0)}
    ),
    Invocation("order-2001", "support", 5, 800, 150, 120, 30),
    Invocation("order-2002", "support", 3, 1500, 300, 200, 60, cache_read=80, tools={"lookup_order": (1, 1)}),
    Invocation("order-2002", "planner", 3, 600, 100, 50, 20),
    Invocation("order-2002", "support", 2, 900, None, 90, 10),
    Invocation("faq-3001", "faq", 1, 400, 80, 60, 25, tools={"search_faq": (4, 1)}),
    Invocation("faq-3002", "faq", 0, 2000, 500, 300, 90, cache_write=30),
    Invocation("faq-3002", "faq", 0, 700, 120, 80, 15),
]
# What the page must show for the whole data set (an invocation with tools has 4 messages, one without 2).
# Percentiles are nearest-rank: latencies 400 600 700 800 900 1000 1500 2000 -> p50 = 4th, p95 = 8th;
# times to first byte 80 100 120 150 200 300 500 (one invocation has none) -> p50 = 4th, p95 = 7th.
TOTALS = {
    "sessions": 4,
    "messages": 22,
    "invocations": 8,
    "input_tokens": 1000,
    "output_tokens": 290,
    "cache_read_tokens": 130,
    "cache_write_tokens": 40,
    "latency_p50": 800,
    "latency_p95": 2000,
    "ttfb_p50": 150,
    "ttfb_p95": 500,
    "feedback_up": 3,
    "feedback_down": 1,
    "feedback_none": 1,
    "feedback_ratio": 0.75,
}
# Per day (days ago -> figures); the other days of the range are zero, their percentiles absent (None).
DAY_KEYS = ("sessions", "messages", "input_tokens", "output_tokens", "latency_p50", "latency_p95", "ttfb_p50")
DAY_KEYS += ("ttfb_p95", "feedback_up", "feedback_down", "feedback_none")
DAYS = {
    days_ago: dict(zip(DAY_KEYS, figures, strict=True))
    for days_ago, figures in {
        5: (1, 6, 220, 70, 800, 1000, 150, 200, 1, 0, 0),
        3: (1, 6, 250, 80, 600, 1500, 100, 300, 0, 1, 0),
        2: (0, 2, 90, 10, 900, 900, None, None, 1, 0, 0),
        1: (1, 4, 60, 25, 400, 400, 80, 80, 0, 0, 1),
        0: (1, 4, 380, 105, 700, 2000, 120, 500, 1, 0, 0),
    }.items()
}
TOOLS = [("search_faq", 4, 1, 0.25), ("lookup_order", 3, 1, 1 / 3)]  # by calls
MODELS = [("model-a", 510, 140, 4), ("model-b", 490, 150, 4)]  # by input + output tokens: 650, 640


def _day(today: date, days_ago: int) -> date:
    return today - timedelta(days=days_ago)


def _moment(today: date, days_ago: int, second: int = 0) -> datetime:
    """A moment early in that UTC day (always in the past, so the test runs at any hour)."""
    return datetime.combine(_day(today, days_ago), time(0, 0, second), tzinfo=UTC)


def _event_loop_metrics(invocation: Invocation) -> dict[str, Any]:
    accumulated: dict[str, Any] = {"latencyMs": invocation.latency_ms}
    if invocation.ttfb_ms is not None:
        accumulated["timeToFirstByteMs"] = invocation.ttfb_ms
    usage = {
        "inputTokens": invocation.input_tokens,
        "outputTokens": invocation.output_tokens,
        "totalTokens": invocation.input_tokens + invocation.output_tokens,
    }
    if invocation.cache_read is not None:
        usage["cacheReadInputTokens"] = invocation.cache_read
    if invocation.cache_write is not None:
        usage["cacheWriteInputTokens"] = invocation.cache_write
    cycles = 2 if invocation.tools else 1
    seconds = invocation.latency_ms / 1000
    return {
        "accumulated_metrics": accumulated,
        "accumulated_usage": usage,
        "cycle_metrics": {"cycle_count": cycles, "total_duration": seconds, "average_cycle_time": seconds / cycles},
        "tool_usage": {
            name: {
                "call_count": calls,
                "success_count": calls - errors,
                "error_count": errors,
                "total_time": 0.1 * calls,
                "average_time": 0.1,
                "success_rate": (calls - errors) / calls,
            }
            for name, (calls, errors) in invocation.tools.items()
        },
    }


def _messages(invocation: Invocation, today: date, first_id: int) -> list[tuple[SessionMessage, dict | None]]:
    """The invocation's messages (user, [tool call, tool result,] answer); the answer carries the metrics."""
    turns: list[dict[str, Any]] = [{"role": "user", "content": [{"text": "A question"}]}]
    if invocation.tools:  # one round trip: the tool figures come from the stored metrics
        call = {"toolUseId": f"t-{first_id}", "name": next(iter(invocation.tools)), "input": {}}
        result = {"toolUseId": call["toolUseId"], "status": "success", "content": [{"text": "ok"}]}
        turns.append({"role": "assistant", "content": [{"toolUse": call}]})
        turns.append({"role": "user", "content": [{"toolResult": result}]})
    turns.append({"role": "assistant", "content": [{"text": "An answer"}]})
    stamped = []
    for offset, message in enumerate(turns):
        moment = _moment(today, invocation.days_ago, second=first_id + offset).isoformat()
        extra = {"event_loop_metrics": _event_loop_metrics(invocation)} if offset == len(turns) - 1 else None
        stamped.append((SessionMessage(message, first_id + offset, created_at=moment, updated_at=moment), extra))
    return stamped


def _seed_metrics(client: MongoClient, database_name: str, today: date) -> None:
    """Write the data set with the library, then import it into the viewer's collection back-dated."""
    staging = f"{COLLECTION}_staging"
    for session_id, seeded in SESSIONS.items():
        repository = MongoDBSessionRepository(
            client=client, database_name=database_name, collection_name=staging, application_name=seeded.application
        )
        repository.create_session(Session(session_id, SessionType.AGENT))
        for agent_id, model in seeded.models.items():
            repository.create_agent(session_id, SessionAgent(agent_id, {}, {}), agent_config={"model": model})
        next_ids = dict.fromkeys(seeded.models, 0)
        for invocation in (i for i in INVOCATIONS if i.session_id == session_id):
            for message, extra in _messages(invocation, today, next_ids[invocation.agent_id]):
                repository.create_message(session_id, invocation.agent_id, message, extra_fields=extra)
            next_ids[invocation.agent_id] = message.message_id + 1
        repository.update_metadata(session_id, {"status": seeded.status})
        for rating, _ in seeded.feedback:
            repository.add_feedback(session_id, {"rating": rating, "comment": None})

    exported = io.StringIO()
    export_sessions(
        MongoDBSessionRepository(client=client, database_name=database_name, collection_name=staging), exported
    )
    options = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True)
    lines = []
    for line in exported.getvalue().splitlines():
        document = json_util.loads(line, json_options=options)["session"]
        seeded = SESSIONS[document["_id"]]
        document["created_at"] = _moment(today, seeded.days_ago)
        for entry, (_, days_ago) in zip(document["feedbacks"], seeded.feedback, strict=True):
            entry["created_at"] = _moment(today, days_ago, second=59)
        lines.append(export_line(document))
    viewer = MongoDBSessionRepository(
        client=client, database_name=database_name, collection_name=COLLECTION, metadata_fields=["status"]
    )
    summary = viewer.import_sessions(lines)
    assert summary["imported"] == len(SESSIONS), summary


@dataclass
class Viewer:
    url: str
    today: date


@pytest.fixture
def viewer(mongo_uri: str, database_name: str) -> Iterator[Viewer]:
    """The real backend on a free local port, over the seeded data set."""
    today = datetime.now(UTC).date()
    with MongoClient(mongo_uri) as client:
        _seed_metrics(client, database_name, today)
    settings = Settings(
        mongodb_uri=mongo_uri,
        database_name=database_name,
        collection_name=COLLECTION,
        backend_password=BACKEND_PASSWORD,
        enum_fields_str="status",
    )
    with served(create_app(settings), "session-viewer") as url:
        yield Viewer(url=url, today=today)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium (never a downloaded browser)."""
    with chromium() as launched:
        yield launched


def _open_page(browser: Browser, **context_options: Any) -> Iterator[Page]:
    """A fresh context (empty sessionStorage, en-US numbers); fails the test on any JavaScript error."""
    context = browser.new_context(locale="en-US", timezone_id="UTC", **context_options)
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


def _open_metrics(page: Page, viewer: Viewer) -> None:
    """Sign in on a deep link to the Metrics view and wait for its figures."""
    page.goto(viewer.url + "/#/metrics")
    expect(page.locator("#login-intro")).to_have_text("Enter the backend password to see the metrics.")
    page.get_by_label("Backend password").fill(BACKEND_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#metrics")).to_have_attribute("data-state", "ready")


def _field(page: Page, label: str) -> Any:
    """A control of the Metrics view's form (the Sessions filters have controls with the same labels)."""
    return page.locator("#metrics").get_by_label(label, exact=True)


def _apply(page: Page, state: str = "ready") -> None:
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#metrics")).to_have_attribute("data-state", state)


def _totals(page: Page) -> dict[str, Any]:
    """The totals row: metric -> the number it carries (data-value), None when it shows none."""
    return page.locator("#metrics .metric-total").evaluate_all(
        """items => Object.fromEntries(items.map(
            item => [item.dataset.metric, item.dataset.value === '' ? null : Number(item.dataset.value)]
        ))"""
    )


def _chart_values(page: Page, panel: str) -> dict[str, dict[str, float]]:
    """A panel's bars and points: series -> {label (day, tool, model): data-value}."""
    return page.locator(f"#metrics [data-panel='{panel}'] svg [data-series]").evaluate_all(
        """marks => marks.filter(m => m.dataset.label !== undefined).reduce((all, m) => {
            (all[m.dataset.series] ||= {})[m.dataset.label] = Number(m.dataset.value);
            return all;
        }, {})"""
    )


def _table(page: Page, panel: str) -> list[dict[str, str]]:
    """A panel's data table (the screen-reader fallback): one {column: cell text} per row, label first."""
    return page.locator(f"#metrics [data-panel='{panel}'] table.chart-table").evaluate(
        """table => {
            const heads = [...table.tHead.rows[0].cells].map(c => c.textContent);
            return [...table.tBodies[0].rows].map(
                row => Object.fromEntries([...row.cells].map((cell, i) => [heads[i], cell.textContent]))
            );
        }"""
    )


def _shot(page: Page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


def test_the_metrics_view_shows_the_known_totals_and_daily_figures(page: Page, viewer: Viewer, tmp_path: Path) -> None:
    _open_metrics(page, viewer)
    days = {viewer.today - timedelta(days=ago): figures for ago, figures in DAYS.items()}
    start = viewer.today - timedelta(days=29)
    expect(_field(page, "First day (UTC)")).to_have_value(start.isoformat())
    expect(_field(page, "Last day (UTC)")).to_have_value(viewer.today.isoformat())
    expect(page.locator("#metrics .metrics-status")).to_have_text(f"{start} to {viewer.today} (UTC), 30 days")
    expect(page.locator("#view-nav a[aria-current='page']")).to_have_text("Metrics")

    assert _totals(page) == TOTALS
    labels = page.locator("#metrics .metric-total dt").all_text_contents()
    shown = dict(zip(labels, page.locator("#metrics .metric-total dd").all_text_contents(), strict=True))
    assert shown["Input tokens"] == "1,000" and shown["Latency p95"] == "2,000 ms"
    assert shown["Time to first byte p50"] == "150 ms" and shown["Up ratio"] == "75%"

    activity = _chart_values(page, "activity")
    assert len(activity["sessions"]) == len(activity["messages"]) == 30  # every day of the range, zero-filled
    for day in (start + timedelta(days=n) for n in range(30)):
        figures = days.get(day, {})
        label = day.isoformat()
        assert activity["sessions"][label] == figures.get("sessions", 0), label
        assert activity["messages"][label] == figures.get("messages", 0), label
    tokens = _chart_values(page, "tokens")
    for key in ("input_tokens", "output_tokens"):
        assert {day: tokens[key][day.isoformat()] for day in days} == {day: f[key] for day, f in days.items()}
    # Lines: a point only where the day has figures.
    latency = _chart_values(page, "latency")
    assert latency["latency_p50"] == {d.isoformat(): f["latency_p50"] for d, f in days.items()}
    assert latency["latency_p95"] == {d.isoformat(): f["latency_p95"] for d, f in days.items()}
    ttfb = _chart_values(page, "ttfb")
    assert ttfb["ttfb_p95"] == {d.isoformat(): f["ttfb_p95"] for d, f in days.items() if f["ttfb_p95"] is not None}
    feedback = _chart_values(page, "feedback")
    for key in ("feedback_up", "feedback_down", "feedback_none"):
        assert {d: feedback[key][d.isoformat()] for d in days} == {d: f[key] for d, f in days.items()}
    expect(page.locator("#metrics [data-panel='feedback'] .metric-note")).to_have_text("Up ratio: 75% (3 up, 1 down).")

    assert _chart_values(page, "tools") == {
        "succeeded": {tool: calls - errors for tool, calls, errors, _ in TOOLS},
        "errors": {tool: errors for tool, _, errors, _ in TOOLS},
    }
    assert _table(page, "tools") == [
        {"Tool": "search_faq", "Succeeded": "3", "Errors": "1", "Calls": "4", "Error rate": "25%"},
        {"Tool": "lookup_order", "Succeeded": "2", "Errors": "1", "Calls": "3", "Error rate": "33.3%"},
    ]
    assert _table(page, "models") == [
        {"Model": model, "Input tokens": str(inp), "Output tokens": str(out), "Invocations": str(count)}
        for model, inp, out, count in MODELS
    ]
    # The screen-reader text of a chart: its title and a summary.
    chart = page.locator("#metrics [data-panel='activity'] svg")
    assert chart.get_attribute("role") == "img"
    assert chart.locator("desc").text_content() == "Sessions: 4 in total; Messages: 22 in total"
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    _shot(page, tmp_path / "metrics-desktop.png")

    _field(page, "First day (UTC)").fill((viewer.today - timedelta(days=6)).isoformat())
    _apply(page)
    _shot(page, tmp_path / "metrics-desktop-week.png")
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        top = page.locator("#metrics-view").bounding_box()  # below the header (it names the test database)
        height = page.evaluate("document.documentElement.scrollHeight")
        assert top is not None
        clip = {"x": 0, "y": top["y"], "width": DESKTOP["width"], "height": height - top["y"]}
        page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True, clip=clip)

    page.get_by_role("link", name="Sessions").click()
    expect(page.locator("#results .summary")).to_have_text("4 sessions found")
    expect(page.locator("#metrics-view")).to_be_hidden()


def test_an_empty_range_shows_the_empty_state(page: Page, viewer: Viewer, tmp_path: Path) -> None:
    _open_metrics(page, viewer)
    held: list[Any] = []
    # Hold the next request: the loading state shows meanwhile.
    page.route("**/api/v1/metrics?*", lambda route: route.continue_() if held else held.append(route))
    _field(page, "First day (UTC)").fill("2020-01-01")
    _field(page, "Last day (UTC)").fill("2020-01-31")
    _apply(page, "loading")
    expect(page.locator("#metrics")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#metrics .metrics-status")).to_have_text("Loading metrics…")
    held[0].continue_()
    expect(page.locator("#metrics")).to_have_attribute("data-state", "empty")
    assert page.locator("#metrics").get_attribute("aria-busy") is None
    expect(page.locator("#metrics .metrics-empty")).to_have_text("No data in this range")
    expect(page.locator("#metrics .metric-panel")).to_have_count(0)
    _shot(page, tmp_path / "metrics-empty.png")

    _field(page, "First day (UTC)").fill("2020-02-01")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#metrics .form-error")).to_have_text("The first day must not be after the last day.")
    page.get_by_role("button", name="Last 30 days").click()
    expect(page.locator("#metrics")).to_have_attribute("data-state", "ready")
    assert _totals(page)["messages"] == TOTALS["messages"]


def test_filters_change_the_numbers(page: Page, viewer: Viewer, tmp_path: Path) -> None:
    _open_metrics(page, viewer)

    _field(page, "Application").fill("faq")
    _apply(page)
    faq = _totals(page)
    assert (faq["sessions"], faq["messages"], faq["invocations"]) == (2, 8, 3)
    assert (faq["input_tokens"], faq["output_tokens"], faq["cache_write_tokens"]) == (440, 130, 30)
    assert (faq["feedback_up"], faq["feedback_none"], faq["feedback_ratio"]) == (1, 1, 1)
    assert _table(page, "models") == [
        {"Model": "model-b", "Input tokens": "440", "Output tokens": "130", "Invocations": "3"}
    ]
    _shot(page, tmp_path / "metrics-application.png")

    _field(page, "Application").fill("")
    _field(page, "Metadata field to filter metrics by").select_option("status")
    page.get_by_role("button", name="Add filter").click()
    _field(page, "status").select_option(label="closed")
    _apply(page)
    closed = _totals(page)
    assert (closed["sessions"], closed["messages"], closed["invocations"], closed["input_tokens"]) == (1, 8, 3, 340)
    assert (closed["feedback_up"], closed["feedback_down"]) == (1, 1)

    page.get_by_role("button", name="Remove metrics filter status").click()
    _field(page, "Agent").fill("planner")
    _apply(page)
    planner = _totals(page)
    assert (planner["messages"], planner["invocations"], planner["input_tokens"], planner["latency_p50"]) == (
        2,
        1,
        50,
        600,
    )
    assert _table(page, "models")[0]["Model"] == "model-b"

    _field(page, "Agent").fill("")
    _field(page, "Model").fill("model-a")
    _apply(page)
    model_a = _totals(page)
    assert (model_a["invocations"], model_a["input_tokens"], model_a["output_tokens"]) == (4, 510, 140)


def test_a_phone_shows_the_panels_stacked_without_horizontal_scrolling(
    phone: Page, viewer: Viewer, tmp_path: Path
) -> None:
    _open_metrics(phone, viewer)
    assert _totals(phone) == TOTALS
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    boxes = [panel.bounding_box() for panel in phone.locator("#metrics .metric-panel").all()]
    assert len(boxes) == 7
    assert all(box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] for box in boxes)
    assert len({round(box["x"]) for box in boxes if box}) == 1  # one column
    for svg in phone.locator("#metrics svg.chart-svg").all():
        box = svg.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    expect(phone.get_by_role("link", name="Metrics")).to_be_visible()
    expect(phone.get_by_role("button", name="Log out")).to_be_in_viewport()
    _shot(phone, tmp_path / "metrics-phone.png")

    phone.get_by_role("link", name="Sessions").tap()
    expect(phone.locator("#results .summary")).to_have_text("4 sessions found")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


GUARDRAIL_TRACE = {
    "inputAssessment": {
        "g1": {
            "sensitiveInformationPolicy": {"piiEntities": [{"type": "EMAIL", "action": "ANONYMIZED", "match": "a@b.c"}]}
        }
    }
}


def test_the_timeline_shows_first_byte_cache_cycles_tools_and_the_guardrail(
    page: Page, viewer: Viewer, mongo_uri: str, database_name: str, tmp_path: Path
) -> None:
    with MongoClient(mongo_uri) as client:
        manager = MongoDBSessionManager(
            "guarded-1", client=client, database_name=database_name, collection_name=COLLECTION, application_name="shop"
        )
        agent = Agent(
            agent_id="support",
            model=ScriptedModel(
                [
                    {"tool": "calculator", "input": {"expression": "6 * 7"}, "id": "t1"},
                    "It is 42.",
                    {"text": "I cannot share that.", "guardrail": {"trace": GUARDRAIL_TRACE}},
                ],
                latency_ms=250,
                time_to_first_byte_ms=40,
                cache_read_tokens=30,
                cache_write_tokens=5,
            ),
            tools=[calculator],
            session_manager=manager,
            callback_handler=None,
        )
        agent("What is 6 * 7?")
        agent("My mail is a@b.c")

    page.goto(viewer.url + "/#/sessions/guarded-1")
    page.get_by_role("button", name="Use the backend password instead").click()
    page.get_by_label("Backend password").fill(BACKEND_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#detail .session-id")).to_have_text("guarded-1")
    facts = page.locator("#detail .session-head > .facts")
    expect(facts.locator("div").first).to_have_text("Applicationshop")

    items = page.locator("#detail li.tl-item")
    answer = items.nth(3)  # user, tool call, tool result, answer: the first invocation's closing message
    expect(answer).to_contain_text("It is 42.")
    figures = answer.locator(".metrics [data-figure]").evaluate_all(
        "spans => Object.fromEntries(spans.map(s => [s.dataset.figure, s.dataset.value]))"
    )
    assert figures["ttfb"] == "40" and figures["latency"] == "500"  # two model calls of 250 ms
    assert figures["cache-read"] == "60" and figures["cache-write"] == "10"
    assert figures["cycles"] == "2"
    expect(answer.locator(".metrics")).to_contain_text("first byte 40 ms")
    expect(answer.locator(".tool-usage li")).to_have_count(1)
    tool = answer.locator(".tool-usage li")
    expect(tool).to_have_attribute("data-tool", "calculator")
    expect(tool).to_have_attribute("data-calls", "1")
    expect(tool).to_have_attribute("data-errors", "0")
    expect(tool).to_contain_text("calculator 1 call, no errors")

    redacted = page.locator("#detail li.tl-item[data-role='user']").nth(2)  # the second question
    expect(redacted.locator(".badge-redacted")).to_be_visible()
    expect(redacted.locator(".badge-guardrail")).to_be_visible()
    line = redacted.locator(".guardrail-line")
    expect(line).to_have_attribute("data-action", "redacted")
    expect(line).to_contain_text("sensitiveInformationPolicy:EMAIL")
    expect(line).to_contain_text("guardrail_intervened")
    expect(line.locator("time")).to_have_count(1)
    expect(redacted).not_to_contain_text("a@b.c")

    summary = page.locator("#detail .guardrail-summary")
    expect(summary.locator("summary")).to_have_text("Guardrail events (1)")
    summary.locator("summary").click()
    expect(summary).to_contain_text("redacted 1")
    expect(summary).to_contain_text("sensitiveInformationPolicy:EMAIL 1")
    page.locator("#detail .session-head").screenshot(path=str(tmp_path / "timeline-head.png"))
    answer.screenshot(path=str(tmp_path / "timeline-answer.png"))
    redacted.screenshot(path=str(tmp_path / "timeline-guardrail.png"))
    _shot(page, tmp_path / "timeline-figures.png")
