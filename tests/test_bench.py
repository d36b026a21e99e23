"""The comparison script runs and reports what it says (figures are not asserted: speed is a
benchmark result, never a unit test)."""

import math
import time

import numpy as np
import pytest

from fastmlp import bench
from fastmlp.tuning import available_cores


def test_compare_reports_consistent_ratios():
    row = bench.compare("xor", "float32", repeats=1, ref_samples=50)
    for key in ("fastmlp", "reference", "bound"):
        assert math.isfinite(row[key]) and row[key] > 0
    assert row["vs_reference"] == pytest.approx(row["fastmlp"] / row["reference"])
    assert row["vs_bound"] == pytest.approx(row["fastmlp"] / row["bound"])  # one repeat: equal
    assert row["n_params"] == 20


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores")
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
    assert calls == ["warm-up", "run"]
    calls.clear()
    start = time.perf_counter()
    bench._elapsed(lambda: calls.append("again"))  # default warm-up: the job itself, repeated
    assert time.perf_counter() - start >= bench.WARMUP_SECONDS
    assert len(calls) >= 3 and set(calls) == {"again"}


def test_fit_is_timed_between_two_bound_runs_and_the_reference_after(monkeypatch):
    """Each repeat: bound, fit, bound; ``vs_bound`` is the median of fit against the mean of
    its two bound runs; the reference's repeats come after all the pairs."""
    jobs, times = [], iter([1.0, 4.0, 3.0, 2.0, 2.0, 2.0, 1.0, 8.0, 1.0] + [5.0] * 3 + [0.5] * 3)

    def scripted(fn, warmup=None):
        jobs.append((fn.__name__, "own" if warmup is None else "given"))
        return next(times)

    monkeypatch.setattr(bench, "_elapsed", scripted)
    row = bench.compare("xor", "float32", repeats=3, ref_samples=50)
    # every fit and bound run after its own warm-up (fit leaves the bound's buffer idle);
    # the reference after its short run
    pair = [("run_bound", "own"), ("run_fit", "own"), ("run_bound", "own")]
    # then the multiply-add peak of the arithmetic limit, each run after its own warm-up
    assert jobs == pair * 3 + [("<lambda>", "given")] * 3 + [("run_peak", "own")] * 3
    # paired ratios: (1 + 3) / 2 / 4 = 0.5, (2 + 2) / 2 / 2 = 1.0, (1 + 1) / 2 / 8 = 0.125
    assert row["vs_bound"] == pytest.approx(0.5)
    assert row["fastmlp"] == pytest.approx(20_000 / 4.0)  # median fit time 4 s
    assert row["bound"] == pytest.approx(20_000 / 1.5)  # median of 1, 3, 2, 2, 1, 1
    assert row["reference"] == pytest.approx(50 / 5.0)
    limit = 16 * bench.PEAK_ROW * bench.PEAK_REPEATS / 0.5 / (2 * row["n_params"])
    assert row["limit"] == pytest.approx(limit)
    assert row["vs_limit"] == pytest.approx(row["fastmlp"] / limit)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_multiply_add_peak_computes_its_16_dot_products(dtype):
    from fastmlp import _kernels as K

    A = np.random.default_rng(0).random((8, 40)).astype(dtype)
    expected = (A[:4].astype(np.float64) @ A[4:].T.astype(np.float64)).mean() / 40
    assert K.multiply_add_peak(A, 1) == pytest.approx(expected, rel=1e-5)
    assert A[0, 0] == pytest.approx(expected, rel=1e-5)  # written back: no pass can be hoisted
