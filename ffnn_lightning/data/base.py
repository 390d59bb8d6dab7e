"""The base every dataset builds on: split, preprocessing fitted on train only, fast batches."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Literal, NamedTuple

import lightning as L
import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.base import TransformerMixin

from ffnn_lightning.data.batches import TensorBatches
from ffnn_lightning.errors import InputError

TaskName = Literal["binary", "multiclass", "regression"]
SplitMethod = Literal["ordered", "random", "stratified"]


class Splits(NamedTuple):
    """The rows of each split: a slice (ordered split) or an index array."""

    train: slice | np.ndarray
    val: slice | np.ndarray
    test: slice | np.ndarray


class Prepared(NamedTuple):
    task: TaskName
    tensors: dict[str, tuple[Tensor, Tensor]]
    classes: list[str] | None  # class names, in the order of the network's class indices


class TabularDataModule(L.LightningDataModule):
    """In-memory tabular data: a subclass only implements :meth:`load`.

    Args:
        batch_size: rows per training step; ``None`` for full-batch gradient descent.
        val_fraction: share of the rows held out for validation.
        test_fraction: share held out for ``test``; with 0, ``test`` and ``predict`` use the
            validation rows (the chapter has a single held-out split).
        split: ``ordered`` takes the last rows as held out (the chapter's way), ``random``
            and ``stratified`` (class ratios kept) draw them with ``seed``.
        shuffle: reshuffle the training rows every epoch (seeded by ``seed`` and the epoch).
        standardize: scale features to zero mean and unit variance, fitted on train only.
        seed: seeds the split and the shuffling.
        task: ``binary``, ``multiclass`` or ``regression``; ``None`` infers it from the
            targets: integers (or at most 10 whole float values) are classes, two of them
            binary; other floats are regression. The model's task and output width follow.
        classes: the class labels, in the order of the network's outputs; ``None`` takes the
            sorted distinct labels of the data. A label outside them is an error.
    """

    def __init__(
        self,
        batch_size: int | None = 16,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        split: SplitMethod = "stratified",
        shuffle: bool = True,
        standardize: bool = True,
        seed: int = 0,
        task: TaskName | None = None,
        classes: list[str] | None = None,
    ) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise InputError(
                f"batch_size must be a positive integer (or null for the whole training "
                f"split), got {batch_size}."
            )
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {value}.")
        if val_fraction + test_fraction >= 1.0:
            raise InputError(
                f"val_fraction + test_fraction must leave rows to train on, got "
                f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}."
            )
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split = split
        self.shuffle = shuffle
        self.standardize = standardize
        self.seed = seed
        self.task = task
        self.classes = classes

    def load(self) -> tuple[np.ndarray | pd.DataFrame, np.ndarray]:
        """Return the raw features (an array or a DataFrame, a row per sample) and targets."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def preprocessor(self) -> TransformerMixin | None:
        """The feature preprocessing, unfitted: the base fits it on the training rows only and
        applies it to every split. By default a standardization when ``standardize``; a
        subclass with mixed columns returns its own (e.g. a ColumnTransformer)."""
        if not self.standardize:
            return None
        from sklearn.preprocessing import StandardScaler

        return StandardScaler()

    # -- what the CLI links into the model ------------------------------------------------
    @property
    def num_features(self) -> int:
        return self.tensors["train"][0].shape[1]

    @property
    def num_outputs(self) -> int:
        """Width of the network's output: 1 for binary, one per class, one per target."""
        if self.task_name == "multiclass":
            return len(self._prepared.classes)
        return self.tensors["train"][1].shape[1]

    @property
    def class_names(self) -> list[str] | None:
        """The original labels behind class indices 0, 1, ... (None for regression)."""
        return self._prepared.classes

    @property
    def task_name(self) -> TaskName:
        return self._prepared.task

    @property
    def tensors(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Float32 features and task-shaped targets of each split (train, val, test)."""
        return self._prepared.tensors

    # -- loading, splitting, preprocessing (once) ----------------------------------------
    @cached_property
    def _prepared(self) -> Prepared:
        features, targets = self.load()
        targets = np.asarray(targets)
        is_frame = hasattr(features, "iloc")
        if not is_frame:  # arrays are checked before scaling, DataFrames after encoding
            features = np.asarray(features, dtype=np.float32)
            _check_finite(features)
        task = self.task or _infer_task(targets, self.classes)
        classes = None
        if task != "regression":  # any labels (strings, 1/2/3, -1/+1) -> indices 0..C-1
            classes, targets = _encode_labels(targets, self.classes)
        splits = _split(
            len(targets),
            targets,
            self.val_fraction,
            self.test_fraction,
            self.split,
            self.seed,
            task,
        )
        self.fitted_preprocessor = self.preprocessor()
        if self.fitted_preprocessor is not None:
            train = features.iloc[splits.train] if is_frame else features[splits.train]
            features = self.fitted_preprocessor.fit(train).transform(features)
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise InputError(f"load() must return 2-D features, got shape {features.shape}.")
        if is_frame:
            _check_finite(features)
        x = torch.from_numpy(np.ascontiguousarray(features))
        y = _target_tensor(targets, task)
        # an ordered split is three slices: views, no copy of the data
        tensors = {name: (x[idx], y[idx]) for name, idx in splits._asdict().items()}
        return Prepared(task, tensors, classes)

    # -- dataloaders ------------------------------------------------------------------------
    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", self.batch_size, self.shuffle)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val")

    def test_dataloader(self) -> TensorBatches:
        return self._batches(self._held_out)

    def predict_dataloader(self) -> TensorBatches:
        """Every held-out row on every process, so that one file holds them all, in order."""
        return self._batches(self._held_out, shard=False)

    @property
    def _held_out(self) -> str:
        return "test" if self.test_fraction else "val"

    def _batches(
        self, split: str, batch_size: int | None = None, shuffle: bool = False, shard: bool = True
    ) -> TensorBatches:
        """Batches of one split, moved once to the device the trainer runs on; with several
        processes each takes its share (``shard``)."""
        x, y = self.tensors[split]
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer and shard else (0, 1)
        if trainer is not None:
            device = trainer.strategy.root_device
            x, y = x.to(device), y.to(device)
        size = batch_size or _eval_batch_size(len(x), world)
        return TensorBatches((x, y), size, shuffle, self.seed, rank, world)


def _eval_batch_size(rows: int, world_size: int) -> int:
    """Evaluate in few large batches: the batch size does not change the metrics."""
    return max(1, min(4096, -(-rows // world_size)))


def _check_finite(features: np.ndarray) -> None:
    """Refuse NaN or infinite feature values, naming the columns and how many there are."""
    bad = (~np.isfinite(features)).sum(axis=0)
    if bad.any():
        where = ", ".join(f"column {i}: {n}" for i, n in enumerate(bad) if n)
        raise InputError(
            f"The features hold NaN or infinite values ({where}). Drop or fill those rows "
            "before training."
        )


MAX_FLOAT_CLASSES = 10


def _encode_labels(targets: np.ndarray, declared: list[str] | None) -> tuple[list[str], np.ndarray]:
    """Class names and each row's class index, in the declared order if classes are given."""
    labels, indices = np.unique(targets, return_inverse=True)
    names = [str(label) for label in labels]
    if declared is None:
        return names, indices
    unknown = [name for name in names if name not in declared]
    if unknown:
        rows = int(np.isin(np.asarray(names)[indices], unknown).sum())
        raise InputError(
            f"{rows} rows have labels outside the declared classes {list(declared)}: {unknown}. "
            "Fix the data or add them to classes."
        )
    position = {name: i for i, name in enumerate(declared)}
    return list(declared), np.array([position[name] for name in names])[indices]


def _infer_task(targets: np.ndarray, classes: list[str] | None = None) -> TaskName:
    """Integer targets are classes; so are float targets with at most 10 whole values (0.0 /
    1.0 labels); any other float targets, or several target columns, are regression."""
    if classes is not None:
        return "binary" if len(classes) <= 2 else "multiclass"
    if targets.ndim == 2 and targets.shape[1] > 1:
        return "regression"
    classes = np.unique(targets)
    if targets.dtype.kind == "f" and (
        len(classes) > MAX_FLOAT_CLASSES or not np.all(np.mod(classes, 1) == 0)
    ):
        return "regression"
    return "binary" if len(classes) <= 2 else "multiclass"


def _target_tensor(targets: np.ndarray, task: TaskName) -> Tensor:
    if task == "multiclass":
        return torch.from_numpy(targets.reshape(-1).astype(np.int64))
    return torch.from_numpy(targets.astype(np.float32).reshape(len(targets), -1))


def _split(
    rows: int,
    targets: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    method: SplitMethod,
    seed: int,
    task: TaskName,
) -> Splits:
    n_val, n_test = round(rows * val_fraction), round(rows * test_fraction)
    n_train = rows - n_val - n_test
    if n_train < 1 or (val_fraction and n_val < 1) or (test_fraction and n_test < 1):
        raise InputError(
            f"{rows} rows are too few for val_fraction={val_fraction} and "
            f"test_fraction={test_fraction}: every split needs at least one row."
        )
    if method == "ordered":
        return Splits(
            slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, rows)
        )
    from sklearn.model_selection import train_test_split

    stratify = targets if method == "stratified" and task != "regression" else None
    order = np.arange(rows)
    rest, test = (
        train_test_split(order, test_size=n_test, random_state=seed, stratify=stratify)
        if n_test
        else (order, order[:0])
    )
    rest_stratify = None if stratify is None else stratify[rest]
    train, val = (
        train_test_split(rest, test_size=n_val, random_state=seed, stratify=rest_stratify)
        if n_val
        else (rest, rest[:0])
    )
    return Splits(train, val, test)
