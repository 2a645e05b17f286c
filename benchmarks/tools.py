"""The tool the benchmark conversation calls: ``lookup_order``, returning a realistic ~600-byte order record.

The model of the benchmark agent is the package's ``mongodb_session_manager.testing.ScriptedModel`` (see
``conversation.make_agent``).
"""

from __future__ import annotations

from typing import Any

from strands import tool

__all__ = ["lookup_order", "make_lookup_order"]


def make_lookup_order(result_bytes: int | None = None) -> Any:
    """Return the ``lookup_order`` tool; with ``result_bytes`` its result is padded to about that size."""

    @tool
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look up an order by id and return its status, items and delivery events.

        Args:
            order_id: The order id, e.g. "A-1042".
        """
        result: dict[str, Any] = {
            "status": "success",
            "content": [{"json": _order(order_id)}],
        }
        if result_bytes:
            result["content"].append({"text": "delivery scan log: " + "x" * result_bytes})
        return result

    return lookup_order


def _order(order_id: str) -> dict[str, Any]:
    """A realistic ~600-byte order record."""
    return {
        "order_id": order_id,
        "status": "in_transit",
        "carrier": "Parcelway",
        "tracking_number": "PW" + "".join(str((ord(c) * 7) % 10) for c in order_id).ljust(12, "0"),
        "placed_at": "2025-03-02T10:14:00Z",
        "estimated_delivery": "2025-03-09",
        "items": [
            {"sku": "KB-204", "name": "Mechanical keyboard, brown switches", "qty": 1, "price": 89.0},
            {"sku": "MS-118", "name": "Wireless mouse", "qty": 1, "price": 29.5},
        ],
        "events": [
            {"at": "2025-03-03T08:00:00Z", "where": "Rotterdam hub", "what": "departed"},
            {"at": "2025-03-05T17:40:00Z", "where": "Cologne depot", "what": "arrived, awaiting sort"},
            {"at": "2025-03-06T06:12:00Z", "where": "Cologne depot", "what": "held: address check"},
        ],
        "shipping_address": {"city": "Cologne", "postcode": "50667", "country": "DE"},
    }


lookup_order = make_lookup_order()
