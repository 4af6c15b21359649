"""`settle_heap`: start-up's objects leave the collector's generations, start-up's garbage is freed,
and both process entry points (`run_main`, healthd's `serve`) settle the heap before serving.

Each case runs in a child interpreter: freezing the pytest process would keep every later
test's cyclic garbage alive.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap

from tests.conftest import REPO, python_env


def _child(code: str) -> str:
    """Run ``code`` in a fresh interpreter (in a scratch directory: healthd's defaults write
    there) and return what it printed."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=scratch,
            env=python_env(PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_survivors_are_frozen_and_garbage_is_collected() -> None:
    out = _child(
        """
        import gc, weakref
        from services.common import settle_heap

        class Node:
            pass

        gc.disable()  # nothing collects before settle_heap does
        kept = [Node() for _ in range(50_000)]
        cycle = Node()
        cycle.self = cycle
        probe = weakref.ref(cycle)
        del cycle  # unreachable now, but only the cycle collector can free it
        frozen = settle_heap()
        old = {id(o) for o in gc.get_objects(generation=2)}
        print(frozen >= len(kept), probe() is None, any(id(k) in old for k in kept))
        """
    )
    assert out == "True True False"


def test_run_main_settles_the_heap_before_the_server_is_built() -> None:
    out = _child(
        """
        import gc, sys
        from services.common import ConfigModel, run_main

        class Config(ConfigModel):
            pass

        class Server:
            async def start(self):
                print(frozen_at_build > 10_000, gc.get_freeze_count() == frozen_at_build)

            async def wait(self):
                return None

            async def stop(self):
                return None

        async def build(cfg):  # what it makes (the service's work) is not frozen
            global frozen_at_build
            frozen_at_build = gc.get_freeze_count()
            return Server()

        sys.exit(run_main([], model=Config, env_prefix="VIGIL_HEAPTEST_", build=build, prog="heaptest"))
        """
    )
    assert out == "True True"


def test_healthd_settles_the_heap_before_the_daemon_starts() -> None:
    out = _child(
        """
        import gc, sys
        import healthd._daemon as daemon

        class Stopped(daemon.Daemon):
            async def start(self):
                print(gc.get_freeze_count() > 10_000)
                raise OSError("stopped by the test")  # serve() then stops the daemon and exits 1

        daemon.Daemon = Stopped
        sys.exit(0 if daemon.serve(None) == 1 else 3)
        """
    )
    assert out.splitlines()[-1] == "True"
