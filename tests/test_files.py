"""FileDataModule: a user's own CSV, with string labels, categories and gaps."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
import torch

from ffnn_lightning.data import BlobsDataModule, FileDataModule
from ffnn_lightning.data.preprocessing import fit_as_state, fit_from_state
from ffnn_lightning.errors import InputError


def write_csv(path, rows: int = 60, gaps: bool = False):
    rng = np.random.default_rng(0)
    lines = ["id,size,colour,weight,species"]
    for i in range(rows):
        size = "" if gaps and i % 10 == 3 else f"{rng.normal():.3f}"
        colour = "" if gaps and i % 10 == 7 else ("red", "green", "blue")[i % 3]
        lines.append(f"{i},{size},{colour},{rng.normal():.3f},{('cat', 'dog')[i % 2]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_csv_with_string_labels_and_a_category_becomes_tensors(tmp_path):
    data = FileDataModule(path=str(write_csv(tmp_path / "pets.csv")), target="species", drop=["id"])
    assert (data.task_name, data.class_names) == ("binary", ["cat", "dog"])
    # size and weight, plus colour one-hot encoded into three columns
    assert data.num_features == 5
    x, _ = data.tensors["train"]
    torch.testing.assert_close(x[:, :2].mean(0), torch.zeros(2), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("missing", "rows"), [("drop", 48), ("impute", 60)])
def test_missing_values_are_dropped_or_imputed_and_counted(tmp_path, caplog, missing, rows):
    path = write_csv(tmp_path / "gaps.csv", gaps=True)
    data = FileDataModule(path=str(path), target="species", drop=["id"], missing=missing)
    assert sum(len(data.tensors[s][0]) for s in ("train", "val", "test")) == rows
    expected = (
        "dropped 12 rows" if missing == "drop" else "imputing missing values (size: 6, colour: 6)"
    )
    assert expected in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("a,b,species\n", "has a header but no rows"),
        ("a,b\n1,2\n", r"has no column 'species'. Its columns: \['a', 'b'\]"),
    ],
)
def test_unreadable_files_are_named(tmp_path, content, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        FileDataModule(path=str(path), target="species").prepare()


def test_fit_and_predict_on_a_csv_through_the_command_line(tmp_path, run_cli):
    path = write_csv(tmp_path / "pets.csv", rows=100)
    data = [
        "--data=ffnn_lightning.data.FileDataModule", f"--data.path={path}",
        "--data.target=species", "--data.drop=[id]", "--data.test_fraction=0.2",
    ]  # fmt: skip
    cli = run_cli(
        "fit", *data, "--model.network.hidden=[8]", "--trainer.max_epochs=2", "--seed_everything=0"
    )
    last = f"{cli.trainer.log_dir}/checkpoints/last.ckpt"
    run_cli("predict", *data, "--model.network.hidden=[8]", "--ckpt_path", last)
    with (tmp_path / cli.trainer.log_dir / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    assert {row["label"] for row in rows} <= {"cat", "dog"}


def test_a_split_column_names_each_rows_split(tmp_path):
    path = write_csv(tmp_path / "pets.csv", rows=20)
    table = pd.read_csv(path).assign(part=["train"] * 12 + ["val"] * 5 + ["test"] * 3)
    table.to_csv(path, index=False)
    data = FileDataModule(path=str(path), target="species", drop=["id"], split_column="part")
    assert data.num_features == 5  # the split column is no feature
    assert {s: data.row_ids(s)["row"] for s in ("val", "test")} == {
        "val": [12, 13, 14, 15, 16],
        "test": [17, 18, 19],
    }


def test_unknown_split_names_are_refused(tmp_path):
    path = write_csv(tmp_path / "pets.csv", rows=4)
    pd.read_csv(path).assign(part=["train", "train", "valid", "test"]).to_csv(path, index=False)
    data = FileDataModule(path=str(path), target="species", drop=["id"], split_column="part")
    with pytest.raises(InputError, match=r"one of \['train', 'val', 'test'\], got \['valid'\]"):
        data.prepare()


def test_a_files_scaling_is_fitted_on_its_training_rows_only(tmp_path):
    rows = 40
    table = pd.DataFrame(
        {
            "size": np.r_[np.random.default_rng(0).normal(size=30), np.full(10, 100.0)],
            "species": ["cat", "dog"] * (rows // 2),
            "part": ["train"] * 30 + ["val"] * 10,  # the validation rows shifted far away
        }
    )
    table.to_csv(tmp_path / "shifted.csv", index=False)
    data = FileDataModule(path=str(tmp_path / "shifted.csv"), target="species", split_column="part")
    train, val = data.tensors["train"][0], data.tensors["val"][0]
    torch.testing.assert_close(train.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    assert val.min() > 50  # scaled with the training rows' spread, not pulled in by their own


def test_a_semicolon_csv_with_a_byte_order_mark_reads_with_its_separator(tmp_path):
    path = tmp_path / "excel.csv"
    rows = "".join(f"{i};{i % 3};{'xy'[i % 2]}\n" for i in range(20))
    path.write_text("\ufeffa;b;species\n" + rows, encoding="utf-8")
    data = FileDataModule(path=str(path), target="species", separator=";")
    data.prepare()
    assert data.num_features == 2 and data.class_names == ["x", "y"]


def test_a_number_column_with_a_few_text_cells_is_reported_with_them(tmp_path, caplog):
    ages = [str(20 + i) for i in range(28)] + ["unknown", "?"]
    path = tmp_path / "ages.csv"
    pd.DataFrame({"age": ages, "species": ["x", "y"] * 15}).to_csv(path, index=False)
    FileDataModule(path=str(path), target="species").prepare()
    assert "column 'age' holds numbers but for 2 cells ['?', 'unknown']" in caplog.text


def file_with_the_fit_of(data, path) -> FileDataModule:
    """A FileDataModule over ``path`` given the fit of ``data``, as ``predict --ckpt_path``
    with ``--data FileDataModule`` gives it."""
    new = FileDataModule(path=str(path), checkpoint="given below")
    new.load_state_dict(data.state_dict())
    return new


def test_a_file_takes_a_code_data_modules_fit_column_by_column(tmp_path):
    from tests.test_data import ArrayData

    rng = np.random.default_rng(0)
    features = rng.normal(loc=5.0, size=(100, 2))
    data = ArrayData(features, (features[:, 0] > 5).astype(int))
    pd.DataFrame(features[:7], columns=["p", "q"]).to_csv(tmp_path / "new.csv", index=False)
    new = file_with_the_fit_of(data, tmp_path / "new.csv")
    scaled = data.prepare().fitted.preprocessor.transform(features[:7])
    torch.testing.assert_close(new.tensors["predict"][0], torch.tensor(scaled, dtype=torch.float32))


def test_a_file_of_another_width_than_a_code_data_modules_fit_is_refused(tmp_path):
    from tests.test_data import ArrayData

    data = ArrayData(np.random.default_rng(0).normal(size=(100, 2)), np.arange(100) % 2)
    pd.DataFrame(np.zeros((3, 3)), columns=list("abc")).to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(InputError, match=r"3 feature columns .* trained on 2 unnamed"):
        file_with_the_fit_of(data, tmp_path / "new.csv").prepare()


def test_a_clipping_scaler_travels_with_the_fit_to_new_rows(tmp_path):
    from tests.test_data import ArrayData

    features = np.random.default_rng(0).standard_cauchy(size=(100, 2))
    data = ArrayData(features, np.arange(100) % 2, scaler="robust_clip")
    new_rows = np.array([[0.0, 1.0], [50.0, -80.0], [3.0, 0.5]])
    pd.DataFrame(new_rows, columns=["p", "q"]).to_csv(tmp_path / "new.csv", index=False)
    new = file_with_the_fit_of(data, tmp_path / "new.csv")  # through skops, as a checkpoint
    expected = data.prepare().fitted.preprocessor.transform(new_rows)
    assert np.abs(expected).max() < 3
    expected = torch.tensor(expected, dtype=torch.float32)
    torch.testing.assert_close(new.tensors["predict"][0], expected)


def shops_csv(path, shops: int, rows: int = 200):
    """A size, a colour of 3 levels, a shop of ``shops`` levels, and the species."""
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "size": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "shop": [f"shop{i % shops}" for i in range(rows)],
            "species": rng.choice(["cat", "dog"], size=rows),
        }
    ).to_csv(path, index=False)
    return str(path)


def test_a_category_of_many_levels_becomes_one_code_column_last(tmp_path):
    path = shops_csv(tmp_path / "shops.csv", shops=30)
    data = FileDataModule(path=path, target="species", category_embedding_min_levels=10)
    # size, colour one-hot in 3, then the shop as one code of its 30 levels
    assert data.num_features == 5
    assert data.data_info["category_levels"] == [30]
    x, _ = data.tensors["train"]
    codes = x[:, -1]
    assert codes.min() == 0 and codes.max() == 29 and (codes == codes.round()).all()
    one_hot = FileDataModule(path=path, target="species")
    assert one_hot.num_features == 1 + 3 + 30 and one_hot.data_info["category_levels"] is None


def test_the_data_says_how_many_of_the_first_inputs_are_numbers(tmp_path):
    path = shops_csv(tmp_path / "shops.csv", shops=30)
    data = FileDataModule(path=path, target="species", category_embedding_min_levels=10)
    assert data.data_info["number_features"] == 1  # size; then colour one-hot, the shop's code
    x, _ = data.tensors["train"]
    assert set(x[:, 1:4].unique().tolist()) == {0.0, 1.0}
    assert FileDataModule(path=path, target="species").data_info["number_features"] == 1
    assert BlobsDataModule(n_features=8).data_info["number_features"] is None  # all numbers


def test_a_fit_stored_before_number_features_were_recorded_loads_without_them(tmp_path):
    data = FileDataModule(path=shops_csv(tmp_path / "shops.csv", shops=3), target="species")
    state = fit_as_state(data.prepare().fitted)
    del state["number_features"]  # as a checkpoint written before it
    assert fit_from_state(state, "old.ckpt").number_features is None  # PLR: all but codes


def test_a_shop_the_fit_never_saw_gets_the_code_minus_one(tmp_path):
    data = FileDataModule(
        path=shops_csv(tmp_path / "shops.csv", shops=30),
        target="species",
        category_embedding_min_levels=10,
    )
    new = pd.DataFrame({"size": [0.0, 0.0], "colour": ["red", "red"], "shop": ["shop3", "mall"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    codes = file_with_the_fit_of(data, tmp_path / "new.csv").tensors["predict"][0][:, -1]
    levels = sorted(f"shop{i}" for i in range(30))  # shop0, shop1, shop10, ...
    assert codes.tolist() == [levels.index("shop3"), -1]


def test_a_category_level_minimum_under_two_is_refused(tmp_path):
    with pytest.raises(InputError, match="category_embedding_min_levels must be at least 2"):
        FileDataModule(path="x.csv", category_embedding_min_levels=1)
