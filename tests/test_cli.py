"""The command line: subcommands, configs, run folder, TensorBoard logs, checkpoints."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ffnn_lightning.cli import main
from ffnn_lightning.training.logs import read_scalars
from tests.conftest import CONFIGS

ADAM = str(CONFIGS / "blobs_adam.yaml")
SHORT = ["--trainer.max_epochs=2", "--data.init_args.n_samples=500"]


@pytest.mark.slow  # a Python process; test_output_to_a_file runs the entry point too
def test_module_entry_point_logs_four_scalars_once_per_epoch(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "ffnn_lightning", "fit", "--config", ADAM, *SHORT],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    scalars = read_scalars(tmp_path / "lightning_logs" / "version_0")
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc"):
        assert len(scalars[tag]) == 2, tag


def test_run_folder_holds_config_hyperparameters_and_checkpoints(run_cli):
    cli = run_cli("fit", "--config", ADAM, *SHORT)
    run = Path(cli.trainer.log_dir)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["init_args"]["optimizer"]["class_path"] == "torch.optim.Adam"
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["data_info"]["in_features"] == 64
    assert hparams["network"]["init_args"]["hidden"] == [256, 1024]
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(n.startswith("best-epoch=") for n in checkpoints)


def test_the_parsed_config_is_validated_once_and_any_other_on_each_dump(
    run_cli, monkeypatch, tmp_path
):
    cli = run_cli("fit", "--config", ADAM, *SHORT)
    validated = []
    monkeypatch.setattr(cli.parser, "validate", lambda cfg, **_: validated.append(cfg))
    cli.parser.dump(cli.config)  # as the checkpoint's hyperparameters are written
    for multifile in (False, True):  # as SaveConfigCallback writes config.yaml, and its option
        path = tmp_path / f"config-{multifile}.yaml"
        cli.parser.save(cli.config, path, skip_none=False, multifile=multifile)
    assert validated == []
    changed = cli.config.clone()
    changed["fit.trainer.max_epochs"] = 7
    cli.parser.dump(changed)
    assert [cfg["fit.trainer.max_epochs"] for cfg in validated] == [7]


def test_input_width_is_linked_from_the_data(run_cli):
    cli = run_cli("fit", "--config", ADAM, *SHORT, "--data.init_args.n_features=5")
    assert cli.model.network.layers[0].in_features == 5


def config_args(path: Path) -> list[str]:
    """A whole config alone; an overlay (in a subfolder) on a base it fits."""
    if path.parent == CONFIGS:
        return ["--config", str(path)]
    if path.parent.name == "ablation":
        return [
            "--config",
            str(CONFIGS / "circles.yaml"),
            "--config",
            str(path.parent.parent / "strong.yaml"),
            "--config",
            str(path),
        ]
    base = "regression.yaml" if path.stem == "huber" else "circles.yaml"
    return ["--config", str(CONFIGS / base), "--config", str(path)]


# one of each shape by default (a base, an overlay, a preset, nested parts); all under -m slow
SHAPES = ("blobs_adam", "linear", "strong", "ensemble", "tabm", "keel")
RUN_CONFIGS = [
    pytest.param(
        p, id=str(p.relative_to(CONFIGS)), marks=[] if p.stem in SHAPES else [pytest.mark.slow]
    )
    for p in sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name != "search")
]


@pytest.mark.parametrize("config", RUN_CONFIGS)
def test_every_config_prints_a_config_that_round_trips(config, tmp_path, capsys):
    def printed(*args: str) -> str:
        with pytest.raises(SystemExit) as done:
            main(["fit", *args, "--print_config"])
        assert done.value.code in (None, 0)
        return capsys.readouterr().out

    first = printed(*config_args(config))
    (tmp_path / "printed.yaml").write_text(first)
    assert printed("--config", str(tmp_path / "printed.yaml")) == first


def test_validate_test_and_predict_use_the_checkpoint(run_cli, caplog):
    cli = run_cli("fit", "--config", ADAM, *SHORT)
    last = str(Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt")
    fit_val_loss = cli.trainer.callback_metrics["val/loss"].item()

    validated = run_cli("validate", "--config", ADAM, *SHORT, "--ckpt_path", last)
    assert validated.trainer.callback_metrics["val/loss"].item() == pytest.approx(fit_val_loss)
    tested = run_cli("test", "--config", ADAM, *SHORT, "--ckpt_path", last)
    assert tested.trainer.callback_metrics["test/acc"].item() > 0.9

    run_cli("predict", "--config", ADAM, *SHORT, "--ckpt_path", last)
    predictions = (Path(cli.trainer.log_dir) / "predictions.csv").resolve()
    assert f"written to {predictions}" in caplog.text
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 100  # the 20% held out of 500
    assert list(rows[0]) == ["row", "label", "probability_0", "probability_1", "target"]
    assert [int(r["row"]) for r in rows] == list(range(400, 500))  # the ordered split's tail
    for r in rows:
        assert float(r["probability_0"]) + float(r["probability_1"]) == pytest.approx(1.0)
        assert r["label"] == ("1" if float(r["probability_1"]) > 0.5 else "0")


def test_lr_find_writes_its_suggestion_and_plot_into_the_run_folder(run_cli, caplog):
    cli = run_cli("lr_find", "--config", ADAM, *SHORT, "--num_training=30")
    run = Path(cli.trainer.log_dir)
    assert (run / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((run / "lr_find.csv").open()))
    assert len(rows) > 10 and float(rows[-1]["lr"]) > float(rows[0]["lr"])
    assert "Suggested learning rate: " in caplog.text and "--model.lr " in caplog.text


def test_lr_find_on_a_small_table_searches_at_the_batch_its_size_rule_trains_at(run_cli):
    rule = "--trainer.callbacks+=ffnn_lightning.training.callbacks.SmallTableBatchSize"
    args = ["--data.init_args.batch_size=128", rule, "--num_training=30"]
    cli = run_cli("lr_find", "--config", ADAM, *SHORT, *args)  # 400 training rows
    assert cli.datamodule.batch_size == 32
    assert cli.trainer.train_dataloader.batch_size == 32


def test_a_checkpoint_named_in_a_config_file_brings_its_data_module(run_cli, tmp_path):
    cli = run_cli("fit", "--config", ADAM, *SHORT)
    last = Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt"
    (tmp_path / "evaluate.yaml").write_text(f"ckpt_path: {last}\n")
    validated = run_cli("validate", "--config", "evaluate.yaml")
    assert type(validated.datamodule).__name__ == "BlobsDataModule"
    assert validated.datamodule.n_samples == 500  # the fit's --data.init_args.n_samples
    fit_loss = cli.trainer.callback_metrics["val/loss"].item()
    assert validated.trainer.callback_metrics["val/loss"].item() == pytest.approx(fit_loss)


def test_a_run_of_no_epochs_names_no_checkpoint_it_did_not_write(run_cli, caplog):
    cli = run_cli("fit", "--config", ADAM, *SHORT, "--trainer.max_epochs=0")
    assert not (Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt").exists()
    assert "Finished after 0 epochs" in caplog.text
    assert "Checkpoint, latest" not in caplog.text


def test_predictions_of_a_drawn_split_come_in_the_datas_row_order(run_cli):
    circles = ["--config", str(CONFIGS / "circles.yaml"), "--trainer.max_epochs=1"]
    cli = run_cli("fit", *circles)
    last = str(Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt")
    run_cli("predict", *circles, "--ckpt_path", last)
    rows = list(csv.DictReader((Path(cli.trainer.log_dir) / "predictions.csv").open()))
    positions = [int(r["row"]) for r in rows]
    assert positions == sorted(positions) and positions != list(range(len(positions)))


@pytest.mark.slow  # a process of its own: Python and Lightning start up again
def test_output_to_a_file_is_one_plain_line_per_epoch(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ffnn_lightning", "fit", "--config", ADAM, *SHORT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    epochs = [line for line in done.stdout.splitlines() if line.startswith("Epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["Epoch 1/2", "Epoch 2/2"]
    assert "train/loss=" in epochs[1] and "val/acc=" in epochs[1] and "v_num" not in epochs[1]
    assert "\r" not in done.stdout


def test_validate_and_test_report_in_one_short_line(run_cli, caplog, capsys):
    cli = run_cli("fit", "--config", ADAM, *SHORT)
    last = str(Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt")
    capsys.readouterr()
    run_cli("test", "--config", ADAM, *SHORT, "--ckpt_path", last)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Test: "))
    assert "test/acc=" in line and "test/loss=" in line and len(line) < 100
    assert "Test metric" not in capsys.readouterr().out  # Lightning's table: --verbose true


def test_in_a_terminal_the_bar_ends_on_the_last_epochs_values(run_cli, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    cli = run_cli("fit", "--config", ADAM, *SHORT)
    bar = cli.trainer.progress_bar_callback
    shown = dict(item.split("=") for item in bar.train_progress_bar.postfix.split(", "))
    logged = cli.trainer.callback_metrics["train/loss"].item()
    assert float(shown["train/loss"]) == pytest.approx(logged, rel=1e-2)


def test_top_level_help_loads_neither_torch_nor_lightning():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['ffnn_lightning', '--help']\n"
        "runpy.run_module('ffnn_lightning', run_name='__main__')\n"
        "print(sorted({'torch', 'lightning'} & set(sys.modules)))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert shown.splitlines()[-1] == "[]"
    assert "python -m ffnn_lightning <command> --help" in shown


def test_top_level_help_names_every_command():
    from ffnn_lightning.cli import FFNNCLI
    from ffnn_lightning.commands import COMMANDS, LIGHTNING_COMMANDS, overview

    assert set(LIGHTNING_COMMANDS) == set(FFNNCLI.subcommands())
    listed = {line.split()[0] for line in overview().splitlines() if line.startswith("  ")}
    assert set(COMMANDS) | set(LIGHTNING_COMMANDS) <= listed
