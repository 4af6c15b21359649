"""Structured config fuzzing: documents shaped like real configs (healthd components and
checks, workflow registrations, schedules with cron expressions, policies), with random
values in each slot, so validation reaches the custom validators (cron parsing, JSON
Schemas, handler references, dependency graphs). Only ConfigError may come out."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthd import HealthdConfig
from services.common import ConfigError, ConfigModel, load_config
from services.workflow._config import WorkflowConfig
from tests.fuzz.test_config_fuzz import values

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

cron_parts = st.sampled_from(
    ["*", "*/5", "0", "59", "60", "1-5", "5-1", "1,2,3", "*/0", "a", "", "-1", "?", "L"]
)
crons = st.one_of(
    st.lists(cron_parts, min_size=0, max_size=7).map(" ".join),
    st.sampled_from(["@hourly", "@daily", "@reboot", "* * * * *", "0 0 31 2 *", "*/0 * * * *"]),
    st.text(max_size=30),
)
durations = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**9), st.text(max_size=5)
)
addresses = st.sampled_from(["127.0.0.1:1", "localhost:0", ":", "[::1]:65536", "", "unix:/tmp/x", "host"])
check = st.fixed_dictionaries(
    {"kind": st.sampled_from(["grpc", "tcp", "http", "exec", "process", "store", "bogus"])},
    optional={
        "address": addresses,
        "url": st.sampled_from(["http://127.0.0.1:1/", "ftp://x", "https://", "http://[::1"]),
        "argv": st.lists(st.text(max_size=10), max_size=3),
        "path": st.sampled_from(["/nonexistent/runs.db", "", "../x.db"]),
        "interval_s": durations,
        "timeout_s": durations,
        "failure_threshold": st.integers(-1, 1000),
        "service": st.text(max_size=20),
        "expect_status": st.integers(0, 1000),
    },
)
names = st.sampled_from(["a", "b", "c", "a/b", "bad name", "", "x" * 300])
component = st.fixed_dictionaries(
    {"name": names, "checks": st.lists(check, max_size=2)},
    optional={
        "critical": st.booleans(),
        "depends_on": st.lists(names, max_size=3),
        "degrades_to": st.sampled_from(["NORMAL", "READ_ONLY", "OFFLINE", "nope"]),
        "healing": st.fixed_dictionaries(
            {},
            optional={
                "action": st.sampled_from(["none", "restart", "command", "admin_rpc", "pray"]),
                "command": st.lists(st.text(max_size=8), max_size=2),
                "admin_rpc": st.fixed_dictionaries({"address": addresses, "method": st.text(max_size=20)}),
                "backoff_base_s": durations,
                "max_attempts": st.integers(-1, 2000),
            },
        ),
        "process": st.fixed_dictionaries({"argv": st.lists(st.text(max_size=8), max_size=3)}),
    },
)
healthd_docs = st.fixed_dictionaries(
    {"components": st.lists(component, max_size=4)},
    optional={"mode": st.sampled_from(["supervisor", "sidecar", "other"]), "level_recovery_s": durations},
)
schema = st.one_of(
    values,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["object", "string", "nonsense", 5])}, optional={"properties": values}
    ),
    st.just({"$ref": "#/definitions/missing"}),
    st.just({"type": "string", "pattern": "("}),
)
policy = st.fixed_dictionaries(
    {},
    optional={
        "input_schema": schema,
        "required_level": st.sampled_from(["PUBLIC", "ADMIN", "ROOT"]),
        "timeout_s": durations,
        "retry": values,
        "breaker": values,
        "fallback": st.lists(values, max_size=2),
        "isolation": st.sampled_from(["inline", "process", "thread"]),
    },
)
workflow_docs = st.fixed_dictionaries(
    {},
    optional={
        "workflows": st.dictionaries(
            st.text(max_size=10),
            st.fixed_dictionaries(
                {
                    "handler": st.sampled_from(
                        ["os:system", "nope:nope", "services.workflow:echo", "bad", ":"]
                    )
                },
                optional={"policy": policy},
            ),
            max_size=2,
        ),
        "schedules": st.lists(
            st.fixed_dictionaries(
                {"name": names, "cron": crons, "workflow": st.sampled_from(["echo", "missing"])},
                optional={"params": values},
            ),
            max_size=3,
        ),
        "limits": values,
        "store_backend": st.sampled_from(["sqlite", "postgres", "oracle"]),
    },
)


def load_or_config_error(tmp_path: Path, model: type[ConfigModel], doc: dict) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        load_config(model, path)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(doc=healthd_docs)
def test_healthd_shaped_documents(tmp_path: Path, doc: dict) -> None:
    load_or_config_error(tmp_path, HealthdConfig, doc)


@FUZZ
@given(doc=workflow_docs)
def test_workflow_shaped_documents(tmp_path: Path, doc: dict) -> None:
    load_or_config_error(tmp_path, WorkflowConfig, doc)
