"""Opaque, validated page tokens for ListRuns.

A token carries the keyset cursor (the last run's ``seq``) and a fingerprint of the filters
it was issued for, so a token replayed with other filters is refused instead of silently
paging a different result set. Tokens are not secrets: they only position a listing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from services.common import FieldViolation, InvalidArgument
from services.workflow._model import RunQuery, canonical_json

__all__ = ["decode_page_token", "encode_page_token"]

_VERSION = 1


def _fingerprint(query: RunQuery) -> str:
    filters = {
        "workflow": query.workflow,
        "states": sorted(s.value for s in query.states),
        "principal": query.principal,
        "labels": query.labels,
        "after": query.created_after,
        "before": query.created_before,
        "limit": query.limit,
    }
    return hashlib.sha256(canonical_json(filters).encode()).hexdigest()[:16]


def encode_page_token(seq: int, query: RunQuery) -> str:
    body = canonical_json({"v": _VERSION, "s": seq, "f": _fingerprint(query)})
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _bad(problem: str) -> InvalidArgument:
    return InvalidArgument(
        f"page_token: {problem}", [FieldViolation("page_token", problem, "INVALID_PAGE_TOKEN")]
    )


def decode_page_token(token: str, query: RunQuery) -> int:
    """The cursor in ``token``; InvalidArgument when malformed or issued for other filters."""
    if len(token) > 256:
        raise _bad("too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _bad("not a token issued by ListRuns") from None
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        raise _bad("not a token issued by ListRuns")
    seq = data.get("s")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise _bad("not a token issued by ListRuns")
    if data.get("f") != _fingerprint(query):
        raise _bad("issued for different filters or page size")
    return seq
