"""Proto field readers that turn out-of-range values into INVALID_ARGUMENT.

protobuf's well-known-type helpers raise ValueError for values they cannot represent
(a Timestamp before year 1 or after 9999, say); left alone, grpc reports that as
INTERNAL. Servicers read such fields through these helpers instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from services.common._errors import FieldViolation, InvalidArgument

__all__ = ["optional_timestamp"]


def optional_timestamp(message: Message, field: str) -> datetime | None:
    """The timezone-aware datetime in ``message.<field>``, or None when unset.

    Raises:
        InvalidArgument: the Timestamp is outside 0001-01-01 .. 9999-12-31 or has
            out-of-range nanos (one violation naming ``field``).
    """
    if not message.HasField(field):
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field)
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidArgument(
            f"{field} is not a valid timestamp",
            [FieldViolation(field, f"out of range ({exc})", "TIMESTAMP_OUT_OF_RANGE")],
        ) from None
