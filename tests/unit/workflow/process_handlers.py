"""Synchronous handlers run in worker processes by the isolation tests (imported by reference)."""

from __future__ import annotations

import os
import signal
from typing import Any


def add(params: dict[str, Any]) -> Any:
    return {"sum": params["a"] + params["b"], "pid": os.getpid()}


def burn(params: dict[str, Any]) -> Any:
    if "started_file" in params:  # lets a test see that the worker is busy
        with open(params["started_file"], "w") as marker:
            marker.write("started")
    n = 0
    while True:  # pure CPU until the CPU-time limit stops it
        n += 1


def hog(params: dict[str, Any]) -> Any:
    blocks = [bytearray(16 << 20) for _ in range(int(params.get("blocks", 1000)))]
    return len(blocks)


def boom(params: dict[str, Any]) -> Any:
    raise KeyError("missing thing")


def die(params: dict[str, Any]) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)
