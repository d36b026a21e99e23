"""``python -m fastmlp``: the command line (see ``fastmlp.cli``).

With no arguments it runs the main job: train on the shipped 8x8 digits and report the test
accuracy (exit 1 below 95%).
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
