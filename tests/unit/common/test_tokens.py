"""The one bearer-token parser: a malformed header is always refused; a missing one is the caller's call."""

from __future__ import annotations

import pytest

from services.common import Unauthenticated, bearer_token, optional_bearer_token

WELL_FORMED = [
    ([("authorization", "Bearer abc")], "abc"),
    ([("Authorization", "bearer   abc  ")], "abc"),
    ({"authorization": "Bearer x.y.z"}, "x.y.z"),
    ([("authorization", b"Bearer raw")], "raw"),
    ([("x-other", "v"), ("authorization", " Bearer t ")], "t"),
]
MISSING = [None, [], [("x-other", "Bearer a")], {}]
MALFORMED = [[("authorization", "Basic abc")], [("authorization", "Bearer ")], [("authorization", "abc")]]


@pytest.mark.parametrize(("metadata", "expected"), WELL_FORMED)
def test_well_formed_tokens(metadata, expected) -> None:  # type: ignore[no-untyped-def]
    assert bearer_token(metadata) == expected
    assert optional_bearer_token(metadata) == expected


@pytest.mark.parametrize("metadata", MISSING)
def test_missing_header_is_an_error_only_where_required(metadata) -> None:  # type: ignore[no-untyped-def]
    assert optional_bearer_token(metadata) is None
    with pytest.raises(Unauthenticated, match="missing 'authorization: Bearer <token>' metadata"):
        bearer_token(metadata)


@pytest.mark.parametrize("metadata", MALFORMED)
def test_malformed_header_is_always_an_error(metadata) -> None:  # type: ignore[no-untyped-def]
    for parse in (bearer_token, optional_bearer_token):
        with pytest.raises(Unauthenticated, match="authorization metadata must be 'Bearer <token>'"):
            parse(metadata)
