"""Where a run's files go: light enough for commands that load neither PyTorch nor Lightning."""

from __future__ import annotations

from pathlib import Path


def run_folder_of(ckpt_path: str | Path) -> Path:
    """The folder of the run that wrote a checkpoint (``<run>/checkpoints/x.ckpt``)."""
    ckpt = Path(ckpt_path).resolve()
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def free_path(path: Path) -> Path:
    """``path``, or the first of ``stem-2``, ``stem-3``... that does not exist yet."""
    number = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate
