"""Webhook delivery against a real receiver: logs never show a webhook's path or user info."""

from __future__ import annotations

import logging

import pytest

from healthd.alerts import Alert, AlertState, Notice, Severity, WebhookConfig, WebhookSender
from tests.conftest import eventually
from tests.integration.healthd.conftest import free_port
from tests.integration.obs.conftest import Receiver


def _notice(rule: str) -> Notice:
    alert = Alert(rule, (("component", "db"),), AlertState.FIRING, Severity.WARNING, "db down", since=1.0)
    return Notice("firing", alert)


async def _no_sleep(_s: float) -> None:
    return None


async def test_logs_show_a_webhook_as_scheme_and_host_only(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="vigil.healthd.alerts")
    dead = free_port()
    secret = "services/T0000/B0000/XXXXsecretXXXX"
    refused = WebhookConfig.model_validate({"url": f"{receiver.url}/{secret}", "max_attempts": 1})
    unreachable = WebhookConfig.model_validate(
        {"url": f"http://user:hunter2@127.0.0.1:{dead}/{secret}", "max_attempts": 2, "backoff_s": 0.01}
    )
    sender = WebhookSender([refused, unreachable], sleep=_no_sleep)
    sender.start()
    try:
        sender.submit(_notice("Leak"))
        await eventually(lambda: sender.failed == 2)
    finally:
        await sender.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.healthd.alerts"]
    assert len(lines) == 2
    port = receiver.url.split(":")[2].split("/")[0]
    assert f"http://127.0.0.1:{port} refused" in lines[0]
    assert f"http://127.0.0.1:{dead} failed after 2 attempts" in lines[1]
    for line in lines:
        assert "secret" not in line and "hunter2" not in line and "user" not in line
