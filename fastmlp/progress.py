"""A per-epoch progress display for ``MLP.fit(progress=True)``.

It uses tqdm when it is installed, else prints one line per epoch on stderr.
"""

from __future__ import annotations

import sys

__all__ = ["Progress", "format_logs"]


def format_logs(logs: dict[str, float]) -> str:
    """``loss 0.1234  val_loss ...  12,345 samples/s`` from an epoch's logs."""
    parts = [f"{key} {logs[key]:.4g}" for key in ("loss", "val_loss", "val_accuracy", "lr")
             if key in logs]  # fmt: skip
    parts.append(f"{logs['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts)


class Progress:
    """Shows epoch ``i`` of ``n_epochs`` with the epoch's logs after each epoch."""

    def __init__(self, n_epochs: int, n_samples: int, stream=None) -> None:
        self.n_epochs, self.stream = n_epochs, stream or sys.stderr
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=n_epochs, unit="epoch", file=self.stream)

    def update(self, epoch: int, logs: dict[str, float]) -> None:
        """Show that epoch ``epoch`` (0-based) has finished, with its ``logs``."""
        if self.bar is not None:
            self.bar.set_postfix_str(format_logs(logs), refresh=False)
            self.bar.update(1)
        else:
            width = len(str(self.n_epochs))
            print(f"epoch {epoch + 1:{width}d}/{self.n_epochs}  {format_logs(logs)}",
                  file=self.stream, flush=True)  # fmt: skip

    def close(self) -> None:
        """Close the tqdm bar, if there is one."""
        if self.bar is not None:
            self.bar.close()
