"""Faults: Ctrl-C during fit, threads. (Divergence: test_model.py; kill mid-save:
test_persistence.py.)"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from fastmlp import MLP

# The start of every Ctrl-C child: a SIGINT handler, 4000 random mnist-sized rows, a net.
CHILD_SETUP = """
import signal, sys, time
# A process started in the background by a non-interactive shell inherits SIGINT ignored, and
# Python then installs no KeyboardInterrupt handler: install it, whoever started us.
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
from fastmlp import MLP
rng = np.random.default_rng(0)
X = rng.random((4000, 784)).astype(np.float32)
y = rng.integers(0, 10, size=4000)
net = MLP((784, 256, 10), hidden="relu", seed=1, dtype=np.float32)
"""

INTERRUPTED_FIT = (
    CHILD_SETUP
    + """net.fit(X[:2], y[:2], lr=1e-3, n_jobs=N_JOBS)  # compile first
twin_start = net.params.copy()
n_before = net.n_updates_
print("ready", flush=True)
try:
    net.fit(X, y, epochs=1000, lr=1e-3, seed=5, n_jobs=N_JOBS)
    print("not interrupted", flush=True)
    sys.exit(3)
except KeyboardInterrupt:
    caught = time.time()
done = net.n_updates_ - n_before
# replay exactly `done` updates on a twin: the interrupted model must equal it bit for bit.
# fit sums layer 0 in blocks that start with each epoch (and whole blocks per kernel call):
# the twin fits the same epochs and the finished part of the last, in order, on as many
# threads.
twin = MLP((784, 256, 10), hidden="relu", seed=1, dtype=np.float32)
twin.params = twin_start
rng5 = np.random.default_rng(5)
for epoch in range(done // 4000 + 1):
    rows = rng5.permutation(4000)[: done - 4000 * epoch]
    if rows.size:
        twin.fit(X[rows], y[rows], lr=1e-3, shuffle=False, n_jobs=N_JOBS)
same = np.array_equal(net.params, twin.params) and twin.n_updates_ == done
print(f"caught {caught:.6f} done {done} epochs {len(net.history_['loss'])} same {same}", flush=True)
"""
)


def _interrupt(script):
    """Run ``script`` in a child, send SIGINT 1 s after it prints "ready"; returns the send
    time and the words of its last output (it must exit with 0)."""
    child = [sys.executable, "-c", script]
    with subprocess.Popen(child, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return sent, out.split()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ctrl_c_during_fit_leaves_a_consistent_model(n_jobs):
    # n_jobs=2: layer 0's rows split between two threads (the twin replays on two as well)
    sent, fields = _interrupt(INTERRUPTED_FIT.replace("N_JOBS", str(n_jobs)))
    caught, done, same = float(fields[1]), int(fields[3]), fields[7]
    assert done > 0
    assert same == "True", "the model must hold exactly the parameters of its finished updates"
    assert caught - sent < 0.5, f"Ctrl-C took {caught - sent:.3f} s to stop fit"


def _train(net, X, y):
    net.fit(X, y, epochs=3, lr=0.01, seed=9)


def test_two_models_in_two_threads_equal_sequential_training():
    rng = np.random.default_rng(0)
    X = rng.random((3000, 100))
    y = rng.integers(0, 10, size=3000)
    seq = [MLP((100, 64, 10), hidden="tanh", seed=s) for s in (1, 2)]
    par = [MLP((100, 64, 10), hidden="tanh", seed=s) for s in (1, 2)]
    for net in seq:
        _train(net, X, y)
    threads = [threading.Thread(target=_train, args=(net, X, y)) for net in par]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(seq, par, strict=True):
        np.testing.assert_array_equal(a.params, b.params)
        assert a.history_ == b.history_


def test_predict_from_many_threads_on_one_model():
    rng = np.random.default_rng(1)
    net = MLP((50, 40, 5), hidden="relu", seed=0)
    Xs = [rng.random((2000, 50)) for _ in range(6)]
    expected = [net.predict(X) for X in Xs]
    got = [None] * len(Xs)

    def work(i):
        for _ in range(5):
            got[i] = net.predict(Xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(Xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_kernels_release_the_gil(monkeypatch):
    """nogil=True: a long kernel call must not block another Python thread."""
    from fastmlp import tuning

    # the whole epoch in ONE kernel call: with the GIL held the ticker could not run at all
    monkeypatch.setattr(tuning, "UPDATES_PER_CHUNK", 1 << 40)
    rng = np.random.default_rng(2)
    X = rng.random((20000, 200)).astype(np.float32)
    y = rng.integers(0, 10, size=20000)
    net = MLP((200, 128, 10), hidden="relu", dtype=np.float32)
    net.fit(X[:2], y[:2])
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    t0 = time.perf_counter()
    net.fit(X, y, epochs=1, lr=1e-3)
    elapsed = time.perf_counter() - t0
    stop.set()
    t.join()
    during = [x for x in ticks if t0 <= x <= t0 + elapsed]
    # With the GIL held the ticker would not tick during the one call (a couple of ticks at its
    # edges at most); released, it ticks every ~1 ms it gets a core (fewer on a loaded machine).
    assert len(during) > 20, (len(during), elapsed)


if os.name != "posix":  # pragma: no cover
    del test_ctrl_c_during_fit_leaves_a_consistent_model


def test_parallel_predict_equals_one_thread():
    rng = np.random.default_rng(4)
    net = MLP((60, 30, 4), hidden="tanh", seed=0)
    X = rng.random((5000, 60))
    one = net.predict(X, n_jobs=1)
    for n_jobs in (2, 3, None):
        np.testing.assert_array_equal(net.predict(X, n_jobs=n_jobs), one)
    np.testing.assert_array_equal(net.predict(X[:1], n_jobs=4), one[:1])  # more jobs than rows


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("row", [0, 2600, 4999])
def test_parallel_predict_rejects_non_finite_X_like_one_thread(bad, row):
    """With threads, each block of X is scanned in its own thread: the error is the same."""
    net = MLP((60, 30, 4), hidden="tanh", seed=0)
    X = np.random.default_rng(4).random((5000, 60))
    X[row, 7] = bad
    message = rf"X contains 1 non-finite value\(s\) \(first at index \({row}, 7\)\)"
    for n_jobs in (1, 2, 3):
        with pytest.raises(ValueError, match=message):
            net.predict(X, n_jobs=n_jobs)


HOGWILD_INTERRUPTED = (
    CHILD_SETUP
    + """
net.fit(X[:4], y[:4], lr=1e-3, n_jobs=2, parallel="hogwild")  # compile; 4 updates, 1 epoch
print("ready", flush=True)
try:
    net.fit(X, y, epochs=1000, lr=1e-3, n_jobs=2, parallel="hogwild")
    sys.exit(3)
except KeyboardInterrupt:
    caught = time.time()
finite = bool(np.all(np.isfinite(net.params)))
print(f"caught {caught:.6f} updates {net.n_updates_} epochs {len(net.history_['loss'])} "
      f"finite {finite}", flush=True)
"""
)


def test_ctrl_c_during_hogwild_fit_stops_both_threads():
    sent, fields = _interrupt(HOGWILD_INTERRUPTED)
    caught, updates, epochs, finite = float(fields[1]), int(fields[3]), int(fields[5]), fields[7]
    assert finite == "True"
    # logged epochs count 4000 updates each; the interrupted one only its finished chunks
    partial = updates - 4 - 4000 * (epochs - 1)
    assert 0 <= partial <= 4000, (updates, epochs)  # 4000: stopped between return and log
    assert caught - sent < 0.5, f"Ctrl-C took {caught - sent:.3f} s to stop the threads"


if os.name != "posix":  # pragma: no cover
    del test_ctrl_c_during_hogwild_fit_stops_both_threads
