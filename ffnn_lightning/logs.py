"""TensorBoard: the run's logger, and reading back what a run logged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lightning.pytorch import loggers


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, flushing its event file at most every ``flush_secs``.

    Lightning saves the logger after every logging call, and each save waits for TensorBoard's
    writer thread to flush: about a millisecond per epoch, a sixtieth of an epoch of the
    chapter's run at batch 256. Here a save flushes only once ``flush_secs`` have passed; the
    writer also flushes on its own every ``flush_secs``, and when the run ends.
    """

    def __init__(self, *args: Any, flush_secs: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, flush_secs=flush_secs, **kwargs)
        self.flush_secs = flush_secs
        self._saved_at = -float("inf")

    def save(self) -> None:
        if time.monotonic() - self._saved_at >= self.flush_secs:
            super().save()
            self._saved_at = time.monotonic()

    def finalize(self, status: str) -> None:
        self._saved_at = -float("inf")  # the closing save always writes
        super().finalize(status)


def read_scalars(log_dir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a TensorBoard run folder, as (step, value) pairs in logged order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }
