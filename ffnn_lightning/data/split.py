"""Which rows train, validate and test: drawn with the fractions (seeded, stratified for
classes) or named row by row by the data."""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from ffnn_lightning.errors import InputError

SplitMethod = Literal["ordered", "random", "stratified"]


class Splits(NamedTuple):
    """The rows of each split: a slice (ordered split) or an index array."""

    train: slice | np.ndarray
    val: slice | np.ndarray
    test: slice | np.ndarray


SPLIT_NAMES = ("train", "val", "test")


def assigned_split(names: np.ndarray, fitting: bool) -> Splits:
    """The rows of each split as the data names them; refuses other names, and no train rows
    where the preprocessing is to be fitted (a checkpoint's fit may test every row)."""
    names = np.asarray(names).astype(str)
    unknown = sorted(set(names.tolist()) - set(SPLIT_NAMES))
    if unknown:
        raise InputError(f"Split names must be one of {list(SPLIT_NAMES)}, got {unknown}.")
    if fitting and not (names == "train").any():
        raise InputError("The split names no row 'train': there would be nothing to train on.")
    return Splits(*(np.flatnonzero(names == split) for split in SPLIT_NAMES))


def draw_split(
    rows: int,
    targets: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    method: SplitMethod,
    seed: int,
    stratify_by_class: bool,
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
    stratify = targets if method == "stratified" and stratify_by_class else None
    try:
        return _draw(rows, n_val, n_test, seed, stratify)
    except ValueError as error:  # scikit-learn: a class too small to stratify
        if stratify is None:
            raise
        classes = len(np.unique(stratify))
        raise InputError(
            f"A stratified split cannot place {classes} classes in {rows} rows with "
            f"val_fraction={val_fraction} and test_fraction={test_fraction} ({error}). Use "
            "--data.init_args.split random, larger held-out fractions, or fewer classes."
        ) from error


def _draw(rows: int, n_val: int, n_test: int, seed: int, stratify: np.ndarray | None) -> Splits:
    """Test rows first, then validation rows from the rest, each drawn with ``seed``."""
    from sklearn.model_selection import train_test_split

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


def draw_folds(
    targets: np.ndarray,
    test_fraction: float,
    method: SplitMethod,
    folds: int,
    fold: int,
    seed: int,
    stratify_by_class: bool,
    groups: np.ndarray | None = None,
) -> Splits:
    """k-fold cross-validation: the test rows drawn as :func:`draw_split` draws them (the same
    rows as a fit's), the rest shuffled with ``seed`` and cut into ``folds`` parts (class
    ratios kept for classes; a group's rows kept together when ``groups`` are given), of which
    part ``fold`` validates and the others train."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    rows = len(targets)
    stratify = targets if stratify_by_class and method == "stratified" else None
    test_split = draw_split(rows, targets, 0.0, test_fraction, method, seed, stratify_by_class)
    test = np.arange(rows)[test_split.test]
    rest = np.setdiff1d(np.arange(rows), test)
    if stratify is not None:
        smallest = int(np.unique(stratify[rest], return_counts=True)[1].min())
        if smallest < folds:
            raise InputError(
                f"folds={folds} is more than the smallest class has rows to cross-validate "
                f"({smallest}): use at most {smallest} folds."
            )
    if groups is not None:
        splitter = StratifiedGroupKFold if stratify is not None else GroupKFold
        kwargs = {"shuffle": True, "random_state": seed}
        parts = splitter(folds, **kwargs).split(
            rest, None if stratify is None else stratify[rest], groups[rest]
        )
    elif stratify is not None:
        parts = StratifiedKFold(folds, shuffle=True, random_state=seed).split(rest, stratify[rest])
    else:
        parts = KFold(folds, shuffle=True, random_state=seed).split(rest)
    train, val = list(parts)[fold]
    return Splits(rest[train], rest[val], test)
