"""``healthd keep``: run healthd and start it again whenever it dies (like systemd's
``Restart=always``), for the local stack (``make run``).

healthd's children outlive it (they are recorded under ``run_dir``) and the restarted healthd
adopts them, so a healthd crash costs only its own restart. Backoff between restarts: 0.5 s,
doubling to 5 s, back to 0.5 s once a healthd ran 30 s. Exit code 2 (bad config) is not
retried: it cannot get better. SIGINT/SIGTERM (Ctrl-C) stops healthd (which stops its children)
and the keeper; if healthd was already dead, the keeper stops the recorded children itself, so
Ctrl-C never leaves an orphan. Sidecar mode (Kubernetes) does not use it: the kubelet restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from healthd._config import HealthdConfig
from healthd._pidfile import RunDir
from healthd._process import terminate_foreign
from services.common import ConfigError, load_config

ENV_PREFIX = "VIGIL_HEALTHD_"
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 5.0
STABLE_S = 30.0
"""A healthd that ran this long resets the backoff."""
EXIT_CONFIG = 2


def _say(message: str) -> None:
    print(f"healthd keep: {message}", file=sys.stderr, flush=True)


def keep(argv: Sequence[str]) -> int:
    """Run healthd until SIGINT/SIGTERM, restarting it when it dies; returns healthd's last code."""
    parser = argparse.ArgumentParser(prog="healthd keep", description="run healthd, restart it when it dies")
    parser.add_argument("--config", type=Path, help="healthd's YAML config (also VIGIL_HEALTHD_* env)")
    args = parser.parse_args(argv)
    try:
        config = load_config(HealthdConfig, args.config, env_prefix=ENV_PREFIX)
    except ConfigError as exc:
        print(f"healthd: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stopping = threading.Event()
    current: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()
        for proc in current:  # a terminal's Ctrl-C reached it too; SIGTERM is idempotent there
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cmd = [sys.executable, "-m", "healthd", *(["--config", str(args.config)] if args.config else [])]
    backoff, code = BACKOFF_MIN_S, 0
    while not stopping.is_set():
        started = time.monotonic()
        current[:] = [subprocess.Popen(cmd)]
        code = _wait(current[0])
        if stopping.is_set():
            break
        if code == EXIT_CONFIG:
            _say("healthd exited with code 2 (config error); not restarting")
            break
        backoff = BACKOFF_MIN_S if time.monotonic() - started >= STABLE_S else backoff
        _say(f"healthd exited ({_describe(code)}); restarting in {backoff:.1f}s")
        stopping.wait(backoff)
        backoff = min(BACKOFF_MAX_S, backoff * 2)
    if config.run_dir is not None:
        asyncio.run(_stop_leftovers(RunDir(config.run_dir)))
    return 0 if stopping.is_set() else code


def _wait(proc: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return proc.wait()
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue


def _describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"code {code}"


async def _stop_leftovers(records: RunDir) -> None:
    """Children of a healthd that died before it could stop them (Ctrl-C during a restart)."""
    for key, record in records.records().items():
        _say(f"stopping {record.component} (pid {record.pid}) left by a dead healthd")
        await terminate_foreign(record, 10.0)
        records.remove(key)
