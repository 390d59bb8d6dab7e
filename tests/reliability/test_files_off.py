"""Real tables arrive a little off: each class of oddity is found when the file is first read
and said in one line (or refused in one, writing nothing), and new rows are read the same way."""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zstandard

from ffnn_lightning.cli import main, run
from ffnn_lightning.data import FileDataModule
from tests.conftest import CONFIGS

ADAM = str(CONFIGS / "blobs_adam.yaml")
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
FILE = ["--data=ffnn_lightning.data.FileDataModule", "--model.loss=cross_entropy", *QUIET]
ROWS = 120


def penguins(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A small table like the penguins': three string classes told apart by two numbers, two
    categories."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], rows)
    shift = pd.Series(species).map({"Adelie": 0.0, "Gentoo": 3.0, "Chinstrap": 6.0}).to_numpy()
    return pd.DataFrame(
        {
            "bill": np.round(40 + shift + rng.normal(0, 1, rows), 1),
            "mass": np.round(3500 + 300 * shift + rng.normal(0, 100, rows)).astype(int),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], rows),
            "sex": rng.choice(["male", "female"], rows),
            "species": species,
        }
    )


def data_of(tmp_path, frame: pd.DataFrame, name: str = "t.csv", **kwargs) -> FileDataModule:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    data = FileDataModule(path=str(path), target=kwargs.pop("target", "species"), **kwargs)
    data.prepare()
    return data


def width(data: FileDataModule) -> int:
    return data.num_features


def refused(tmp_path, frame: pd.DataFrame, *extra: str, name: str = "t.csv") -> str:
    """The one line ``fit`` on the table stops with; it must leave the folder as it was."""
    if frame is not None:
        frame.to_csv(tmp_path / name, index=False)
    before = sorted(tmp_path.rglob("*"))
    args = ["fit", "--config", ADAM, *FILE, f"--data.path={name}", "--data.target=species"]
    args += ["--trainer.max_epochs=1"]
    with pytest.raises(SystemExit) as stopped:
        run([*args, *extra])
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
    return message


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# -- columns that are not features in disguise --------------------------------------------


def notes(caplog) -> str:
    return caplog.text


@pytest.mark.parametrize(
    "column, values, seen",
    [
        ("notes", lambda i: f"Seen near the shore, {i} m away,\nwith a chick", "free text"),
        ("comment", lambda i: f"bird number {i} looked well fed today", "free text"),
        ("tag", lambda i: f"P-{i:04d}", "an identifier"),
        ("penguin_id", lambda i: 1000 + i, "an identifier"),
        ("ID", lambda i: f"{i * 7919 % 10007}", "an identifier"),
        ("nest", lambda i: f"nest{i // 1.5:.0f}", "a category with about as many levels"),
    ],
)
def test_a_column_that_is_no_feature_is_left_out_with_a_line(
    tmp_path, caplog, column, values, seen
):
    plain = width(data_of(tmp_path, penguins(), "plain.csv"))
    frame = penguins().assign(**{column: [values(i) for i in range(ROWS)]})
    data = data_of(tmp_path, frame)
    line = next(line for line in notes(caplog).splitlines() if f"column {column!r}" in line)
    assert seen in line and "left out" in line and "features" in line
    assert width(data) == plain


def test_a_left_out_column_named_in_features_is_kept(tmp_path):
    frame = penguins().assign(tag=[f"P-{i:04d}" for i in range(ROWS)])
    kept = data_of(tmp_path, frame, features=["bill", "mass", "tag"])
    assert width(kept) > 2 + ROWS / 2  # one-hot, as asked


def test_free_text_with_quoted_commas_and_line_breaks_is_read_whole(tmp_path):
    frame = penguins().assign(notes=[f'said "hi", then\nleft {i}' for i in range(ROWS)])
    data = data_of(tmp_path, frame)
    assert data.prepare().loaded == ROWS


@pytest.mark.parametrize(
    "cells, year, month",
    [
        (lambda i: f"2008-03-{1 + i % 28:02d}", 2008, 3),
        (lambda i: f"2009-11-{1 + i % 28:02d} 09:{i % 60:02d}", 2009, 11),
        (lambda i: f"2010-01-{1 + i % 28:02d}T12:00:00", 2010, 1),
        (lambda i: f"{1 + i % 28:02d}/07/2011", 2011, 7),  # day first: days above 12
        (lambda i: f"05/{1 + i % 28:02d}/2012", 2012, 5),  # month first
    ],
)
def test_a_date_column_becomes_numbers_a_network_can_use(tmp_path, caplog, cells, year, month):
    frame = penguins().assign(sold=[cells(i) for i in range(ROWS)])
    data = data_of(tmp_path, frame)
    assert "column 'sold' holds dates" in notes(caplog)
    fitted = data.prepare().fitted
    assert [c for c in fitted.columns if c.startswith("sold")] == [
        "sold.year", "sold.month", "sold.weekday", "sold.days",
    ]  # fmt: skip
    read = data.load()[0]
    assert (read["sold.year"] == year).all() and (read["sold.month"] == month).all()


# -- numbers written as text --------------------------------------------------------------


