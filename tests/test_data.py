"""The data modules: the chapter's split, preprocessing fitted on train only, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.reference import chapter_data
from ffnn_lightning.data import BlobsDataModule, BundledDataModule, TabularDataModule


class ArrayData(TabularDataModule):
    """A data module over given arrays, as a user's own subclass would be."""

    def __init__(self, features, targets, **kwargs):
        super().__init__(**kwargs)
        self.features, self.targets = features, targets

    def load(self):
        return self.features, self.targets


def test_blobs_defaults_are_the_chapters_split():
    data = BlobsDataModule()
    x_train, y_train, x_held, y_held = chapter_data()
    torch.testing.assert_close(data.tensors["val"][1], y_held, rtol=0, atol=0)
    torch.testing.assert_close(data.tensors["train"][0], x_train, rtol=0, atol=0)
    torch.testing.assert_close(data.tensors["train"][1], y_train, rtol=0, atol=0)
    torch.testing.assert_close(data.tensors["val"][0], x_held, rtol=0, atol=0)
    assert data.tensors["train"][0].dtype == torch.float32
    assert (data.num_features, data.num_outputs, data.task_name) == (64, 1, "binary")


def test_chapter_config_tests_on_the_held_out_rows():
    data = BlobsDataModule()
    held_out = data.tensors["val"][0]
    x, _ = next(iter(data.test_dataloader()))
    assert torch.equal(x, held_out)


def test_many_centres_make_a_multiclass_task():
    data = BlobsDataModule(n_samples=300, centers=4)
    assert (data.task_name, data.num_outputs) == ("multiclass", 4)
    assert data.tensors["train"][1].dtype == torch.int64


def test_standardization_is_fitted_on_the_training_rows_only():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    features[150:] += 100.0  # held-out rows far away: leaking them would move the train mean
    data = ArrayData(features, rng.integers(0, 2, 200), split="ordered", val_fraction=0.25)
    train_x, val_x = data.tensors["train"][0], data.tensors["val"][0]
    torch.testing.assert_close(train_x.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert val_x.mean() > 50


def test_stratified_split_keeps_the_class_ratio():
    targets = np.array([0] * 90 + [1] * 10)
    data = ArrayData(np.zeros((100, 2)), targets, val_fraction=0.2, test_fraction=0.2)
    for split in ("train", "val", "test"):
        labels = data.tensors[split][1]
        assert labels.mean().item() == pytest.approx(0.1)


def test_full_batch_is_one_step_per_epoch():
    data = BlobsDataModule(n_samples=100, batch_size=None)
    assert len(data.train_dataloader()) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"val_fraction": 1.5}, r"val_fraction must be in \[0, 1\), got 1.5"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "must leave rows to train on"),
    ],
)
def test_bad_arguments_are_refused_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BlobsDataModule(**kwargs)


def test_too_few_rows_for_the_split_is_refused():
    data = BlobsDataModule(n_samples=2, val_fraction=0.1, test_fraction=0.1)
    with pytest.raises(ValueError, match="2 rows are too few"):
        data.prepare()


def test_the_task_can_be_set_instead_of_inferred():
    data = BlobsDataModule(n_samples=200, centers=3, task="regression")
    assert (data.task_name, data.num_outputs) == ("regression", 1)
    assert data.tensors["train"][1].dtype == torch.float32


@pytest.mark.parametrize(
    ("name", "task", "features", "outputs"),
    [
        ("iris", "multiclass", 4, 3),
        ("wine", "multiclass", 13, 3),
        ("breast_cancer", "binary", 30, 1),
        ("digits", "multiclass", 64, 10),
        ("diabetes", "regression", 10, 1),
    ],
)
def test_bundled_data_sets_load_with_their_task_and_shape(name, task, features, outputs):
    data = BundledDataModule(name=name, test_fraction=0.2)
    assert (data.task_name, data.num_features, data.num_outputs) == (task, features, outputs)


