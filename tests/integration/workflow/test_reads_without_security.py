"""Reads survive a security outage (issue 12): with the security key material configured,
GetRun/ListRuns/WatchRun/ListWorkflows verify callers locally; new runs still fail closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from services.common import Unauthenticated, Unavailable
from services.security import Level, new_key
from services.workflow._app import WorkflowApp
from services.workflow.client import pb
from tests.integration.workflow import plugins
from tests.integration.workflow.conftest import (
    FAST_SCRYPT_N,
    SecurityEnv,
    StartWorkflow,
    client,
)


@pytest.fixture
async def keyed(
    tmp_path: Path, start_workflow: StartWorkflow
) -> AsyncIterator[tuple[WorkflowApp, SecurityEnv, Path]]:
    """The security service and a workflow service given its key material (one keys file)."""
    keys = tmp_path / "keys.yaml"
    alice_token, alice = new_key("alice", Level.AUTHENTICATED, n=FAST_SCRYPT_N)
    keys.write_text(yaml.safe_dump([alice.model_dump(mode="json")]))
    env = await _security_with_keys(tmp_path, keys, alice_token)
    app = await start_workflow(env.address, auth={"keys_file": str(keys)})
    yield app, env, keys
    await env.server.stop(0)


async def _security_with_keys(tmp_path: Path, keys: Path, alice_token: str) -> SecurityEnv:
    from services.security._app import build as build_security
    from services.security._config import SecurityConfig

    cfg = SecurityConfig.model_validate(
        {
            "server": {"port": 0},
            "auth": {"keys_file": str(keys)},
            "roots": {"default": str(tmp_path / "artifacts")},
            "audit": {"db_path": str(tmp_path / "audit-keyed.db")},
        }
    )
    server = await build_security(cfg)
    await server.start()
    return SecurityEnv(server.address, alice_token, "", tmp_path / "artifacts", server)


async def test_reads_work_while_security_is_down_and_starts_fail_closed(
    keyed: tuple[WorkflowApp, SecurityEnv, Path],
) -> None:
    app, env, _ = keyed
    async with client(app, env.alice) as c:
        run, _ = await c.start_run("counting", {}, wait=True)
        assert run.state == pb.RUN_STATE_SUCCEEDED
        await env.server.stop(0)  # security down from here on
        handlers_before = len(plugins.CALLS)
        assert (await c.get_run(run.run_id)).state == pb.RUN_STATE_SUCCEEDED
        assert [r.run_id for r in (await c.list_runs())[0]] == [run.run_id]
        assert [e.run.run_id async for e in c.watch_run(run.run_id, timeout_s=5)] == [run.run_id]
        assert "counting" in {w.name for w in await c.list_workflows()}
        with pytest.raises(Unavailable) as refused:
            await c.start_run("counting", {})
        assert refused.value.retry_after_s is not None  # retryable, with a delay
        assert len(plugins.CALLS) == handlers_before  # no handler ran
    async with client(app, "vgl_unknown_" + "x" * 40) as stranger:
        with pytest.raises(Unauthenticated):
            await stranger.get_run(run.run_id)
        with pytest.raises(Unauthenticated):
            await stranger.list_runs()


async def test_a_key_added_to_the_file_is_accepted_without_a_restart(
    keyed: tuple[WorkflowApp, SecurityEnv, Path],
) -> None:
    app, env, keys = keyed
    await env.server.stop(0)
    bob_token, bob = new_key("bob", Level.AUTHENTICATED, n=FAST_SCRYPT_N)
    entries = yaml.safe_load(keys.read_text())
    keys.write_text(yaml.safe_dump([*entries, bob.model_dump(mode="json")]))
    async with client(app, bob_token) as c:
        assert (await c.list_runs())[0] == []
