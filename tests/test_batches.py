"""TensorBatches: slices instead of a per-sample DataLoader, the same rows in the same order."""

from __future__ import annotations

import pytest
import torch

from ffnn_lightning.data import TensorBatches


def rows_of(batches) -> list[int]:
    return [int(v) for x, _ in batches for v in x[:, 0]]


def make(rows: int, **kwargs) -> TensorBatches:
    x = torch.arange(rows, dtype=torch.float32).unsqueeze(1)
    return TensorBatches((x, x.clone()), **kwargs)


def test_batches_are_in_order_with_a_short_last_batch():
    batches = make(10, batch_size=4)
    assert len(batches) == 3
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert rows_of(batches) == list(range(10))


def test_batches_are_views_of_the_data_not_copies():
    batches = make(8, batch_size=4)
    first, _ = next(iter(batches))
    assert first.data_ptr() == batches.tensors[0].data_ptr()


def test_shuffle_is_seeded_per_epoch():
    batches = make(50, batch_size=7, shuffle=True, seed=3)
    batches.set_epoch(0)
    epoch0 = rows_of(batches)
    batches.set_epoch(1)
    epoch1 = rows_of(batches)
    batches.set_epoch(0)
    assert rows_of(batches) == epoch0
    assert epoch0 != epoch1
    assert sorted(epoch0) == sorted(epoch1) == list(range(50))


@pytest.mark.parametrize(("rows", "batch_size", "world"), [(10, 4, 2), (9, 4, 2), (17, 2, 3)])
def test_ranks_share_each_epoch_disjointly_and_take_equal_steps(rows, batch_size, world):
    shards = [make(rows, batch_size=batch_size, rank=r, world_size=world) for r in range(world)]
    assert len({len(shard) for shard in shards}) == 1
    seen = [row for shard in shards for row in rows_of(shard)]
    assert sorted(seen) == list(range(rows))
    assert all(len(x) > 0 for shard in shards for x, _ in shard)


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        make(4, batch_size=0)


def test_a_loaded_state_resumes_mid_epoch_with_the_next_batch():
    batches = make(40, batch_size=4, shuffle=True, seed=1)
    batches.set_epoch(2)
    iterator = iter(batches)
    seen = [next(iterator) for _ in range(3)]
    state = batches.state_dict()
    assert state == {"epoch": 2, "batches_done": 3}

    resumed = make(40, batch_size=4, shuffle=True, seed=1)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)
    rest = rows_of(resumed)
    batches.set_epoch(2)
    assert rows_of(seen) + rest == rows_of(batches)


def test_a_state_from_the_end_of_an_epoch_starts_the_next_one_whole():
    batches = make(12, batch_size=4)
    batches.set_epoch(0)
    list(batches)
    resumed = make(12, batch_size=4)
    resumed.load_state_dict(batches.state_dict())
    resumed.set_epoch(1)
    assert rows_of(resumed) == list(range(12))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (1, 16),
        (500, 16),
        (724, 16),
        (725, 32),
        (3456, 128),
        (5000, 128),
        (12000, 512),
        (10**7, 512),
    ],
)
def test_auto_batch_size_gives_about_32_steps_per_epoch_within_16_to_512(rows, expected):
    from ffnn_lightning.data.base import auto_batch_size

    assert auto_batch_size(rows) == expected


def test_auto_batch_size_is_chosen_from_the_training_rows():
    from ffnn_lightning.data import MoonsDataModule

    data = MoonsDataModule(n_samples=5000, batch_size="auto", val_fraction=0.2)
    data.prepare()
    assert data.batch_size == 128  # 4,000 training rows / 32 = 125
    assert len(data.train_dataloader()) == 32
    assert data.hparams.batch_size == "auto"  # what a checkpoint records


@pytest.mark.parametrize("bad", [0, -4, "big", 2.5, True])
def test_batch_size_other_than_a_count_auto_or_null_is_refused(bad):
    from ffnn_lightning.data import MoonsDataModule
    from ffnn_lightning.errors import InputError

    with pytest.raises(InputError, match="batch_size must be a positive integer, 'auto'"):
        MoonsDataModule(batch_size=bad)
