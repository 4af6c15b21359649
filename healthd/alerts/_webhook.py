"""Delivery of alert notices to webhooks, as Alertmanager-compatible JSON (version 4).

Receivers written for Alertmanager's webhook (chat bridges, paging tools) accept these
payloads unchanged. Delivery never blocks evaluation: notices are queued and one worker
posts them in order, retrying connection errors, 5xx and 429 with exponential backoff
and jitter (tenacity), then gives up on that notice with an error log. Nothing one
delivery raises stops the worker. Logs name a receiver by scheme://host[:port] only:
webhook paths and user info routinely carry secrets (Slack-style tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, HttpUrl

from healthd.alerts._rules import Alert, Notice
from services.common import ConfigModel, get_logger

__all__ = ["WebhookConfig", "WebhookSender", "alertmanager_payload"]

_log = get_logger("vigil.healthd.alerts")
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"


class WebhookConfig(ConfigModel):
    """One webhook receiver."""

    url: HttpUrl
    """Where notices are POSTed: an absolute ``http://`` or ``https://`` URL with a host."""
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    """Per-attempt timeout."""
    max_attempts: int = Field(default=5, ge=1, le=50)
    """Attempts per notice before it is dropped (and logged)."""
    backoff_s: float = Field(default=0.5, gt=0, le=60)
    """First retry delay; doubles each attempt, with jitter."""
    max_backoff_s: float = Field(default=30.0, gt=0, le=3600)
    """Cap on one retry delay."""


def _origin(url: object) -> str:
    """``scheme://host[:port]`` of ``url``: what logs may show of a webhook."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _alert_json(a: Alert, status: str, kind: str, external_url: str) -> dict[str, Any]:
    annotations = {"summary": a.summary, "notice": kind, "escalations": str(a.escalations)}
    if a.caused_by:
        annotations["caused_by"] = a.caused_by
    return {
        "status": status,
        "labels": {"alertname": a.rule, "severity": a.severity.value, **dict(a.labels)},
        "annotations": annotations,
        "startsAt": _rfc3339(a.fired_at or a.since),
        "endsAt": _rfc3339(a.resolved_at) if status == "resolved" else _ZERO_TIME,
        "generatorURL": external_url,
        "fingerprint": a.fingerprint,
    }


def alertmanager_payload(
    notice: Notice, *, receiver: str = "vigil", external_url: str = ""
) -> dict[str, Any]:
    """The Alertmanager webhook body for one notice: one group, keyed by the root cause's
    alert, holding it first and then the alerts it caused (``Notice.related``)."""
    a = notice.alert
    status = "resolved" if notice.kind == "resolved" else "firing"
    root = _alert_json(a, status, notice.kind, external_url)
    caused = [
        _alert_json(r, "resolved" if r.state.value == "resolved" else status, notice.kind, external_url)
        for r in notice.related
    ]
    alerts = [root, *caused]
    group = {"alertname": a.rule, **dict(a.labels)}
    common = dict(set.intersection(*(set(x["labels"].items()) for x in alerts)))
    return {
        "version": "4",
        "groupKey": "{}:{" + ",".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": common,
        "commonAnnotations": root["annotations"] if not caused else {"summary": a.summary},
        "externalURL": external_url,
        "alerts": alerts,
    }


class _Retryable(Exception):
    """A failed delivery worth retrying (connection error, timeout, 5xx, 429)."""


class WebhookSender:
    """Queue + one worker that posts every notice to every configured webhook.

    Args:
        targets: Receivers.
        external_url: Dashboard URL put in payloads (``externalURL``/``generatorURL``).
        sleep: Injectable for tests of the backoff.
        queue_size: Notices beyond this many waiting are dropped (logged), never blocking.
    """

    def __init__(
        self,
        targets: list[WebhookConfig],
        *,
        external_url: str = "",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        queue_size: int = 1000,
    ) -> None:
        self.targets = targets
        self.external_url = external_url
        self._sleep = sleep
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed = 0

    def submit(self, notice: Notice) -> None:
        """Queue ``notice`` for delivery (never blocks)."""
        if not self.targets:
            return
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            _log.error("alert queue full; dropped %s notice of %s", notice.kind, notice.alert.rule)

    def start(self) -> None:
        if self._task is None and self.targets:
            self._task = asyncio.create_task(self._run(), name="alert-webhooks")

    async def close(self, drain_s: float = 2.0) -> None:
        """Give queued notices up to ``drain_s`` to go out, then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_s):
                    await self._queue.join()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        self._session = aiohttp.ClientSession()
        while True:
            notice = await self._queue.get()
            try:
                body = alertmanager_payload(notice, external_url=self.external_url)
                for target in self.targets:
                    try:
                        await self._deliver(target, body)
                    except Exception as exc:  # one receiver's surprise must not stop every later notice
                        self.failed += 1
                        where = _origin(target.url)
                        detail = str(exc).replace(str(target.url), where)[:300]
                        _log.error(
                            "alert webhook %s: %s notice of %s not delivered: %s: %s",
                            where,
                            notice.kind,
                            notice.alert.rule,
                            type(exc).__name__,
                            detail,
                        )
            finally:
                self._queue.task_done()

    async def _deliver(self, target: WebhookConfig, body: dict[str, Any]) -> None:
        import tenacity  # only once a notice is delivered: healthd without webhooks never loads it

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(target.max_attempts),
            wait=tenacity.wait_random_exponential(multiplier=target.backoff_s, max=target.max_backoff_s),
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            await retrying(self._post, target, body)
        except _Retryable as exc:
            self.failed += 1
            _log.error(
                "alert webhook %s failed after %d attempts: %s", _origin(target.url), target.max_attempts, exc
            )
            return
        except aiohttp.ClientResponseError as exc:  # 4xx other than 429: the receiver refuses it
            self.failed += 1
            _log.error("alert webhook %s refused the notice: HTTP %d", _origin(target.url), exc.status)
            return
        self.delivered += 1

    async def _post(self, target: WebhookConfig, body: dict[str, Any]) -> None:
        assert self._session is not None
        try:
            async with self._session.post(
                str(target.url), json=body, timeout=aiohttp.ClientTimeout(total=target.timeout_s)
            ) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise _Retryable(f"HTTP {resp.status}")
                resp.raise_for_status()
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
