"""The comparison script runs and reports what it says (figures are not asserted: speed is a
benchmark result, never a unit test)."""

import math

import pytest

from fastmlp import bench
from fastmlp.model import _available_cores


def test_compare_reports_consistent_ratios():
    row = bench.compare("xor", "float32", repeats=1, ref_samples=50)
    for key in ("fastmlp", "reference", "bound"):
        assert math.isfinite(row[key]) and row[key] > 0
    assert row["vs_reference"] == pytest.approx(row["fastmlp"] / row["reference"])
    assert row["vs_bound"] == pytest.approx(row["fastmlp"] / row["bound"])
    assert row["n_params"] == 20


@pytest.mark.skipif(_available_cores() < 2, reason="needs 2 cores")
def test_parallel_speedups_include_the_independent_yardstick():
    result = bench.parallel_speedups("digits", "float64", repeats=1, n_jobs=2)
    assert set(result) == {"net", "dtype", "independent", "rows", "hogwild"}
    for key in ("independent", "rows", "hogwild"):
        q25, median, q75 = result[key]["paired"]
        assert 0 < q25 <= median <= q75 and math.isfinite(q75)
        assert math.isfinite(result[key]["best"]) and result[key]["best"] > 0


def test_main_prints_the_table(capsys):
    assert bench.main(["--nets", "xor", "--dtypes", "float64", "--repeats", "1",
                       "--ref-samples", "20", "--parallel", ""]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| xor      | float64 |" in out and "vs bound" in out
    assert "step(x, y, lr) on xor, float64:" in out


def test_each_timed_run_follows_an_untimed_warm_up():
    calls = []
    bench._elapsed(lambda: calls.append("run"), lambda: calls.append("warm-up"))
    bench._elapsed(lambda: calls.append("again"))  # default warm-up: the job itself
    assert calls == ["warm-up", "run", "again", "again"]
