"""Mini-batches as contiguous slices of in-memory tensors: no per-sample indexing or collation."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ffnn_lightning.errors import InputError


class TensorBatches:
    """An iterable of batches sliced from tensors that share their first dimension.

    It stands in for ``DataLoader(TensorDataset(...))`` at a fraction of the cost: an epoch is
    at most one gather (when shuffling) and then views. Shuffling is seeded by ``seed`` and the
    epoch (Lightning calls ``set_epoch`` through the ``sampler`` attribute), so a resumed run
    sees the same order; ``state_dict`` records how far the epoch got, so that a run resumed
    from a mid-epoch checkpoint carries on with the next batch (Lightning saves and restores
    it with the checkpoint). With ``world_size > 1`` every rank takes a disjoint share of each
    global step of ``batch_size * world_size`` rows; the whole epoch is covered, no row twice.
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size}.")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        # Lightning calls set_epoch on a loader's ``sampler``; no batch_sampler tells it the
        # batching is ours (it then neither wraps nor re-creates this object).
        self.sampler = self
        self.batch_sampler = None
        self._bounds = _rank_bounds(len(tensors[0]), batch_size, rank, world_size)
        self._yielded = 0  # batches of the current epoch handed out so far
        self._resume_at = (-1, 0)  # (epoch, batches already done) from a loaded state

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches_done": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (state["epoch"], state["batches_done"])

    def __len__(self) -> int:
        return len(self._bounds)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        tensors = self.tensors
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(tensors[0]), generator=generator).to(tensors[0].device)
            tensors = tuple(t.index_select(0, order) for t in tensors)
        resume_epoch, done = self._resume_at
        skip = done if resume_epoch == self.epoch else 0
        self._resume_at = (-1, 0)
        self._yielded = skip
        for start, stop in self._bounds[skip:]:
            self._yielded += 1
            yield tuple(t[start:stop] for t in tensors)


def _rank_bounds(rows: int, batch_size: int, rank: int, world_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each of this rank's batches, every rank getting the same count of steps.

    Rows are cut into global steps of ``batch_size * world_size``; each step is shared out as
    evenly as possible. A tail too short to give every rank a row is folded into the step
    before it, so no rank ever gets an empty batch.
    """
    step = batch_size * world_size
    starts = list(range(0, rows, step))
    if len(starts) > 1 and rows - starts[-1] < world_size:
        starts.pop()
    ends = [*starts[1:], rows]
    bounds = []
    for start, end in zip(starts, ends, strict=True):
        size, extra = divmod(end - start, world_size)
        lo = start + rank * size + min(rank, extra)
        bounds.append((lo, lo + size + (rank < extra)))
    return bounds
