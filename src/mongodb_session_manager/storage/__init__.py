"""strands' unified ``Storage`` on MongoDB: `MongoDBStorage`."""

from .mongodb_storage import MongoDBStorage

__all__ = ["MongoDBStorage"]
