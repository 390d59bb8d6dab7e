"""The base every dataset builds on: split, preprocessing fitted on train only, fast batches."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import lightning as L
import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.base import TransformerMixin

from ffnn_lightning.checkpoints import read_checkpoint
from ffnn_lightning.data.batches import TensorBatches
from ffnn_lightning.errors import InputError

TaskName = Literal["binary", "multiclass", "regression"]
SplitMethod = Literal["ordered", "random", "stratified"]


class Splits(NamedTuple):
    """The rows of each split: a slice (ordered split) or an index array."""

    train: slice | np.ndarray
    val: slice | np.ndarray
    test: slice | np.ndarray


class Fitted(NamedTuple):
    """What the data learnt from its training rows, which new rows must be given in the same
    way: a checkpoint carries it (see :meth:`TabularDataModule.state_dict`)."""

    task: TaskName
    classes: list[str] | None  # class names, in the order of the network's class indices
    columns: list[str] | None  # the raw feature columns, in order (tables only)
    num_outputs: int
    target_mean: list[float] | None  # regression targets are standardized with these
    target_std: list[float] | None
    preprocessor: TransformerMixin | None  # fitted on the training rows


class Prepared(NamedTuple):
    fitted: Fitted
    tensors: dict[str, tuple[Tensor, ...]]  # per split: features, and targets if known
    rows: dict[str, slice | np.ndarray]  # per split: its rows' positions in load()'s table
    loaded: int  # how many rows load() gave


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
        standardize_target: train a regression on standardized targets (fitted on train);
            metrics and predictions stay in the target's own units.
        checkpoint: a checkpoint whose fit (preprocessing, columns, classes, task, target
            scaling) to apply instead of fitting one on this data: new rows get exactly the
            training's treatment. ``validate``, ``test`` and ``predict --ckpt_path`` set it.
            A table without the target column then only serves ``predict``, every row in order.
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
        standardize_target: bool = True,
        checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        # recorded in checkpoints, so that predict can rebuild this data module from one
        self.save_hyperparameters(logger=False)
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
        self.standardize_target = standardize_target
        self.checkpoint = checkpoint

    def load(self) -> tuple[np.ndarray | pd.DataFrame, np.ndarray]:
        """Return the raw features (an array or a DataFrame, a row per sample) and targets."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def assigned_splits(self) -> np.ndarray | None:
        """Each loaded row's split (``train``, ``val`` or ``test``) where the data names it,
        e.g. from a column; ``None`` (the default) draws the split with the fractions."""
        return None

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
        return next(iter(self.tensors.values()))[0].shape[1]

    @property
    def num_outputs(self) -> int:
        """Width of the network's output: 1 for binary, one per class, one per target."""
        return self._prepared.fitted.num_outputs

    @property
    def class_names(self) -> list[str] | None:
        """The original labels behind class indices 0, 1, ... (None for regression)."""
        return self._prepared.fitted.classes

    @property
    def task_name(self) -> TaskName:
        return self._prepared.fitted.task

    @property
    def target_mean(self) -> list[float] | None:
        """Mean of the training targets (regression with ``standardize_target``)."""
        return self._prepared.fitted.target_mean

    @property
    def target_std(self) -> list[float] | None:
        """Standard deviation of the training targets (regression with ``standardize_target``)."""
        return self._prepared.fitted.target_std

    @property
    def tensors(self) -> dict[str, tuple[Tensor, ...]]:
        """Float32 features and task-shaped targets of each split (train, val, test); a table
        without targets, given the fit of a checkpoint, has just the features of ``predict``."""
        return self._prepared.tensors

    def row_ids(self, split: str) -> dict[str, list]:
        """Columns that identify a split's rows in ``predictions.csv``: ``row``, each row's
        position in the loaded table. A subclass may add its own (an ID column)."""
        prepared = self._prepared
        return {"row": np.arange(prepared.loaded)[prepared.rows[split]].tolist()}

    # -- the fitted preprocessing travels with the checkpoint ------------------------------
    def state_dict(self) -> dict:
        """The fit, as plain values (Lightning stores it in every checkpoint): the
        preprocessor in scikit-learn's safe ``skops`` format, not as a pickle."""
        fitted = self._prepared.fitted
        return {**fitted._asdict(), "preprocessor": _dumps(fitted.preprocessor)}

    # -- loading, splitting, preprocessing (once) ----------------------------------------
    @cached_property
    def _prepared(self) -> Prepared:
        features, targets = self.load()
        restored = _read_fit(self.checkpoint, type(self)) if self.checkpoint else None
        is_frame = hasattr(features, "iloc")
        if is_frame and restored is not None:
            features = _match_columns(features, restored.columns)
        if not is_frame:  # arrays are checked before scaling, DataFrames after encoding
            features = np.asarray(features, dtype=np.float32)
            _check_finite(features)
        if targets is None:
            if restored is None:
                raise InputError(
                    f"{type(self).__name__}.load() gave no targets: training needs them (only "
                    "predict, given a checkpoint's fit, can do without)."
                )
            x = _transform(features, restored.preprocessor, is_frame)
            return Prepared(restored, {"predict": (x,)}, {"predict": slice(None)}, len(x))
        targets = np.asarray(targets)
        task = restored.task if restored else self.task or _infer_task(targets, self.classes)
        classes = restored.classes if restored else self.classes
        if task != "regression":  # any labels (strings, 1/2/3, -1/+1) -> indices 0..C-1
            classes, targets = _encode_labels(targets, classes)
        splits = self._splits(targets, task, fitting=restored is None)
        fitted = restored or self._fit(features, targets, task, classes, splits.train)
        x = _transform(features, fitted.preprocessor, is_frame)
        y = _target_tensor(targets, task)
        # an ordered split is three slices: views, no copy of the data
        tensors = {name: (x[idx], y[idx]) for name, idx in splits._asdict().items()}
        return Prepared(fitted, tensors, splits._asdict(), len(x))

    def _splits(self, targets: np.ndarray, task: TaskName, fitting: bool) -> Splits:
        """The rows the data assigns to each split, else a split drawn with the fractions."""
        assigned = self.assigned_splits()
        if assigned is not None:
            return _assigned_split(assigned, fitting)
        return _split(
            len(targets),
            targets,
            self.val_fraction,
            self.test_fraction,
            self.split,
            self.seed,
            task,
        )

    def _fit(
        self,
        features: np.ndarray | pd.DataFrame,
        targets: np.ndarray,
        task: TaskName,
        classes: list[str] | None,
        train: slice | np.ndarray,
    ) -> Fitted:
        """Fit the preprocessing (and the target scaling) on the training rows only."""
        preprocessor = self.preprocessor()
        if preprocessor is not None:
            preprocessor.fit(features.iloc[train] if hasattr(features, "iloc") else features[train])
        columns = [str(c) for c in features.columns] if hasattr(features, "iloc") else None
        mean = std = None
        if task == "regression":
            y = targets.reshape(len(targets), -1)[train].astype(np.float64)
            outputs = y.shape[1]
            if self.standardize_target:
                mean, std = y.mean(0).tolist(), np.where(y.std(0) > 0, y.std(0), 1.0).tolist()
        else:
            outputs = 1 if task == "binary" else len(classes)
        return Fitted(task, classes, columns, outputs, mean, std, preprocessor)

    # -- dataloaders ------------------------------------------------------------------------
    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", self.batch_size, self.shuffle)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val")

    def test_dataloader(self) -> TensorBatches:
        return self._batches(self.held_out)

    def predict_dataloader(self) -> TensorBatches:
        """Every row to predict on every process, so that one file holds them all, in order."""
        return self._batches(self.predict_split, shard=False)

    @property
    def held_out(self) -> str:
        """The split ``test`` runs on: ``test``, or ``val`` when there is no test split."""
        test = self.tensors.get("test")
        return "test" if test is not None and len(test[0]) else "val"

    @property
    def predict_split(self) -> str:
        """The held-out rows, or every row of a table without targets."""
        return "predict" if "predict" in self.tensors else self.held_out

    def _batches(
        self, split: str, batch_size: int | None = None, shuffle: bool = False, shard: bool = True
    ) -> TensorBatches:
        """Batches of one split, moved once to the device the trainer runs on; with several
        processes each takes its share (``shard``)."""
        if split not in self.tensors:
            raise InputError(
                f"The data has no targets (no '{split}' split): it can only be predicted on."
            )
        tensors = self.tensors[split]
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer and shard else (0, 1)
        if trainer is not None:
            tensors = tuple(t.to(trainer.strategy.root_device) for t in tensors)
        size = batch_size or _eval_batch_size(len(tensors[0]), world)
        return TensorBatches(tensors, size, shuffle, self.seed, rank, world)


