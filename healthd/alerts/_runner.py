"""The alerting loop: gather facts (healthd's snapshot + scraped service metrics),
evaluate the rules, hand notices to the webhook sender."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from healthd._store_metrics import STORE_FREE_BYTES, STORE_RESERVE_BYTES
from healthd.alerts._config import AlertsConfig
from healthd.alerts._rules import Alert, ComponentFact, Facts, Notice, RuleEngine
from healthd.alerts._webhook import WebhookSender
from services.common import get_logger

if TYPE_CHECKING:
    from healthd._snapshot import ComponentView, Snapshot

__all__ = ["Alerting", "MetricsScrape"]

_log = get_logger("vigil.healthd.alerts")

# Codes that mean the server failed (a caller's bad input is not an error of the service).
_SERVER_FAULTS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)


def _store_space() -> dict[str, tuple[float, float]]:
    """store -> (free, reserve) bytes, as healthd's own store checks last set their gauges."""

    def by_store(gauge: Any) -> dict[str, float]:
        return {s.labels["store"]: s.value for fam in gauge.collect() for s in fam.samples}

    free, reserve = by_store(STORE_FREE_BYTES), by_store(STORE_RESERVE_BYTES)
    return {store: (value, reserve[store]) for store, value in free.items() if store in reserve}


def _root_cause(view: ComponentView) -> str:
    return view.health.cause if view.health.reason.value == "DEPENDENCY_DOWN" else ""


class MetricsScrape:
    """Totals from one /metrics text: RPCs handled, of which failed, and open breakers."""

    def __init__(self, text: str) -> None:
        self.total = 0.0
        self.failed = 0.0
        self.open_breakers: list[str] = []
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == "grpc_server_handled_total":
                    if s.labels.get("grpc_service", "").startswith("grpc."):
                        continue  # health checks and reflection are healthd's own traffic
                    self.total += s.value
                    if s.labels.get("grpc_code") in _SERVER_FAULTS:
                        self.failed += s.value
                elif s.name == "vigil_workflow_breaker_state" and s.value >= 2:
                    # one breaker per workflow, labelled by it
                    self.open_breakers.append(s.labels.get("workflow") or s.labels.get("breaker", ""))


class Alerting:
    """Runs the rule engine every ``evaluate_interval_s`` against ``snapshot()``.

    Args:
        config: Rules, webhooks, metric targets.
        snapshot: Current healthd snapshot.
        on_change: Called after an evaluation that produced notices (dashboard refresh).
        clock: Wall-clock seconds (alerts carry wall times).
    """

    def __init__(
        self,
        config: AlertsConfig,
        snapshot: Callable[[], Snapshot],
        *,
        external_url: str = "",
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.engine = RuleEngine(list(config.rules), inhibit_grace_s=config.inhibit_grace_s)
        self.sender = WebhookSender(list(config.webhooks), external_url=external_url)
        self._snapshot = snapshot
        self.on_change = on_change
        self._clock = clock
        self._previous: dict[str, MetricsScrape] = {}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def alerts(self) -> list[Alert]:
        return self.engine.alerts()

    def start(self) -> None:
        self.sender.start()
        self._task = asyncio.create_task(self._loop(), name="alerting")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.sender.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.evaluate_once()
            except Exception:  # one bad evaluation must not end alerting; the next one retries
                _log.exception("alert evaluation failed")
            await asyncio.sleep(self.config.evaluate_interval_s)

    async def evaluate_once(self) -> list[Notice]:
        facts = await self.facts()
        notices = self.engine.evaluate(facts, now=self._clock())
        for notice in notices:
            a = notice.alert
            _log.warning(
                "alert %s %s (%s): %s",
                a.rule,
                notice.kind,
                a.severity.value,
                a.summary,
                extra={"alert": a.rule, "notice": notice.kind, "labels": dict(a.labels)},
            )
            self.sender.submit(notice)
        if notices:
            self.on_change()
        return notices

    async def facts(self) -> Facts:
        snap = self._snapshot()
        components = {
            v.health.name: ComponentFact(v.health.status.value, v.heal_state.value, _root_cause(v))
            for v in snap.components
        }
        rates: dict[str, tuple[float, int]] = {}
        breakers: dict[str, tuple[str, ...]] = {}
        for name, url in self.config.metrics_targets.items():
            scrape = await self._scrape(url)
            if scrape is None:
                continue  # unreachable: component_down covers a dead service
            before = self._previous.get(name)
            self._previous[name] = scrape
            breakers[name] = tuple(scrape.open_breakers)
            if before is not None and scrape.total >= before.total:
                requests = scrape.total - before.total
                failed = scrape.failed - before.failed
                rates[name] = (failed / requests if requests else 0.0, int(requests))
        return Facts(components, rates, breakers, _store_space())

    async def _scrape(self, url: str) -> MetricsScrape | None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                resp.raise_for_status()
                return MetricsScrape(await resp.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            _log.debug("metrics target %s unreachable: %s", url, exc)
            return None
