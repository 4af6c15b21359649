"""The heap a Vigil process serves with: `settle_heap`, called once at start-up, before serving.

CPython's full (generation 2) collection walks every object the collector tracks. Start-up
leaves tens of thousands that live as long as the process (modules, protobuf descriptors,
pydantic models, compiled patterns, the config): 66K in the workflow service after its
imports. Under load a full collection comes every second or so (calls in flight
survive the young collections, so the old generation keeps passing its 25 % growth trigger),
and each walked all of them with the event loop stopped: 25-31 ms per collection, measured
at StartRun c64. `gc.freeze` moves them to the permanent generation, which no collection
walks; the full collections that remain take about 1 ms.

Trade-off: an object frozen here is never freed by the *cycle* collector, even if it later
becomes part of an unreachable cycle (reference counting still frees it as usual). So it is
called where only what lives as long as the process exists: `run_main` calls it after the
imports and the config, before ``build`` (66K of the workflow's 68K objects are the imports';
``build`` already starts work: the executor claims due runs, whose tasks may end in
cycles), and healthd's ``serve`` after constructing the daemon, before starting it. Only
process entry points call it, never a library or a test that embeds a server.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> int:
    """Collect start-up's garbage, then freeze every object left; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
