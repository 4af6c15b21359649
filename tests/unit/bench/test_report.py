"""The benchmark report's arithmetic: percentiles, paired ratios, targets, the table."""

from __future__ import annotations

import json
import math

from bench import Figure, Target, percentile
from bench._report import render_table, write_json


def test_percentile_nearest_rank() -> None:
    samples = list(range(1, 101))
    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_ratio_is_median_of_paired_ratios() -> None:
    # Per-repeat ratios 4.0, 0.5, 3.0 -> median 3.0; the ratio of medians would be 40/20 = 2.0.
    fig = Figure("x", "req/s", ours=[40, 10, 60], ref=[10, 20, 20])
    assert fig.ratio == 3.0
    assert fig.ours_median == 40 and fig.ref_median == 20


def test_unpaired_ratio_falls_back_to_ratio_of_medians() -> None:
    fig = Figure("x", "ms", ours=[10, 20], ref=[5])
    assert fig.ratio == 3.0


def test_targets_judge_ratio_or_value() -> None:
    assert Figure("t", "req/s", [12], [10], target=Target.ratio_at_least(1.0)).met is True
    assert Figure("t", "req/s", [8], [10], target=Target.ratio_at_least(1.0)).met is False
    assert Figure("t", "ms", [300], target=Target.at_most(250)).met is False
    assert Figure("t", "ms", [200], target=Target.at_most(250)).met is True
    assert Figure("t", "ms", [200], target=Target.ratio_at_most(1.5)).met is None  # no reference
    assert Figure("t", "ms", [], target=Target.at_most(250)).met is False  # nothing measured
    assert Figure("t", "ms", [1]).met is None  # no target


def test_table_and_json_carry_every_figure(tmp_path) -> None:
    figs = {
        "b": [
            Figure("tp", "req/s", [1500, 1600], [1000, 1000], "ref", Target.ratio_at_least(1.0)),
            Figure("lat", "ms", [300], target=Target.at_most(250), note="slow"),
        ]
    }
    table = render_table(figs, "header")
    assert "1.55x" in table and "yes" in table and "NO" in table and "b / lat: slow" in table
    out = tmp_path / "r.json"
    write_json(out, figs, {"cores": 2})
    data = json.loads(out.read_text())
    assert data["meta"]["cores"] == 2
    assert data["benchmarks"]["b"][0]["ratio"] == 1.55 and data["benchmarks"]["b"][1]["met"] is False
