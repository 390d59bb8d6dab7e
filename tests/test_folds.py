"""k-fold cross-validation splits: every row validates once, test rows never move, the
preprocessing is fitted on each fold's training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ffnn_lightning.data import FileDataModule
from ffnn_lightning.errors import InputError
from tests.test_data import ArrayData


def fold_rows(data_for_fold, folds: int) -> list:
    return [data_for_fold(fold).prepare().rows for fold in range(folds)]


def test_each_row_outside_test_validates_in_exactly_one_fold():
    targets = np.arange(100) % 3
    rows = fold_rows(
        lambda fold: ArrayData(np.zeros((100, 2)), targets, test_fraction=0.2, folds=4, fold=fold),
        4,
    )
    tests = {tuple(np.sort(r["test"])) for r in rows}
    assert len(tests) == 1  # the same test rows in every fold
    validated = np.concatenate([r["val"] for r in rows])
    assert sorted(validated) == sorted(set(range(100)) - set(next(iter(tests))))
    for r in rows:
        assert not set(r["train"]) & set(r["val"])
        assert np.bincount(targets[r["val"]]).min() >= 6  # stratified: each class in each fold


def test_the_test_rows_are_those_of_a_plain_fit_with_the_same_seed():
    targets = np.arange(100) % 2
    plain = ArrayData(np.zeros((100, 2)), targets, test_fraction=0.2, seed=3).prepare()
    folded = ArrayData(np.zeros((100, 2)), targets, test_fraction=0.2, seed=3, folds=5).prepare()
    assert sorted(plain.rows["test"]) == sorted(folded.rows["test"])


def test_each_folds_scaling_is_fitted_on_its_own_training_rows():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 1)) + np.repeat([0.0, 50.0, 100.0], 40)[:, None]
    for fold in range(3):
        data = ArrayData(features, np.arange(120) % 2, split="random", folds=3, fold=fold)
        train_rows = data.prepare().rows["train"]
        mean = features[train_rows].mean()
        std = features[train_rows].std()
        torch.testing.assert_close(
            data.tensors["train"][0].mean(), torch.tensor(0.0), atol=1e-4, rtol=0
        )
        val_rows = data.prepare().rows["val"]
        expected = (features[val_rows] - mean) / std
        torch.testing.assert_close(
            data.tensors["val"][0], torch.tensor(expected, dtype=torch.float32)
        )


def test_a_groups_rows_stay_in_one_fold(tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "x": rng.normal(size=90),
            "patient": np.repeat(np.arange(30), 3),
            "target": np.tile([0, 1, 0], 30),
        }
    )
    table.to_csv(tmp_path / "visits.csv", index=False)
    for fold in range(3):
        data = FileDataModule(
            path=str(tmp_path / "visits.csv"), group_column="patient", folds=3, fold=fold
        )
        rows = data.prepare().rows
        assert data.num_features == 1  # the group column is not a feature
        train_patients = set(table["patient"].iloc[rows["train"]])
        assert not train_patients & set(table["patient"].iloc[rows["val"]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, "folds must be at least 2"),
        ({"folds": 3, "fold": 3}, "fold must be one of 0..2"),
    ],
)
def test_bad_fold_arguments_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        ArrayData(np.zeros((10, 1)), np.arange(10) % 2, **kwargs)


def test_more_folds_than_the_smallest_class_has_rows_is_refused():
    targets = np.array([0] * 40 + [1] * 4)
    with pytest.raises(InputError, match="folds=5 is more than the smallest class has rows"):
        ArrayData(np.zeros((44, 1)), targets, folds=5).prepare()
