from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.common import InvalidArgument, NotFound, SecurityLevel
from services.workflow._builtins import register_builtins
from services.workflow._config import LimitsConfig
from services.workflow._degradation import DegradationGate
from services.workflow._executor import Executor
from services.workflow._model import RunQuery
from services.workflow._paging import decode_page_token, encode_page_token
from services.workflow._registry import WorkflowRegistry
from services.workflow._runs import Operations, StartRequest
from services.workflow._security_client import Caller
from services.workflow._sqlite_store import SQLiteRunStore
from services.workflow._states import RunState

ADMIN = Caller("root", SecurityLevel.ADMIN)


class MustNotScreen:
    """Request checks happen before the security hop: reaching it fails the test."""

    async def screen(self, **kw: Any) -> Any:
        raise AssertionError("screen() must not be called for a request refused locally")


def test_page_token_round_trip() -> None:
    q = RunQuery(workflow="echo", limit=10)
    assert decode_page_token(encode_page_token(42, q), q) == 42


@pytest.mark.parametrize("token", ["garbage!!", "e30", "x" * 300, encode_page_token(1, RunQuery())[:-3]])
def test_malformed_page_tokens(token: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_page_token(token, RunQuery())
    assert info.value.violations[0].field == "page_token"


def test_page_token_bound_to_its_filters() -> None:
    token = encode_page_token(5, RunQuery(workflow="echo"))
    with pytest.raises(InvalidArgument, match="different filters"):
        decode_page_token(token, RunQuery(workflow="sleep"))
    with pytest.raises(InvalidArgument, match="different filters"):
        decode_page_token(token, RunQuery(workflow="echo", states=frozenset({RunState.FAILED})))


@pytest.fixture
async def ops(tmp_path: Path) -> AsyncIterator[Operations]:
    store = SQLiteRunStore(tmp_path / "r.db", clock=time.time)
    await store.open()
    registry = WorkflowRegistry()
    register_builtins(registry)
    ex = Executor(store=store, registry=registry, owner="t", clock=time.time, monotonic=time.monotonic)
    limits = LimitsConfig(max_params_bytes=2048, max_params_depth=5, max_labels=2)
    yield Operations(
        executor=ex, security=MustNotScreen(), gate=DegradationGate(), limits=limits, clock=time.time
    )
    await store.close()


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (StartRequest(workflow=""), "workflow"),
        (StartRequest(workflow="w" * 129), "workflow"),
        (StartRequest(workflow="echo", idempotency_key="k" * 129), "idempotency_key"),
        (StartRequest(workflow="echo", labels={"a": "1", "b": "2", "c": "3"}), "labels"),
        (StartRequest(workflow="echo", labels={"a": "v" * 129}), "labels[a]"),
        (StartRequest(workflow="echo", priority=101), "priority"),
        (StartRequest(workflow="echo", not_before=time.time() + 10 * 366 * 86400), "not_before"),
        (StartRequest(workflow="echo", params=nested(6)), "params"),
        (StartRequest(workflow="echo", params={"big": "x" * 4096}), "params"),
    ],
)
async def test_bad_requests_are_refused_before_screening(
    ops: Operations, req: StartRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        await ops.start(req, token="t", remaining_s=None)
    assert info.value.violations[0].field == field


async def test_depth_at_the_limit_passes_local_checks(ops: Operations) -> None:
    with pytest.raises(AssertionError, match="must not be called"):
        await ops.start(StartRequest(workflow="echo", params=nested(5)), token="t", remaining_s=None)


async def test_unknown_workflow_is_not_found_before_screening(ops: Operations) -> None:
    with pytest.raises(NotFound, match="nope"):
        await ops.start(StartRequest(workflow="nope"), token="t", remaining_s=None)


async def test_list_validates_page_size_and_token(ops: Operations) -> None:
    with pytest.raises(InvalidArgument, match="page_size"):
        await ops.list(RunQuery(limit=1001), "", ADMIN)
    with pytest.raises(InvalidArgument, match="page_token"):
        await ops.list(RunQuery(), "bogus", ADMIN)