def _eval_batch_size(rows: int, world_size: int) -> int:
    """Evaluate in few large batches: the batch size does not change the metrics."""
    return max(1, min(4096, -(-rows // world_size)))


def _transform(
    features: np.ndarray | pd.DataFrame, preprocessor: TransformerMixin | None, is_frame: bool
) -> Tensor:
    """The network's float32 input: the fitted preprocessing applied to every row."""
    if preprocessor is not None:
        features = preprocessor.transform(features)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise InputError(f"load() must return 2-D features, got shape {features.shape}.")
    if is_frame:
        _check_finite(features)
    return torch.from_numpy(np.ascontiguousarray(features))


def _match_columns(frame: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    """The table's columns in the training's order; refuses missing or unexpected ones."""
    have = [str(c) for c in frame.columns]
    missing = [c for c in columns or [] if c not in have]
    unexpected = [c for c in have if c not in (columns or [])]
    if missing or unexpected:
        raise InputError(
            f"The table's columns do not match those the model was trained on. Missing: "
            f"{missing}. Unexpected: {unexpected}. (Drop extra columns with the data module's "
            "drop argument.)"
        )
    return frame.set_axis(have, axis=1)[columns]


def _dumps(preprocessor: TransformerMixin | None) -> bytes | None:
    """The fitted preprocessor in skops' format (imported only when there is one: it takes
    most of a second)."""
    if preprocessor is None:
        return None
    import skops.io

    return skops.io.dumps(preprocessor)


def _read_fit(path: str, owner: type) -> Fitted:
    """The fit stored in a checkpoint by ``state_dict``, loaded without running its code."""
    remedy = "The data's fit is only read from a checkpoint that loads as plain data."
    state = read_checkpoint(Path(path), remedy=remedy).get(owner.__qualname__)
    if state is None:
        raise InputError(
            f"checkpoint {path!r} holds no fit of a {owner.__qualname__}: it was trained on "
            "other data, or before checkpoints carried the preprocessing."
        )
    preprocessor = state["preprocessor"]
    if preprocessor is not None:
        import skops.io  # most of a second: only where there is a preprocessor

        untrusted = [t for t in skops.io.get_untrusted_types(data=preprocessor) if t not in SAFE]
        if untrusted:
            raise InputError(
                f"checkpoint {path!r}: its preprocessing uses types that are not known to be "
                f"safe to load: {untrusted}."
            )
        preprocessor = skops.io.loads(preprocessor, trusted=SAFE)
    return Fitted(**{**state, "preprocessor": preprocessor})


SAFE = ["numpy.dtype"]  # beside scikit-learn's own types, which skops trusts already


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


SPLIT_NAMES = ("train", "val", "test")


def _assigned_split(names: np.ndarray, fitting: bool) -> Splits:
    """The rows of each split as the data names them; refuses other names, and no train rows
    where the preprocessing is to be fitted (a checkpoint's fit may test every row)."""
    names = np.asarray(names).astype(str)
    unknown = sorted(set(names.tolist()) - set(SPLIT_NAMES))
    if unknown:
        raise InputError(f"Split names must be one of {list(SPLIT_NAMES)}, got {unknown}.")
    if fitting and not (names == "train").any():
        raise InputError("The split names no row 'train': there would be nothing to train on.")
    return Splits(*(np.flatnonzero(names == split) for split in SPLIT_NAMES))


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
