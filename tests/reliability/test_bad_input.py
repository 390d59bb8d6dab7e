"""Every bad input: one clear message, a non-zero exit, and the earlier run left untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ffnn_lightning.cli import main, run
from tests.conftest import CONFIGS

ADAM = str(CONFIGS / "blobs_adam.yaml")
SMALL = ["--data.init_args.n_samples=300", "--trainer.max_epochs=1"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """A finished run in its own folder, and a snapshot of every file it wrote."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "empty.csv").write_text("")
    (folder / "header.csv").write_text("a,b,species\n")
    (folder / "no_target.csv").write_text("a,b\n1,2\n3,4\n")
    (folder / "labels.csv").write_text(
        "a,species\n" + "".join(f"{i},{'xyz'[i % 3]}\n" for i in range(30))
    )
    (folder / "gaps.csv").write_text("a,b,species\n" + "1,,x\n,2,y\n" * 4)  # a gap a row
    (folder / "a_folder").mkdir()
    (folder / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\xfa" * 40)
    (folder / "semicolons.csv").write_text("a;b;species\n" + "1;2;x\n3;4;y\n" * 10)
    (folder / "twice.csv").write_text("a,b,a,species\n" + "1,2,3,x\n4,5,6,y\n" * 10)
    (folder / "empty_column.csv").write_text("a,b,species\n" + "1,,x\n2,,y\n" * 10)
    (folder / "one_class.csv").write_text("a,species\n" + "".join(f"{i},x\n" for i in range(20)))
    (folder / "many_classes.csv").write_text(
        "a,species\n" + "".join(f"{i},c{i % 20}\n" for i in range(40))
    )
    before = os.getcwd()
    os.chdir(folder)
    try:
        cli = main(["fit", "--config", ADAM, *SMALL, *QUIET])
    finally:
        os.chdir(before)
    last = Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt"
    (folder / "truncated.ckpt").write_bytes((folder / last).read_bytes()[:5000])
    return folder, folder / last, snapshot(folder)


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def csv(name: str, *extra: str) -> list[str]:
    return [
        "--data=ffnn_lightning.data.FileDataModule",
        f"--data.path={name}",
        "--data.target=species",
        *extra,
    ]


BAD = {
    "unknown optimizer": (["--model.optimizer=Adamm"], 'Parser key "optimizer"'),
    "unknown activation": (["--model.network.activation=rellu"], "Unknown activation 'rellu'"),
    "unknown loss": (["--model.loss=squared"], "Loss 'squared' does not fit the binary task"),
    "unknown dataset": (["--data=ffnn_lightning.data.NopeDataModule"], 'Parser key "data"'),
    "unknown bundled dataset": (
        ["--data=ffnn_lightning.data.BundledDataModule", "--data.name=mnist"],
        "mnist",
    ),
    "hidden width 0": (
        ["--model.network.hidden=[16, 0]"],
        "Every hidden width must be a positive integer",
    ),
    "negative hidden width": (
        ["--model.network.hidden=[-4]"],
        "Every hidden width must be a positive",
    ),
    "batch size 0": (["--data.init_args.batch_size=0"], "batch_size must be a positive integer"),
    "fraction outside (0, 1)": (
        ["--data.init_args.val_fraction=1.5"],
        "val_fraction must be in [0, 1)",
    ),
    "fractions past 1": (
        ["--data.init_args.val_fraction=0.6", "--data.init_args.test_fraction=0.5"],
        "must leave rows to train on",
    ),
    "too small for the split": (
        ["--data.init_args.n_samples=3", "--data.init_args.test_fraction=0.1"],
        "3 rows are too few",
    ),
    "missing csv": (csv("nowhere.csv"), "Data file 'nowhere.csv' does not exist"),
    "empty csv": (csv("empty.csv"), "Data file 'empty.csv' is empty"),
    "header-only csv": (csv("header.csv"), "has a header but no rows"),
    "csv without the target": (csv("no_target.csv"), "has no column 'species'"),
    "labels outside the classes": (
        csv("labels.csv", "--data.classes=[x, y]"),
        "10 rows have labels outside the declared classes",
    ),
    "nothing left after dropping gaps": (csv("gaps.csv"), "no rows left after dropping"),
    "unknown config key": (["--model.hiden=[3]"], "Option 'hiden' is not accepted"),
    "a folder as the data file": (csv("a_folder"), "Data file 'a_folder' is a folder"),
    "an empty data path": (csv(""), "No data file given: set --data.path"),
    "a binary file named .csv": (csv("binary.csv"), "'binary.csv' is not a UTF-8 CSV file"),
    "a csv separated by ;": (csv("semicolons.csv"), "set --data.separator ';'"),
    "a column named twice": (csv("twice.csv"), "names these columns more than once: ['a']"),
    "an empty feature column": (csv("empty_column.csv"), "the columns ['b'] hold no values"),
    "a single class": (csv("one_class.csv"), "The target holds a single class ('x')"),
    "classes of one or two rows": (
        csv("many_classes.csv", "--data.split=stratified"),
        "The target has 20 classes in 40 rows, 20 of them with at most 2 rows",
    ),
    "a truncated checkpoint": (
        ["--ckpt_path=truncated.ckpt"],
        "--ckpt_path 'truncated.ckpt' is not a readable checkpoint: the file is truncated",
    ),
}


@pytest.mark.parametrize(("args", "message"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_message_and_touches_nothing(
    earlier_run, capsys, monkeypatch, args, message
):
    folder, _, before = earlier_run
    monkeypatch.chdir(folder)
    with pytest.raises(SystemExit) as exited:
        run(["fit", "--config", ADAM, *SMALL, *QUIET, *args])
    code = exited.value.code
    assert code not in (None, 0)
    assert message in (code if isinstance(code, str) else capsys.readouterr().err)
    assert snapshot(folder) == before


def test_a_missing_checkpoint_touches_nothing(earlier_run, monkeypatch):
    folder, _, before = earlier_run
    monkeypatch.chdir(folder)
    with pytest.raises(SystemExit, match=r"--ckpt_path 'gone\.ckpt' does not exist"):
        run(["validate", "--config", ADAM, *SMALL, *QUIET, "--ckpt_path=gone.ckpt"])
    assert snapshot(folder) == before
