"""The River names ``fastmlp.river`` uses, imported in this one module: without River (>= 0.26)
the first import fails with the message that says how to install it.
"""

from __future__ import annotations

try:
    from river import base
except ImportError as exc:  # pragma: no cover - exercised only without River
    raise ImportError(
        "fastmlp.river needs River (>= 0.26), which is not installed: "
        'pip install "fastmlp[river]"  (or: pip install river)'
    ) from exc

__all__ = ["base"]