def test_an_unknown_bundled_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown bundled data set 'mnist'. Use one of \['iris'"):
        BundledDataModule(name="mnist").prepare()


@pytest.mark.parametrize(
    ("targets", "task"),
    [
        (np.array([0, 1, 1, 0] * 25), "binary"),
        (np.array([0.0, 1.0] * 50), "binary"),
        (np.arange(100) % 4, "multiclass"),
        (np.arange(100, dtype=float), "regression"),  # many whole floats: a measurement
        (np.linspace(0, 1, 100), "regression"),
    ],
)
def test_the_task_is_inferred_from_the_targets(targets, task):
    data = ArrayData(np.zeros((100, 2)), targets, split="ordered")
    assert data.task_name == task


def test_nan_or_infinite_features_are_refused_naming_columns_and_counts():
    features = np.zeros((50, 3))
    features[[1, 2], 0] = np.nan
    features[7, 2] = np.inf
    data = ArrayData(features, np.arange(50) % 2, split="ordered")
    with pytest.raises(ValueError, match=r"NaN or infinite values \(column 0: 2, column 2: 1\)"):
        data.prepare()


def test_string_labels_become_class_indices_with_their_names_kept():
    labels = np.array(["setosa", "virginica", "versicolor"] * 20)
    data = ArrayData(np.random.default_rng(0).normal(size=(60, 2)), labels)
    assert data.class_names == ["setosa", "versicolor", "virginica"]
    assert (data.task_name, data.num_outputs) == ("multiclass", 3)
    train_y = data.tensors["train"][1]
    assert train_y.dtype == torch.int64 and set(train_y.tolist()) == {0, 1, 2}


def test_binary_labels_other_than_0_and_1_are_encoded():
    data = ArrayData(np.zeros((40, 2)), np.array([-1, 1] * 20), split="ordered")
    assert data.class_names == ["-1", "1"]
    assert set(data.tensors["train"][1].flatten().tolist()) == {0.0, 1.0}


def test_declared_classes_fix_the_output_order_and_width():
    data = ArrayData(np.zeros((40, 2)), np.array(["b", "a"] * 20), classes=["b", "a", "c"])
    assert (data.task_name, data.num_outputs, data.class_names) == (
        "multiclass",
        3,
        ["b", "a", "c"],
    )
    x_rows = data.tensors["train"][1]
    assert set(x_rows.tolist()) == {0, 1}


def test_labels_outside_the_declared_classes_are_refused_with_a_count():
    data = ArrayData(np.zeros((40, 2)), np.array(["a", "b", "a", "z"] * 10), classes=["a", "b"])
    with pytest.raises(
        ValueError, match=r"10 rows have labels outside the declared classes \['a', 'b'\]: \['z'\]"
    ):
        data.prepare()


def test_text_columns_of_a_loaded_table_are_one_hot_encoded():
    import pandas as pd

    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], 120)
    table = pd.DataFrame({"size": rng.normal(size=120), "colour": colour})
    data = ArrayData(table, (colour == "red").astype(int), split="ordered")
    x = torch.cat([data.tensors["train"][0], data.tensors["val"][0]])
    assert data.num_features == 4  # size, and one input per colour
    torch.testing.assert_close(x[:, 1:].sum(1), torch.ones(120))
    is_red = x[:, 1 + ["blue", "green", "red"].index("red")]
    assert torch.equal(is_red.bool(), torch.from_numpy(colour == "red"))


def test_class_counts_are_those_of_the_training_rows():
    targets = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 10)
    data = ArrayData(np.zeros((100, 1)), targets, val_fraction=0.2)
    assert data.data_info["class_counts"] == [48, 24, 8]


@pytest.mark.parametrize("scaler", ["robust", "quantile"])
def test_robust_and_quantile_scaling_centre_skewed_training_columns(scaler):
    features = np.random.default_rng(0).exponential(size=(400, 2)) ** 3  # heavy right tail
    data = ArrayData(features, np.arange(400) % 2, scaler=scaler)
    train = data.tensors["train"][0]
    assert (
        train.median(0).values.abs().max() < 0.05
    )  # the standard scaler leaves it near -0.2 to -0.3
    if scaler == "quantile":  # mapped to a normal distribution: the tail is gone
        assert train.max() < 6


def test_robust_clip_scaling_is_fitted_on_training_rows_and_bounds_outliers():
    features = np.random.default_rng(0).standard_cauchy(size=(400, 2))  # wild outliers
    features[300:] = 1000.0  # the held-out rows (the last, split: ordered) far away
    data = ArrayData(
        features, np.arange(400) % 2, scaler="robust_clip", split="ordered", val_fraction=0.25
    )
    robust, _ = data.prepare().fitted.preprocessor
    np.testing.assert_allclose(robust.center_, np.median(features[:300], axis=0))
    train, held_out = data.tensors["train"][0], data.tensors["val"][0]
    assert train.abs().max() < 3  # |x / sqrt(1 + (x/3)^2)| < 3 for every x
    assert train.median(0).values.abs().max() < 0.05
    assert held_out.min() > 2.9  # far beyond the scale: pulled in just below the limit