@pytest.mark.parametrize(
    "cells, expected, separator",
    [
        (lambda v: f"{v:,}", lambda v: v, ","),  # thousands: "3,750"
        (lambda v: f"${v:,}.50", lambda v: v + 0.5, ","),  # currency
        (lambda v: f" {v:,} ".replace(",", " "), lambda v: v, ","),  # spaces: " 3 750 "
        (lambda v: f"{v / 100:.1f}%", lambda v: round(v / 100, 1) / 100, ","),  # percent
        (
            lambda v: f"{v:,}.5".replace(",", "X").replace(".", ",").replace("X", "."),
            lambda v: v + 0.5,
            ";",
        ),  # "3.750,5": a decimal comma
        (lambda v: f"{v / 1000:.2f}".replace(".", ","), lambda v: round(v / 1000, 2), ";"),
        (lambda v: f"{v:,}".replace(",", "\u00a0"), lambda v: v, ","),  # a non-breaking space
    ],
)
def test_numbers_written_as_text_are_read_as_numbers(tmp_path, caplog, cells, expected, separator):
    frame = penguins()
    mass = frame["mass"].to_numpy()
    frame["mass"] = [cells(int(v)) for v in mass]
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False, sep=separator)
    data = FileDataModule(path=str(path), target="species", separator=separator)
    read = data.load()[0]
    assert "column 'mass' holds numbers written as text" in notes(caplog)
    np.testing.assert_allclose(read["mass"], [expected(int(v)) for v in mass], rtol=1e-9)
    data.prepare()
    assert width(data) == 2 + 3 + 2  # two numbers, island and sex one-hot


def test_numbers_written_two_ways_are_refused_naming_two_cells(tmp_path):
    frame = penguins()
    frame["mass"] = ["3,750.5" if i % 2 else "3.750,5" for i in range(ROWS)]
    message = refused(tmp_path, frame)
    assert "column 'mass' holds numbers written in more than one way" in message
    assert "--data.init_args.thousands" in message and "--data.init_args.decimal" in message


def test_the_reading_of_numbers_can_be_said(tmp_path):
    frame = penguins()
    frame["mass"] = ["3,750" for _ in range(ROWS)]
    as_decimal = data_of(tmp_path, frame, decimal=",")
    assert (as_decimal.load()[0]["mass"] == 3.75).all()
    as_thousands = data_of(tmp_path, frame, thousands=",")
    assert (as_thousands.load()[0]["mass"] == 3750).all()


# -- labels -------------------------------------------------------------------------------


def test_labels_that_differ_by_surrounding_spaces_are_one_class(tmp_path, caplog):
    frame = penguins()
    frame.loc[::3, "species"] = " " + frame.loc[::3, "species"]
    frame.loc[1::5, "species"] = frame.loc[1::5, "species"] + "  "
    data = data_of(tmp_path, frame)
    assert data.class_names == ["Adelie", "Chinstrap", "Gentoo"]
    assert data.state_dict()["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert "differ from others only by surrounding spaces" in notes(caplog)


def test_labels_that_differ_by_letter_case_are_named_and_kept_apart(tmp_path, caplog):
    frame = penguins()
    frame.loc[::4, "species"] = frame.loc[::4, "species"].str.lower()
    data = data_of(tmp_path, frame)
    assert len(data.class_names) == 6
    assert "'Adelie' / 'adelie'" in notes(caplog)


# -- the task, always said ------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, task",
    [
        (lambda rng, n: rng.integers(50_000, 400_000, n), "regression"),  # prices
        (lambda rng, n: rng.poisson(40, n), "regression"),  # counts
        (lambda rng, n: rng.integers(0, 3, n), "multiclass"),  # coded classes
        (lambda rng, n: rng.integers(0, 2, n).astype(float), "binary"),  # 0.0 / 1.0
        (lambda rng, n: rng.normal(0, 1, n), "regression"),  # fractions
        (lambda rng, n: rng.integers(0, 15, n), "multiclass"),  # 15 values, 800 rows
    ],
)
def test_the_task_is_read_as_a_person_would_and_said(tmp_path, caplog, target, task):
    rng = np.random.default_rng(0)
    rows = 800
    frame = pd.DataFrame({"a": rng.normal(0, 1, rows), "y": target(rng, rows)})
    data = data_of(tmp_path, frame, target="y", split="random")
    assert data.task_name == task
    line = next(line for line in notes(caplog).splitlines() if "Task: " in line)
    assert f"Task: {task} (" in line and "--data.init_args.task" in line


def test_prices_with_a_split_column_are_a_regression(tmp_path):
    rng = np.random.default_rng(1)
    rows = 600
    frame = pd.DataFrame({"area": rng.normal(100, 20, rows)})
    frame["price"] = (1000 * frame["area"]).round().astype(int)
    frame["part"] = rng.choice(["train", "val", "test"], rows, p=[0.7, 0.15, 0.15])
    data = data_of(tmp_path, frame, target="price", split_column="part")
    assert data.task_name == "regression"


