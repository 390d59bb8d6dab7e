"""What the data learns from its training rows and applies to every row: the preprocessing,
the labels' encoding, and how that fit travels in a checkpoint (skops, not pickle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from torch import Tensor

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

from ffnn_lightning.errors import InputError
from ffnn_lightning.tasks import TaskName


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
    width: int | None = None  # how many raw features (a fit on arrays names no columns)
    # what the model is built from, besides: so a checkpoint rebuilds the same model
    class_counts: list[int] | None = None  # training rows per class (classes only)
    train_rows: int | None = None
    category_levels: list[int] | None = None  # levels of each coded category (the last inputs)
    readers: dict | None = None  # how a file's columns were read (data/columns.py)
    # how many of the first inputs are numbers (one-hot categories, then codes, follow);
    # None: every input but the codes (and in a checkpoint from before it was recorded)
    number_features: int | None = None


def text_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of a table that do not hold numbers: categories, to one-hot encode."""
    from pandas.api.types import is_numeric_dtype

    return [c for c in frame.columns if not is_numeric_dtype(frame[c])]


Scaler = Literal["standard", "robust", "robust_clip", "quantile"]


def scaler_of(kind: Scaler) -> TransformerMixin:
    """A scaler for numeric columns: ``standard`` (zero mean, unit variance), ``robust``
    (median and interquartile range: outliers do not set the scale), ``robust_clip`` (robust,
    then outliers pulled smoothly within +-3: RealMLP's, :class:`SmoothClip`) or ``quantile``
    (each column mapped through its quantiles to a normal distribution: skewed and
    heavy-tailed columns become well-behaved inputs; a common choice for MLPs on tables)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import QuantileTransformer, RobustScaler, StandardScaler

    makers = {
        "standard": StandardScaler,
        "robust": RobustScaler,
        "robust_clip": lambda: make_pipeline(RobustScaler(), SmoothClip()),
        "quantile": lambda: QuantileTransformer(output_distribution="normal", subsample=None),
    }
    if kind not in makers:
        raise InputError(f"Unknown scaler {kind!r}. Use one of {sorted(makers)}.")
    return makers[kind]()


class SmoothClip(TransformerMixin, BaseEstimator):
    """``x / sqrt(1 + (x / limit)^2)``: close to ``x`` near 0, never beyond ``+-limit``, so a
    few extreme values cannot dominate the first layer (Holzmueller et al. 2024's RealMLP).
    Learns nothing; a scikit-learn transformer so that it travels in the fitted pipeline."""

    def __init__(self, limit: float = 3.0) -> None:
        self.limit = limit

    def fit(self, features: np.ndarray, targets: np.ndarray | None = None) -> SmoothClip:
        if not self.limit > 0:
            raise InputError(f"SmoothClip's limit must be positive, got {self.limit}.")
        self.n_features_in_ = np.shape(features)[1]
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        return features / np.sqrt(1 + (features / self.limit) ** 2)


def table_preprocessor(
    columns: list,
    categorical: list,
    scaler: Scaler | None,
    impute: bool = False,
    coded: list | tuple = (),
) -> ColumnTransformer:
    """Numbers scaled (``scaler``, none if None), categories one-hot encoded (a category the
    fit never saw is encoded as none of the known ones), gaps filled with the training
    rows' median or most frequent category (``impute``). The ``coded`` categories become
    one integer code each (-1 for an unseen one), the last columns, for an embedding. The
    table's ``columns`` are selected by position: scikit-learn takes 9 s to select 50,000
    columns by name, 0.5 s by position, and tables are put in the training's column order
    before transforming."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    numeric = [SimpleImputer(strategy="median")] if impute else []
    numeric += [scaler_of(scaler)] if scaler else []
    filled = [SimpleImputer(strategy="most_frequent")] if impute else []
    unseen = {"handle_unknown": "use_encoded_value", "unknown_value": -1}
    steps = {
        "numeric": numeric,
        "categorical": [*filled, OneHotEncoder(handle_unknown="ignore", sparse_output=False)],
        "codes": [*filled, OrdinalEncoder(**unseen, encoded_missing_value=-1)],
    }
    is_category, is_coded = set(categorical), set(coded)
    kinds = [
        "codes" if c in is_coded else "categorical" if c in is_category else "numeric"
        for c in columns
    ]
    # arrays: skops stores them whole, where it stores a list item by item
    positions = {
        kind: np.array([i for i, k in enumerate(kinds) if k == kind], dtype=np.int64)
        for kind in steps
    }
    return ColumnTransformer(
        [
            (kind, make_pipeline(*steps[kind]) if steps[kind] else "passthrough", positions[kind])
            for kind in steps
            if kind != "codes" or coded
        ]
    )


def category_levels(preprocessor: TransformerMixin | None) -> list[int] | None:
    """How many levels each coded category of a fitted :func:`table_preprocessor` has."""
    codes = getattr(preprocessor, "named_transformers_", {}).get("codes")
    return None if codes is None else [len(levels) for levels in codes[-1].categories_]


def number_features(preprocessor: TransformerMixin | None) -> int | None:
    """How many of a fitted :func:`table_preprocessor`'s outputs, the first ones, are numbers;
    None for other preprocessing (its inputs are numbers, or codes last)."""
    numbers = getattr(preprocessor, "output_indices_", {}).get("numeric")
    return None if numbers is None else numbers.stop - numbers.start


def transform(
    features: np.ndarray | pd.DataFrame, preprocessor: TransformerMixin | None, is_frame: bool
) -> Tensor:
    """The network's float32 input: the fitted preprocessing applied to every row."""
    if preprocessor is not None:
        features = preprocessor.transform(features)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise InputError(f"load() must return 2-D features, got shape {features.shape}.")
    if is_frame:
        check_finite(features)
    return torch.from_numpy(np.ascontiguousarray(features))


def match_columns(frame: pd.DataFrame, fitted: Fitted) -> pd.DataFrame | np.ndarray:
    """The table's columns in the training's order; refuses missing or unexpected ones. A fit
    made on arrays takes the table's columns in their order, as numbers."""
    if fitted.columns is None:
        return _as_array_rows(frame, fitted.width)
    have = [str(c) for c in frame.columns]
    missing = [c for c in fitted.columns if c not in have]
    unexpected = [c for c in have if c not in fitted.columns]
    if missing or unexpected:
        raise InputError(
            f"The table's columns do not match those the model was trained on. Missing: "
            f"{missing}. Unexpected: {unexpected}. (Drop extra columns with the data module's "
            "drop argument.)"
        )
    return frame.set_axis(have, axis=1)[fitted.columns]


def _as_array_rows(frame: pd.DataFrame, width: int | None) -> np.ndarray:
    """A table's rows for a model trained on unnamed features: its columns in order."""
    if width is not None and frame.shape[1] != width:
        raise InputError(
            f"The table has {frame.shape[1]} feature columns {list(frame.columns)}; the model "
            f"was trained on {width} unnamed features, which the columns give in order."
        )
    try:
        return frame.to_numpy(dtype=np.float32)
    except ValueError as error:
        raise InputError(
            f"The model was trained on numbers only; the table's columns must hold numbers "
            f"({error})."
        ) from error


def _dumps(preprocessor: TransformerMixin | None) -> bytes | None:
    """The fitted preprocessor in skops' format (imported only when there is one: it takes
    most of a second)."""
    if preprocessor is None:
        return None
    import skops.io

    return skops.io.dumps(preprocessor)


def fit_as_state(fitted: Fitted) -> dict:
    """The fit as plain values, the preprocessor in skops' format."""
    return {**fitted._asdict(), "preprocessor": _dumps(fitted.preprocessor)}


def fit_from_state(state: dict, source: str) -> Fitted:
    """The fit back from :func:`fit_as_state`, loaded without running its code; ``source``
    names where it came from in errors."""
    preprocessor = state["preprocessor"]
    if preprocessor is not None:
        import skops.io  # most of a second: only where there is a preprocessor

        untrusted = [t for t in skops.io.get_untrusted_types(data=preprocessor) if t not in SAFE]
        if untrusted:
            raise InputError(
                f"{source}: its preprocessing uses types that are not known to be "
                f"safe to load: {untrusted}."
            )
        preprocessor = skops.io.loads(preprocessor, trusted=SAFE)
    return Fitted(**{**state, "preprocessor": preprocessor})


# beside scikit-learn's own types, which skops trusts already
SAFE = ["numpy.dtype", "ffnn_lightning.data.preprocessing.SmoothClip"]


def check_finite(features: np.ndarray) -> None:
    """Refuse NaN or infinite feature values, naming the columns and how many there are."""
    bad = (~np.isfinite(features)).sum(axis=0)
    if bad.any():
        where = ", ".join(f"column {i}: {n}" for i, n in enumerate(bad) if n)
        raise InputError(
            f"The features hold NaN or infinite values ({where}). Drop or fill those rows "
            "before training."
        )


def encode_labels(targets: np.ndarray, declared: list[str] | None) -> tuple[list[str], np.ndarray]:
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
