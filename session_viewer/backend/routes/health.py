"""``GET /health``: is the backend up and can it reach MongoDB (no authentication)."""

import logging

from fastapi import APIRouter, Request
from pymongo.errors import PyMongoError

from ..models import Health

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(request: Request) -> Health:
    """Report ``ok`` when MongoDB answers a ping, ``degraded`` otherwise."""
    try:
        await request.app.state.mongo_client.admin.command("ping")
    except PyMongoError as error:
        logger.warning("error=<%s> | database ping failed", type(error).__name__)
        return Health(status="degraded", database="unavailable")
    return Health(status="ok", database="ok")
