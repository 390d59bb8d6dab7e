"""Reading back what a run logged to TensorBoard."""

from __future__ import annotations

from pathlib import Path


def read_scalars(log_dir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a TensorBoard run folder, as (step, value) pairs in logged order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }
