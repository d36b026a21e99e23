"""First-call cost, as a user sees it: a fresh interpreter imports fastmlp, builds the xor net
and fits one epoch.

``timeraw_*`` benchmarks return code that asv runs and times in a new Python process, as a
``(stmt, setup)`` pair: only ``stmt`` is timed. The untimed ``setup`` points ``NUMBA_CACHE_DIR``
(where fastmlp's ``cache=True`` kernels go, instead of the package's ``__pycache__``) at the cache
directory *before* anything imports Numba, which reads it once at import.

- cold: a new, empty directory per sample (deleted when that interpreter exits): import + compile
  of every kernel the epoch needs + the epoch;
- warm: a fixed directory under ``tempfile.gettempdir()``, filled by the benchmark's ``setup``
  (the same code in a subprocess): import + loading the cached kernels + the epoch.
"""

import os
import subprocess
import sys
import tempfile

from .common import NETWORKS

_XOR = NETWORKS["xor"]

# Timed: public API only, the xor net of fastmlp.bench on the 4 XOR rows.
FIRST_EPOCH = f"""
from fastmlp import MLP, datasets
X, Y = datasets.xor()
net = MLP({_XOR.sizes!r}, hidden={_XOR.hidden!r}, output={_XOR.output!r}, loss={_XOR.loss!r})
net.fit(X, Y, epochs=1, lr={_XOR.lr!r})
"""

WARM_CACHE_DIR = os.path.join(tempfile.gettempdir(), "fastmlp-asv-numba-cache-warm")

_COLD_SETUP = """
import atexit, os, shutil, tempfile
cache_dir = tempfile.mkdtemp(prefix="fastmlp-asv-numba-cache-cold-")
atexit.register(shutil.rmtree, cache_dir, True)
os.environ["NUMBA_CACHE_DIR"] = cache_dir
os.environ["FASTMLP_NUMBA_CACHE"] = "1"
"""

_WARM_SETUP = f"""
import os
os.environ["NUMBA_CACHE_DIR"] = {WARM_CACHE_DIR!r}
os.environ["FASTMLP_NUMBA_CACHE"] = "1"
"""


def _fill_warm_cache():
    """Run the timed code once with the warm cache directory, so it holds every kernel the
    epoch needs for this interpreter and this fastmlp (a stale entry is recompiled here)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": WARM_CACHE_DIR, "FASTMLP_NUMBA_CACHE": "1"}
    subprocess.run([sys.executable, "-c", FIRST_EPOCH], env=env, check=True)


class FirstEpoch:
    """Import fastmlp, build xor and fit one epoch in a fresh interpreter (seconds)."""

    timeout = 300

    def timeraw_first_epoch_cold(self):
        return FIRST_EPOCH, _COLD_SETUP

    def timeraw_first_epoch_warm(self):
        return FIRST_EPOCH, _WARM_SETUP

    # Only the warm case needs the filled cache (asv runs it once, before the samples).
    timeraw_first_epoch_warm.setup = _fill_warm_cache
