"""First-call cost in a fresh interpreter: import fastmlp, build xor, fit one epoch.

``timeraw_*`` returns code that asv runs and times in a new process. Cold: an empty Numba cache
(``NUMBA_CACHE_DIR`` set to a new temporary directory). Warm: a cache directory filled once in
``setup`` by the same code.
"""

import os
import subprocess
import sys
import tempfile

FIRST_EPOCH = """
import numpy as np
from fastmlp import MLP, datasets
X, Y = datasets.xor()
MLP((2, 3, 2, 1), hidden="sigmoid", output="sigmoid", loss="mse").fit(X, Y, epochs=1, lr=0.4)
"""

WARM_CACHE = os.path.join(tempfile.gettempdir(), "fastmlp-asv-warm-numba-cache")


def _with_cache_dir(path: str) -> str:
    return f"import os\nos.environ['NUMBA_CACHE_DIR'] = {path!r}\n" + FIRST_EPOCH


class FirstEpoch:
    timeout = 300
    repeat = (1, 3, 30.0)
    number = 1

    def setup(self):
        env = {**os.environ, "NUMBA_CACHE_DIR": WARM_CACHE}
        subprocess.run([sys.executable, "-c", FIRST_EPOCH], env=env, check=True)

    def timeraw_first_epoch_cold(self):
        return _with_cache_dir(tempfile.mkdtemp(prefix="fastmlp-asv-cold-"))

    def timeraw_first_epoch_warm(self):
        return _with_cache_dir(WARM_CACHE)