@pytest.mark.parametrize(
    "extra", [[], ["--data.init_args.task=multiclass"], ["--data.split=random"]]
)
def test_classes_of_one_or_two_rows_are_refused_with_the_remedy(tmp_path, extra):
    frame = penguins().assign(species=[f"bird{i // 2}" for i in range(ROWS)])
    message = refused(tmp_path, frame, *extra)
    assert f"The target has {ROWS // 2} classes in {ROWS} rows" in message
    assert "--data.init_args.task regression" in message


# -- infinite values ------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity"])
def test_an_infinite_value_is_refused_naming_column_and_row(tmp_path, cell):
    frame = penguins().astype({"bill": object})
    frame.loc[7, "bill"] = cell
    message = refused(tmp_path, frame)
    assert "infinite values in column 'bill' rows [7]" in message
    assert "missing impute" in message


def test_an_infinite_value_is_a_gap_where_missing_is_imputed(tmp_path, caplog):
    frame = penguins().astype({"bill": object})
    frame.loc[[3, 9], "bill"] = "inf"
    data = data_of(tmp_path, frame, missing="impute")
    assert "infinite values in column 'bill' rows [3, 9]: imputed as gaps" in notes(caplog)
    assert data.prepare().loaded == ROWS


# -- compressed files and encodings ----------------------------------------------------------


def _zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def _zip(path: Path, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("t.csv", data)


@pytest.mark.parametrize(
    "suffix, pack",
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress), (".zst", _zst),
     (".zip", None)],
)  # fmt: skip
def test_a_compressed_csv_is_read_as_its_content(tmp_path, suffix, pack):
    frame = penguins()
    text = frame.to_csv(index=False).encode()
    path = tmp_path / f"t.csv{suffix}"
    if pack is None:
        _zip(path, text)
    else:
        path.write_bytes(pack(text))
    data = FileDataModule(path=str(path), target="species")
    pd.testing.assert_frame_equal(data.load()[0], frame.drop(columns="species"))


def test_a_latin1_file_is_refused_naming_the_encoding_option(tmp_path):
    frame = penguins().assign(island=["Zürich", "Genève", "Bâle"] * (ROWS // 3))
    (tmp_path / "t.csv").write_bytes(frame.to_csv(index=False).encode("latin-1"))
    message = refused(tmp_path, None)
    assert "is not a UTF-8 CSV file" in message and "--data.init_args.encoding latin-1" in message


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_a_file_in_another_encoding_reads_with_it(tmp_path, encoding):
    frame = penguins().assign(island=["Zürich", "Genève", "Bâle"] * (ROWS // 3))
    (tmp_path / "t.csv").write_bytes(frame.to_csv(index=False).encode(encoding))
    data = FileDataModule(path="t.csv", target="species", encoding=encoding)
    assert set(data.load()[0]["island"]) == {"Zürich", "Genève", "Bâle"}


def test_an_unknown_encoding_is_one_line(tmp_path):
    message = refused(tmp_path, penguins(), "--data.init_args.encoding=latin-9000")
    assert "Unknown encoding 'latin-9000'" in message


# -- predict answers every row ------------------------------------------------------------


def test_predict_answers_every_row_of_a_file_with_gaps_in_file_order(tmp_path):
    penguins(seed=1).to_csv("train.csv", index=False)
    fit = ["fit", "--config", ADAM, *FILE, "--data.path=train.csv", "--data.target=species"]
    fit += ["--trainer.max_epochs=2"]
    cli = main(fit)
    new = penguins(seed=2)
    gaps = [4, 17, 18, 60, 99, 119]
    new.loc[gaps[:3], "bill"] = np.nan
    new.loc[gaps[3:], "island"] = np.nan
    new.to_csv("new.csv", index=False)
    best = cli.trainer.checkpoint_callback.best_model_path
    main(["predict", "--ckpt_path", best, "--data.path=new.csv", *QUIET])
    with (Path(cli.trainer.log_dir) / "predictions-new.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in rows] == list(range(ROWS))
    assert [i for i, r in enumerate(rows) if r["label"] == ""] == gaps
    assert rows[4]["reason"] == "no value in bill" and rows[60]["reason"] == "no value in island"
    assert all(r["reason"] == "" and r["label"] for i, r in enumerate(rows) if i not in gaps)


def test_new_rows_are_read_as_the_training_rows_were(tmp_path):
    frame = penguins().assign(
        mass=lambda f: [f"{v:,}" for v in f["mass"]],
        sold=[f"2008-03-{1 + i % 28:02d}" for i in range(ROWS)],
        tag=[f"P-{i:04d}" for i in range(ROWS)],
    )
    frame.to_csv("train.csv", index=False)
    fit = ["fit", "--config", ADAM, *FILE, "--data.path=train.csv", "--data.target=species"]
    fit += ["--trainer.max_epochs=1"]
    cli = main(fit)
    frame.drop(columns="species").head(10).to_csv("new.csv", index=False)
    best = cli.trainer.checkpoint_callback.best_model_path
    predicted = main(["predict", "--ckpt_path", best, "--data.path=new.csv", *QUIET])
    assert predicted.datamodule.num_features == cli.datamodule.num_features
    with (Path(cli.trainer.log_dir) / "predictions-new.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 10
