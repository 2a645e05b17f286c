"""The index behind ``MongoDBStorage.search``: strands' keyword scoring, answered from multikey indexes.

strands' default `KeywordSearchStrategy` reads every entry and scores it by how many distinct query words
(stop words left out) appear in its key (relative to the storage searched, extension removed) or content.
Here each document carries those words at write time: ``terms`` (its content's words) and ``key_terms``
(its key's words, each with the depth of the path segment it comes from, so that a namespaced view scores
keys relative to its prefix). One aggregation finds the candidates through the indexes on both and computes
the same score on the server. Blobs in GridFS, and blobs with too many distinct words for their document,
are marked ``scan`` instead and scored here by reading them, as the keyword strategy does.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, IndexModel
from strands.storage.search.keyword import STOP_WORDS, token_overlap_score, tokenize

INDEXES = [
    IndexModel([("terms", ASCENDING)], name="terms"),
    IndexModel([("key_terms.t", ASCENDING)], name="key_terms"),
    IndexModel([("scan", ASCENDING)], name="scan", sparse=True),
]

TERMS_LIMIT = 512 * 1024
"""Estimated BSON bytes of a document's content words beyond which it is scanned instead."""

_EXTENSION = re.compile(r"(?<=[^/])\.[^./]*$")  # what the keyword strategy leaves out of a key


def query_terms(query: str) -> list[str]:
    """Return the words of a query that count: lower-cased, stop words left out."""
    return sorted(tokenize(query) - STOP_WORDS)


def document_fields(key: str, data: bytes | None) -> dict[str, Any]:
    """Return the search fields of the document of ``key`` holding ``data`` (None: the blob is in GridFS)."""
    segments = key.split("/")
    segments[-1] = _EXTENSION.sub("", segments[-1])
    key_terms = [
        {"d": depth, "t": term}
        for depth, segment in enumerate(segments)
        for term in sorted(tokenize(segment) - STOP_WORDS)
    ]
    if data is None:
        return {"key_terms": key_terms, "scan": True}
    terms = sorted(tokenize(data.decode("utf-8", errors="replace")) - STOP_WORDS)
    if sum(len(term.encode()) + 16 for term in terms) > TERMS_LIMIT:
        return {"key_terms": key_terms, "scan": True}
    return {"key_terms": key_terms, "terms": terms}


def pipeline(terms: list[str], match: dict[str, Any], depth: int) -> list[dict[str, Any]]:
    """Return the aggregation finding the documents matched by ``match`` that score, with their score.

    Args:
        terms: The query's words (`query_terms`).
        match: The filter selecting the searched documents (the view's key range, unexpired).
        depth: Path segments of the view's prefix: key words from shallower segments do not count.
    """
    key_words = {
        "$map": {"input": {"$filter": {"input": "$key_terms", "cond": {"$gte": ["$$this.d", depth]}}}, "in": "$$this.t"}
    }
    words = {"$setUnion": [{"$ifNull": ["$terms", []]}, key_words]}
    return [
        {"$match": {**match, "$or": [{"terms": {"$in": terms}}, {"key_terms.t": {"$in": terms}}, {"scan": True}]}},
        {
            "$project": {
                "data": 1,
                "file_id": 1,
                "compression": 1,
                "length": 1,
                "scan": 1,
                "encryption_key_id": 1,
                "score": {"$size": {"$setIntersection": [{"$literal": terms}, words]}},
            }
        },
        {"$match": {"$or": [{"score": {"$gt": 0}}, {"scan": True}]}},
    ]


def scan_score(terms: list[str], relative_key: str, data: bytes) -> int:
    """Score a scanned blob as the keyword strategy does."""
    content = data.decode("utf-8", errors="replace")
    return token_overlap_score(set(terms), f"{_EXTENSION.sub('', relative_key)} {content}")
