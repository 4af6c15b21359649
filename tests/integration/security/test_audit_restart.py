"""VerifyAuditLog over a real server after a restart: the tail truncated, or every row deleted,
while the service was down is reported (the old unanchored chain answered ok)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from vigil.security.v1 import security_pb2 as pb


@pytest.mark.parametrize(
    ("sql", "first_bad"), [("DELETE FROM audit WHERE seq > 3", 4), ("DELETE FROM audit", 1)]
)
async def test_tampering_while_down_is_reported_after_restart(
    start_stack: Any, sql: str, first_bad: int
) -> None:
    stack = await start_stack()
    md = (("authorization", f"Bearer {stack.tokens['admin']}"),)
    for i in range(5):
        await stack.stub.Authorize(pb.AuthorizeRequest(token=stack.tokens["user"], action="workflow.start",
                                                       resource=f"wf{i}"))  # fmt: skip
    assert (await stack.stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=md)).ok
    await stack.server.stop(0)
    conn = sqlite3.connect(stack.config.audit.db_path, isolation_level=None)
    conn.execute(sql)
    conn.close()
    again = await start_stack()  # same directory, same audit file, key and head file
    md = (("authorization", f"Bearer {again.tokens['admin']}"),)  # each start makes new keys
    verdict = await again.stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=md)
    assert not verdict.ok and verdict.first_bad_seq == first_bad
    assert "anchored" in verdict.problem
