"""Pure parts of the dashboard: Host matching and the runs view's per-minute series."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from healthd._config import DashboardConfig
from healthd.dashboard import host_allowed
from healthd.dashboard._runs import BUCKET_S, BUCKETS, series
from vigil.workflow.v1 import workflow_pb2 as wpb

LOOPBACK = DashboardConfig().hosts(8050)


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("localhost:8050", True),
        ("127.0.0.1:8050", True),
        ("[::1]:8050", True),
        ("LocalHost:8050", True),
        ("localhost", False),  # port 80 implied: not the dashboard's
        ("localhost:8051", False),
        ("evil.example:8050", False),
        ("localhost.evil.example:8050", False),
        ("127.0.0.1:8050@evil", False),
        ("[::1]", False),
        ("", False),
    ],
)
def test_default_hosts_are_loopback_with_the_port(host: str, ok: bool) -> None:
    assert host_allowed(host, LOOPBACK) is ok


def test_bare_names_allow_any_port() -> None:
    allowed = DashboardConfig(allowed_hosts=["Vigil.Internal", "[fd00::1]"]).hosts(8050)
    assert host_allowed("vigil.internal:443", allowed) and host_allowed("vigil.internal", allowed)
    assert host_allowed("[fd00::1]:9000", allowed)
    assert not host_allowed("other.internal:443", allowed)


@pytest.mark.parametrize("bad", [{"trace_url": "jaeger/{trace_id}"}, {"trace_url": "http://j/trace"},
                                 {"allowed_hosts": ["a b"]}, {"allowed_hosts": ["x/y"]}])  # fmt: skip
def test_bad_dashboard_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DashboardConfig.model_validate(bad)


def _run(state: int, created: float, finished: float = 0.0) -> wpb.Run:
    run = wpb.Run(run_id="r", workflow="w", state=state)
    run.created_at.CopyFrom(Timestamp(seconds=int(created)))
    if finished:
        run.finished_at.CopyFrom(Timestamp(seconds=int(finished)))
    return run


def test_series_counts_per_minute_and_failure_rate() -> None:
    now = 10_000 * BUCKET_S + 30  # half a minute into the newest bucket
    runs = [
        _run(wpb.RUN_STATE_SUCCEEDED, now - 20, now - 10),
        _run(wpb.RUN_STATE_FAILED, now - 25, now - 5),
        _run(wpb.RUN_STATE_TIMED_OUT, now - 70, now - 65),
        _run(wpb.RUN_STATE_RUNNING, now - 1),
        _run(
            wpb.RUN_STATE_SUCCEEDED, now - BUCKETS * BUCKET_S - 60, now - BUCKETS * BUCKET_S - 59
        ),  # too old
    ]
    rows = series(runs, now)
    assert len(rows) == BUCKETS and rows[-1]["t"] == now - 30
    last, before = rows[-1], rows[-2]
    assert (last["started"], last["finished"], last["failed"], last["failure_rate"]) == (3, 2, 1, 0.5)
    assert (before["started"], before["finished"], before["failed"], before["failure_rate"]) == (1, 1, 1, 1.0)
    assert sum(r["started"] for r in rows) == 4
