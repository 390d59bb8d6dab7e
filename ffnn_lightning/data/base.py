"""The base every dataset builds on: load, split, fit the preprocessing on train only, batch.

A subclass only says how to load its rows (``TabularDataModule.load``); the split lives
in ``split.py``, the preprocessing and its storage in ``preprocessing.py``, the batches in
``batches.py``, and what a task is in ``ffnn_lightning/tasks.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.base import TransformerMixin

from ffnn_lightning.data.batches import TensorBatches
from ffnn_lightning.data.preprocessing import (
    Fitted,
    Scaler,
    category_levels,
    check_finite,
    encode_labels,
    fit_as_state,
    fit_from_state,
    match_columns,
    number_features,
    scaler_of,
    table_preprocessor,
    text_columns,
    transform,
)
from ffnn_lightning.data.split import (
    SplitMethod,
    Splits,
    assigned_split,
    draw_folds,
    draw_split,
)
from ffnn_lightning.errors import InputError
from ffnn_lightning.tasks import FEW_VALUES, DataInfo, TaskName, get_task, infer_task
from ffnn_lightning.training.checkpoints import read_checkpoint


class Prepared(NamedTuple):
    fitted: Fitted
    tensors: dict[str, tuple[Tensor, ...]]  # per split: features, and targets if known
    rows: dict[str, slice | np.ndarray]  # per split: its rows' positions in load()'s table
    loaded: int  # how many rows load() gave


class TabularDataModule(L.LightningDataModule):
    """In-memory tabular data: a subclass only implements load().

    Args:
        batch_size: rows per training step; ``None`` for full-batch gradient descent;
            ``auto``: the table's size chooses, about 32 steps per epoch (the power of two
            nearest a 32nd of the training rows, within 16 to 512: 16 up to about 700
            training rows, 128 for 5,000), said in one line.
        val_fraction: share of the rows held out for validation.
        test_fraction: share held out for ``test``; with 0, ``test`` and ``predict`` use the
            validation rows (the chapter has a single held-out split).
        split: ``ordered`` takes the last rows as held out (the chapter's way), ``random``
            and ``stratified`` (class ratios kept) draw them with ``seed``.
        shuffle: reshuffle the training rows every epoch (seeded by ``seed`` and the epoch).
        standardize: scale the numeric features, fitted on the training rows only.
        scaler: how: ``standard`` (zero mean, unit variance), ``robust`` (median and
            interquartile range), ``robust_clip`` (robust, then smoothly clipped to +-3) or
            ``quantile`` (through the training rows' quantiles to a
            normal distribution: robust to outliers and skew).
        seed: seeds the split and the shuffling.
        task: ``binary``, ``multiclass`` or ``regression``; ``None`` infers it from the
            targets: integers (or at most 10 whole float values) are classes, two of them
            binary; other floats are regression. The model's task and output width follow.
        classes: the class labels, in the order of the network's outputs; ``None`` takes the
            sorted distinct labels of the data. A label outside them is an error.
        standardize_target: train a regression on standardized targets (fitted on train);
            metrics and predictions stay in the target's own units.
        folds: k-fold cross-validation (``python -m ffnn_lightning cv``): the rows left after
            the test split are cut into ``folds`` parts (stratified for classes), one of which,
            ``fold``, validates; ``val_fraction`` then does not apply. ``None``: no folds.
        fold: the part that validates, from 0 to ``folds - 1``.
        category_embedding_min_levels: a category column with at least this many levels
            among the training rows goes to the network as one code per row (the last inputs),
            not as one-hot columns: fewer inputs for a column of many levels (a shop, a
            postcode). The network must take them: ``ffnn_lightning.model.CategoryEmbedding``
            learns a table per column, ``TabM`` encodes them itself. ``None``: every category
            one-hot.
        checkpoint: a checkpoint whose fit (preprocessing, columns, classes, task, target
            scaling) to apply instead of fitting one on this data: new rows get exactly the
            training's treatment. ``validate``, ``test`` and ``predict --ckpt_path`` set it.
            A table without the target column then only serves ``predict``, every row in order.
    """

    def __init__(
        self,
        batch_size: int | Literal["auto"] | None = 16,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        split: SplitMethod = "stratified",
        shuffle: bool = True,
        standardize: bool = True,
        scaler: Scaler = "standard",
        seed: int = 0,
        task: TaskName | None = None,
        classes: list[str] | None = None,
        standardize_target: bool = True,
        folds: int | None = None,
        fold: int = 0,
        category_embedding_min_levels: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        # recorded in checkpoints, so that predict can rebuild this data module from one
        self.save_hyperparameters(logger=False)
        counted = isinstance(batch_size, int) and not isinstance(batch_size, bool)
        if batch_size not in ("auto", None) and not (counted and batch_size >= 1):
            raise InputError(
                f"batch_size must be a positive integer, 'auto' (the table's size chooses) or "
                f"null (the whole training split), got {batch_size!r}."
            )
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {value}.")
        if val_fraction + test_fraction >= 1.0:
            raise InputError(
                f"val_fraction + test_fraction must leave rows to train on, got "
                f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}."
            )
        if category_embedding_min_levels is not None and category_embedding_min_levels < 2:
            raise InputError(
                "category_embedding_min_levels must be at least 2 (or null: one-hot), got "
                f"{category_embedding_min_levels}."
            )
        self.category_embedding_min_levels = category_embedding_min_levels
        if folds is not None and folds < 2:
            raise InputError(f"folds must be at least 2 to cross-validate, got {folds}.")
        if folds is not None and not 0 <= fold < folds:
            raise InputError(f"fold must be one of 0..{folds - 1} (folds={folds}), got {fold}.")
        self.folds, self.fold = folds, fold
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split = split
        self.shuffle = shuffle
        self.standardize = standardize
        self.scaler = scaler
        self.seed = seed
        self.task = task
        self.classes = classes
        self.standardize_target = standardize_target
        self.checkpoint = checkpoint
        self.prepared: Prepared | None = None  # by prepare()
        self.restored: Fitted | None = None  # a checkpoint's fit, by load_state_dict()
        self.fit_state: dict | None = None  # state_dict() of the prepared fit, made once
        self.fit_source: dict = {}  # the arguments of the data module the checkpoint's fit is of
        self.columns: list = []  # a table's feature columns, and those of them that are
        self.category_columns: list = []  # categories: set when fitting, for preprocessor()
        self.coded_columns: list = []  # those of them given as codes, for an embedding
        self.readers: dict = {}  # how load() read a file's columns, for new rows alike

    def load(self) -> tuple[np.ndarray | pd.DataFrame, np.ndarray]:
        """Return the raw features (an array or a DataFrame, a row per sample) and targets."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def assigned_splits(self) -> np.ndarray | None:
        """Each loaded row's split (``train``, ``val`` or ``test``) where the data names it,
        e.g. from a column; ``None`` (the default) draws the split with the fractions."""
        return None

    def groups(self) -> np.ndarray | None:
        """Each loaded row's group for cross-validation: a group's rows (one patient's, one
        site's) stay in one fold. ``None`` (the default): every row on its own."""
        return None

    def is_other_data(self, fitted_on: dict) -> bool:
        """Whether these rows are others than those a checkpoint's fit was made on (whose
        data module had the arguments ``fitted_on``): ``predict`` then predicts every row,
        in order, not just the held-out ones. The base cannot tell; FileDataModule compares
        the files."""
        return False

    def categorical_columns(self, frame: pd.DataFrame) -> list[str]:
        """The columns of a table from load() to one-hot encode: those without numbers."""
        return text_columns(frame)

    def columns_to_code(self, rows: pd.DataFrame) -> list[str]:
        """The category columns with at least ``category_embedding_min_levels`` levels among
        the training ``rows``: the network embeds their codes."""
        least = self.category_embedding_min_levels
        if least is None:
            return []
        return [c for c in self.category_columns if rows[c].nunique() >= least]

    def preprocessor(self) -> TransformerMixin | None:
        """The feature preprocessing, unfitted: the base fits it on the training rows only and
        applies it to every split. By default the ``scaler`` when ``standardize``, and for
        a table with categories (``self.category_columns`` of ``self.columns``, found when
        fitting) their one-hot encoding (or codes, ``self.coded_columns``) beside it. A
        subclass may return its own."""
        if self.category_columns:
            return table_preprocessor(
                self.columns, self.category_columns, self.numeric_scaler, coded=self.coded_columns
            )
        return scaler_of(self.scaler) if self.standardize else None

    @property
    def numeric_scaler(self) -> Scaler | None:
        """The scaler of the numeric columns, or None without ``standardize``."""
        return self.scaler if self.standardize else None

    # -- what the CLI links into the model ------------------------------------------------
    @property
    def data_info(self) -> DataInfo:
        """What the model is built from (the CLI links it into ``model.data_info``); all of it
        comes from the fit, so a checkpoint rebuilds the same model."""
        fitted = self.prepare().fitted
        return {
            "in_features": self.num_features,
            "out_features": fitted.num_outputs,
            "task": fitted.task,
            "target_mean": fitted.target_mean,
            "target_std": fitted.target_std,
            "class_counts": fitted.class_counts,
            "train_rows": fitted.train_rows,
            "category_levels": fitted.category_levels,
            "number_features": fitted.number_features,
        }

    @property
    def num_features(self) -> int:
        return next(iter(self.tensors.values()))[0].shape[1]

    @property
    def num_outputs(self) -> int:
        """Width of the network's output: 1 for binary, one per class, one per target."""
        return self.prepare().fitted.num_outputs

    @property
    def class_names(self) -> list[str] | None:
        """The original labels behind class indices 0, 1, ... (None for regression)."""
        return self.prepare().fitted.classes

    @property
    def task_name(self) -> TaskName:
        return self.prepare().fitted.task

    @property
    def tensors(self) -> dict[str, tuple[Tensor, ...]]:
        """Float32 features and task-shaped targets of each split (train, val, test); a table
        without targets, given the fit of a checkpoint, has just the features of ``predict``."""
        return self.prepare().tensors

    def row_ids(self, split: str) -> dict[str, list]:
        """Columns that identify a split's rows in ``predictions.csv``: ``row``, each row's
        position in the loaded table. A subclass may add its own (an ID column)."""
        prepared = self.prepare()
        return {"row": np.arange(prepared.loaded)[prepared.rows[split]].tolist()}

    def left_out_rows(self, split: str) -> dict[str, list]:
        """Rows of a split that were not given to the network (a gap the fit cannot fill),
        with a ``reason`` column: ``predictions.csv`` lists them with empty outputs. The
        base leaves none out."""
        return {}

    # -- the fitted preprocessing travels with the checkpoint ------------------------------
    def state_dict(self) -> dict:
        """The fit, as plain values (Lightning stores it in every checkpoint): the
        preprocessor in scikit-learn's safe ``skops`` format, not as a pickle. Made once per
        fit: every checkpoint holds it, and dumping a wide table's preprocessor takes seconds."""
        prepared = self.prepare()
        if self.fit_state is None:
            self.fit_state = fit_as_state(prepared.fitted)
        return self.fit_state

    def load_state_dict(self, state: dict) -> None:
        """Apply a checkpoint's fit instead of fitting one: rows are then scaled, encoded and
        labelled exactly as the training rows were. Lightning calls it when a run is resumed
        or evaluated from a checkpoint; data prepared with another fit is prepared again."""
        if self.prepared is not None and state == self.state_dict():
            return
        self.restored = fit_from_state(state, f"{type(self).__qualname__} state")
        self.prepared = None
        self.fit_state = state  # what state_dict() gives back, without dumping it again

    # -- loading, splitting, preprocessing (once) ----------------------------------------
    def setup(self, stage: str) -> None:
        self.prepare()

    def prepare(self) -> Prepared:
        """Load, split, fit the preprocessing on the training rows and build the tensors,
        once. ``setup`` runs it; so does whatever needs the data's shape earlier (the CLI's
        links into the model). Bad data is reported here."""
        if self.prepared is None:
            if self.checkpoint and self.restored is None:
                state, self.fit_source = fit_in_checkpoint(self.checkpoint, type(self))
                self.load_state_dict(state)
            self.prepared = self._prepare(self.restored)
            if self.batch_size == "auto" and "train" in self.prepared.tensors:
                rows = len(self.prepared.tensors["train"][0])
                self.batch_size = auto_batch_size(rows)
                rank_zero_info(f"Batch size: {self.batch_size} (auto, for {rows} training rows).")
        return self.prepared

    def _prepare(self, restored: Fitted | None) -> Prepared:
        features, targets = self.load()
        is_frame = hasattr(features, "iloc")
        if is_frame and restored is not None:
            features = match_columns(features, restored)
            is_frame = hasattr(features, "iloc")
        if not is_frame:  # arrays are checked before scaling, DataFrames after encoding
            features = np.asarray(features, dtype=np.float32)
            check_finite(features)
        if targets is None:
            if restored is None:
                raise InputError(
                    f"{type(self).__name__}.load() gave no targets: training needs them (only "
                    "predict, given a checkpoint's fit, can do without)."
                )
            x = transform(features, restored.preprocessor, is_frame)
            return Prepared(restored, {"predict": (x,)}, {"predict": slice(None)}, len(x))
        targets = np.asarray(targets)
        task = get_task(restored.task) if restored is not None else self._task_of(targets)
        classes = restored.classes if restored else self.classes
        if task.is_classification:  # any labels (strings, 1/2/3, -1/+1) -> indices 0..C-1
            classes, targets = encode_labels(targets, classes)
            if restored is None:
                refuse_tiny_classes(targets, classes)
        splits = self._splits(targets, task.is_classification, fitting=restored is None)
        fitted = restored or self._fit(features, targets, task.name, classes, splits.train)
        x = transform(features, fitted.preprocessor, is_frame)
        y = task.target_tensor(targets)
        rows = splits._asdict()
        # an ordered split is three slices: views, no copy of the data
        tensors = {name: (x[idx], y[idx]) for name, idx in rows.items()}
        if restored is not None and self.is_other_data(self.fit_source):
            tensors["predict"], rows["predict"] = (x, y), slice(None)  # every row, in order
        return Prepared(fitted, tensors, rows, len(x))

    def _task_of(self, targets: np.ndarray):
        """The task set, or the one the targets show; said in one line either way."""
        if self.task:
            task, why = get_task(self.task), "as set"
        else:
            task, why = infer_task(targets, self.classes)
        rank_zero_info(f"Task: {task.name} ({why}). Change it with --data.init_args.task.")
        return task

    def _splits(self, targets: np.ndarray, classes: bool, fitting: bool) -> Splits:
        """The rows the data assigns to each split, else a split drawn with the fractions."""
        assigned = self.assigned_splits()
        if assigned is not None:
            return assigned_split(assigned, fitting)
        if self.folds is not None:
            return draw_folds(
                targets,
                self.test_fraction,
                self.split,
                self.folds,
                self.fold,
                self.seed,
                classes,
                self.groups(),
            )
        return draw_split(
            len(targets),
            targets,
            self.val_fraction,
            self.test_fraction,
            self.split,
            self.seed,
            classes,
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
        if hasattr(features, "iloc"):
            self.columns = list(features.columns)
            self.category_columns = self.categorical_columns(features)
            self.coded_columns = self.columns_to_code(features.iloc[train])
        preprocessor = self.preprocessor()
        if preprocessor is not None:
            preprocessor.fit(features.iloc[train] if hasattr(features, "iloc") else features[train])
        columns = [str(c) for c in features.columns] if hasattr(features, "iloc") else None
        mean = std = None
        if task == "regression" and self.standardize_target:
            y = targets.reshape(len(targets), -1)[train].astype(np.float64)
            mean, std = y.mean(0).tolist(), np.where(y.std(0) > 0, y.std(0), 1.0).tolist()
        outputs = get_task(task).num_outputs(classes, targets)
        trained_on = targets[train]
        counts = None
        if classes is not None:  # class indices 0..C-1 by now
            counts = np.bincount(trained_on.astype(int).ravel(), minlength=len(classes)).tolist()
        fitted = (task, classes, columns, outputs, mean, std, preprocessor, features.shape[1])
        levels = category_levels(preprocessor)
        facts = (counts, len(trained_on), levels, self.readers or None)
        return Fitted(*fitted, *facts, number_features(preprocessor))

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
        """The held-out rows, or every row of other data than the fit's (a new file)."""
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


def refuse_tiny_classes(targets: np.ndarray, classes: list[str]) -> None:
    """Refuse a single class, or many classes most of which have one or two rows: nothing a
    classifier can learn, and most often an amount or a count read as labels."""
    counts = np.bincount(targets.astype(int).ravel(), minlength=len(classes))
    if (counts > 0).sum() < 2:
        raise InputError(
            f"The target holds a single class ({classes[int(counts.argmax())]!r}): there is "
            "nothing to tell apart. Check the target column, or set task: regression for "
            "numbers to predict."
        )
    tiny = int((counts <= 2).sum())
    if len(classes) > FEW_VALUES and tiny > len(classes) / 2:
        raise InputError(
            f"The target has {len(classes)} classes in {len(targets)} rows, {tiny} of them "
            "with at most 2 rows: too few to learn a class from. If the target is an amount "
            "or a count, set --data.init_args.task regression."
        )


def auto_batch_size(rows: int) -> int:
    """About 32 steps per epoch: the power of two nearest ``rows / 32``, within 16 to 512
    (small tables keep many steps; large ones spend less of each step on overhead)."""
    return int(min(512, max(16, 2 ** round(np.log2(max(rows, 1) / 32)))))


def _eval_batch_size(rows: int, world_size: int) -> int:
    """Evaluate in few large batches: the batch size does not change the metrics."""
    return max(1, min(4096, -(-rows // world_size)))


def fit_in_checkpoint(path: str, owner: type) -> tuple[dict, dict]:
    """The fit a checkpoint holds (of its own data module, which may be another class than
    ``owner``: a FileDataModule predicts on a file with a code data module's fit), and the
    arguments of the data module it was made by."""
    remedy = "The data's fit is only read from a checkpoint that loads as plain data."
    checkpoint = read_checkpoint(Path(path), remedy=remedy)
    source = checkpoint.get("datamodule_hyper_parameters", {})
    made_by = str(source.get("_class_path", owner.__qualname__)).rsplit(".", 1)[-1]
    state = checkpoint.get(owner.__qualname__, checkpoint.get(made_by))
    if not isinstance(state, dict) or "preprocessor" not in state:
        raise InputError(
            f"checkpoint {path!r} holds no fit of a tabular data module: it was trained on "
            "other data, or before checkpoints carried the preprocessing."
        )
    return state, source
