"""Webhook delivery against a real receiver: a failing target never stops the worker, a bad
URL is a config error at start-up, and logs never show a webhook's path or user info."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from healthd import HealthdConfig
from healthd.alerts import Alert, AlertState, Notice, Severity, WebhookConfig, WebhookSender
from services.common import ConfigError, load_config
from tests.conftest import eventually
from tests.integration.healthd.conftest import free_port
from tests.integration.obs.conftest import Receiver


def _notice(rule: str) -> Notice:
    alert = Alert(rule, (("component", "db"),), AlertState.FIRING, Severity.WARNING, "db down", since=1.0)
    return Notice("firing", alert)


async def _no_sleep(_s: float) -> None:
    return None


async def test_a_target_that_raises_does_not_stop_delivery_to_others(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # Fault injector: a URL the config would now refuse, built past validation, makes aiohttp
    # raise InvalidUrlClientError, standing for any error the sender does not expect.
    broken = WebhookConfig.model_construct(url="http://")
    good = WebhookConfig.model_validate({"url": receiver.url})
    sender = WebhookSender([broken, good], sleep=_no_sleep)
    sender.start()
    try:
        for rule in ("First", "Second"):
            sender.submit(_notice(rule))
        # The receiver records a body before the sender has read the reply and counted it.
        await eventually(lambda: len(receiver.bodies) == 2 and sender.delivered + sender.failed == 4)
        assert [b["groupLabels"]["alertname"] for b in receiver.bodies] == ["First", "Second"]
        assert (sender.delivered, sender.failed) == (2, 2)
    finally:
        await sender.close()
    errors = [r.getMessage() for r in caplog.records if r.name == "vigil.healthd.alerts"]
    assert len(errors) == 2 and all("InvalidUrlClientError" in e for e in errors)


@pytest.mark.parametrize("url", ["http://", "https://:443/x", "http//host/x", "ftp://host/x", "not a url"])
def test_a_webhook_url_without_scheme_or_host_is_a_config_error(tmp_path: Path, url: str) -> None:
    path = tmp_path / "healthd.yaml"
    path.write_text(f"alerts:\n  webhooks:\n    - url: {url!r}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(HealthdConfig, path, env_prefix="VIGIL_HEALTHD_", environ={})
    assert caught.value.field == "alerts.webhooks.0.url"


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
