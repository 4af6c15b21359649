"""The bearer token of a call's ``authorization`` metadata: one parser, one contract.

Every Vigil server reads credentials the same way: ``authorization: Bearer <token>``
(the scheme case-insensitive, surrounding blanks ignored). A header that is there but is
not of that form is always an error, never "no credentials": a caller who sent something
meant to authenticate and must hear why it did not. Whether *no* header is an error is the
caller's choice: `bearer_token` when the RPC needs a principal, `optional_bearer_token`
when an anonymous call is the security service's decision (PUBLIC workflows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.common._errors import Unauthenticated

__all__ = ["Metadata", "bearer_token", "optional_bearer_token"]

Metadata = Iterable[tuple[str, str | bytes]] | Mapping[str, str] | None
"""Invocation metadata as gRPC hands it over (pairs), or a mapping of it."""

_MALFORMED = "authorization metadata must be 'Bearer <token>'"


def optional_bearer_token(metadata: Metadata) -> str | None:
    """The token of ``authorization: Bearer <token>`` metadata; None without an authorization entry.

    Raises:
        Unauthenticated: an authorization entry that is not ``Bearer <token>``.
    """
    items = metadata.items() if isinstance(metadata, Mapping) else (metadata or ())
    for key, value in items:
        if key.lower() != "authorization":
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(_MALFORMED)
        return token.strip()
    return None


def bearer_token(metadata: Metadata) -> str:
    """The token of ``authorization: Bearer <token>`` metadata.

    Raises:
        Unauthenticated: no authorization entry, or one that is not ``Bearer <token>``.
    """
    token = optional_bearer_token(metadata)
    if token is None:
        raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
    return token
