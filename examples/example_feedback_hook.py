"""Feedback hooks: intercept ``add_feedback`` for auditing, validation, notifications and analytics.

Run it with ``uv run python examples/example_feedback_hook.py`` (embedded MongoDB and the offline demo model when
nothing is configured).

A feedback hook is ``hook(original_func, action, session_id, feedback=...)`` with ``action == "add"``; calling
``original_func(feedback)`` stores it (with ``created_at``). ``original_func.session_manager`` is the manager, for
hooks that need more of the session (here: the Session Viewer password for a support alert).

1. audit: log every feedback;
2. validation: a rating must be "up", "down" or None, and a "down" needs a comment;
3. notification: alert the support team on negative feedback, without ever failing the user's request;
4. analytics: count ratings and compute a satisfaction rate;
then all four at once with ``combine_hooks``.
"""

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, combine_hooks, create_mongodb_session_manager
from mongodb_session_manager.demo_model import create_model, describe_model
from mongodb_session_manager.startup import require_mongodb


def audit_hook(original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
    """Log each feedback before it is stored."""
    feedback = kwargs["feedback"]
    print(f"    [audit] {action} session={session_id} rating={feedback.get('rating')!r}")
    return original_func(feedback)


def validation_hook(original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
    """Refuse invalid feedback; nothing is stored when it refuses."""
    feedback = dict(kwargs["feedback"])
    if feedback.get("rating") not in ("up", "down", None):
        raise ValueError("rating must be 'up', 'down' or None")
    feedback["comment"] = (feedback.get("comment") or "").strip()[:500]
    if feedback["rating"] == "down" and not feedback["comment"]:
        raise ValueError("please tell us what went wrong: a negative rating needs a comment")
    return original_func(feedback)


def send_alert(text: str, viewer_password: str | None) -> None:
    """Stand-in for a real channel (Slack, e-mail, SNS: see examples/aws_feedback_sns.py); never print secrets."""
    print(f"    [alert] {text}")


def notification_hook(original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
    """Store the feedback, then alert on negative ratings; a failing alert never fails the request."""
    result = original_func(kwargs["feedback"])
    if kwargs["feedback"].get("rating") == "down":
        try:
            password = original_func.session_manager.get_session_viewer_password()
            comment = kwargs["feedback"].get("comment")
            send_alert(f"negative feedback on {session_id}: {comment!r} (Session Viewer password attached)", password)
        except Exception as error:
            print(f"    [alert] could not notify: {error}")
    return result


class AnalyticsHook:
    """Count ratings across sessions and report satisfaction."""

    def __init__(self) -> None:
        self.ratings: Counter[str] = Counter()

    def __call__(self, original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        result = original_func(kwargs["feedback"])
        self.ratings[str(kwargs["feedback"].get("rating"))] += 1
        return result

    def satisfaction(self) -> float:
        rated = self.ratings["up"] + self.ratings["down"]
        return self.ratings["up"] / rated if rated else 0.0


def open_session(name: str, hook: Callable[..., Any]) -> MongoDBSessionManager:
    return create_mongodb_session_manager(
        session_id=f"feedback-hook-{name}-{uuid.uuid4().hex[:8]}",
        feedback_hook=hook,
    )


def give(session_manager: MongoDBSessionManager, feedback: dict[str, Any]) -> None:
    try:
        session_manager.add_feedback(feedback)
    except ValueError as error:
        print(f"    refused {feedback}: {error}")


def main() -> None:
    model = create_model()
    print(f"Model: {describe_model(model)}")

    print("1. Audit hook")
    with open_session("audit", audit_hook) as session_manager:
        agent = Agent(agent_id="assistant", model=model, session_manager=session_manager, callback_handler=None)
        print(f"    assistant: {str(agent('Hello, my name is Alice.')).strip()}")
        give(session_manager, {"rating": "up", "comment": "Quick answer"})

    print("2. Validation hook")
    with open_session("validation", validation_hook) as session_manager:
        give(session_manager, {"rating": "down"})
        give(session_manager, {"rating": "excellent", "comment": "!"})
        give(session_manager, {"rating": "down", "comment": "  The answer was wrong  "})
        print(f"    stored: {[(f['rating'], f['comment']) for f in session_manager.get_feedbacks()]}")

    print("3. Notification hook")
    with open_session("notification", notification_hook) as session_manager:
        give(session_manager, {"rating": "up", "comment": "Great"})
        give(session_manager, {"rating": "down", "comment": "It did not understand my question"})
        print(f"    stored {len(session_manager.get_feedbacks())} feedbacks")

    print("4. Analytics hook")
    analytics = AnalyticsHook()
    for ratings in (["up", "up", None], ["down", "up"]):
        with open_session("analytics", analytics) as session_manager:
            for rating in ratings:
                give(session_manager, {"rating": rating, "comment": "demo"})
    print(f"    ratings {dict(analytics.ratings)}; satisfaction {analytics.satisfaction():.0%}")

    print("5. All four with combine_hooks(audit, validation, notification, analytics)")
    analytics = AnalyticsHook()
    combined = combine_hooks(audit_hook, validation_hook, notification_hook, analytics)
    with open_session("combined", combined) as session_manager:
        give(session_manager, {"rating": "down"})
        give(session_manager, {"rating": "down", "comment": "Too slow"})
        give(session_manager, {"rating": "up", "comment": "Now it works"})
        print(f"    stored: {[(f['rating'], f['comment']) for f in session_manager.get_feedbacks()]}")
    print(f"    ratings {dict(analytics.ratings)}; satisfaction {analytics.satisfaction():.0%}")


if __name__ == "__main__":
    require_mongodb("example_feedback_hook")  # a wrong MONGODB_URI: one line and exit status 1 within seconds
    main()
