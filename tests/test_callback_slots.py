"""The template's own callbacks sit in named slots of the config: shown, changed, replaced and
removed like any other setting, and switched off by Lightning's own switches."""

from __future__ import annotations

import contextlib
import io

import pytest
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

from ffnn_lightning.cli import CALLBACKS, main
from ffnn_lightning.training.callbacks import (
    BestCheckpoint,
    LatestCheckpoint,
    PredictionsWriter,
    RunSummary,
    StopOnDivergence,
    ThrottledProgressBar,
)
from ffnn_lightning.training.fast_steps import FastSteps
from tests.conftest import CONFIGS

ADAM = str(CONFIGS / "blobs_adam.yaml")
SHORT = ["--trainer.max_epochs=1", "--data.init_args.n_samples=300"]
ALL = (ThrottledProgressBar, PredictionsWriter, FastSteps, StopOnDivergence, BestCheckpoint)


def printed(*args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["fit", "--config", ADAM, *args, "--print_config"])
    return yaml.safe_load(out.getvalue())


def kinds(cli) -> set[type]:
    return {type(c) for c in cli.trainer.callbacks}


def test_print_config_shows_every_template_callback_with_its_arguments():
    config = printed()
    for key, (_, _, init_args) in CALLBACKS.items():
        if init_args is None:  # a slot that is off until named
            assert config[key] is None, key
            continue
        assert config[key]["class_path"].startswith("ffnn_lightning."), key
    assert config["checkpoint"]["init_args"]["monitor"] == "val/loss"
    assert config["checkpoint"]["init_args"]["save_weights_only"] is True
    assert config["fast_steps"]["init_args"]["steps_per_call"] == 16
    assert config["trainer"]["callbacks"] is None  # the user's own list starts empty


def test_a_fit_runs_each_slots_callback(run_cli):
    found = kinds(run_cli("fit", "--config", ADAM, *SHORT))
    assert set(ALL) | {LatestCheckpoint, RunSummary} <= found


def test_a_slot_set_to_null_is_removed_from_the_command_line(run_cli):
    cli = run_cli("fit", "--config", ADAM, *SHORT, "--divergence_stop=null", "--summary=null")
    assert StopOnDivergence not in kinds(cli) and RunSummary not in kinds(cli)
    assert FastSteps in kinds(cli)


def test_a_slot_set_to_null_in_yaml_is_removed(run_cli, tmp_path):
    overlay = tmp_path / "lean.yaml"
    overlay.write_text("fast_steps: null\ncheckpoint: null\n")
    cli = run_cli("fit", "--config", ADAM, "--config", str(overlay), *SHORT)
    assert FastSteps not in kinds(cli) and BestCheckpoint not in kinds(cli)
    # Lightning's own default stays (the last epoch's weights): enable_checkpointing turns it off
    assert ModelCheckpoint in kinds(cli) and LatestCheckpoint in kinds(cli)


def test_a_slots_argument_is_changed_by_its_short_name(run_cli):
    cli = run_cli(
        "fit", "--config", ADAM, *SHORT, "--checkpoint.monitor=val/acc", "--checkpoint.mode=max"
    )
    best = cli.trainer.checkpoint_callback
    assert (best.monitor, best.mode) == ("val/acc", "max")
    assert "best-epoch=0" in best.best_model_path


def test_a_slot_takes_another_class(run_cli):
    cli = run_cli("fit", "--config", ADAM, *SHORT, "--progress_bar=TQDMProgressBar")
    assert type(cli.trainer.progress_bar_callback) is TQDMProgressBar


def test_trainer_callbacks_join_the_slots_and_a_bar_there_replaces_the_templates(run_cli):
    cli = run_cli(
        "fit", "--config", ADAM, *SHORT, "--trainer.callbacks+=TQDMProgressBar",
        "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val/loss",
    )  # fmt: skip
    assert type(cli.trainer.progress_bar_callback) is TQDMProgressBar
    assert ThrottledProgressBar not in kinds(cli)
    assert EarlyStopping in kinds(cli) and BestCheckpoint in kinds(cli)


@pytest.mark.parametrize(
    "switch, gone",
    [
        ("--trainer.enable_checkpointing=false", (BestCheckpoint, LatestCheckpoint)),
        ("--trainer.enable_progress_bar=false", (ThrottledProgressBar,)),
        ("--trainer.barebones=true", (BestCheckpoint, LatestCheckpoint, ThrottledProgressBar)),
    ],
)
def test_lightnings_switches_turn_the_templates_parts_off(run_cli, switch, gone):
    extra = ["--trainer.enable_model_summary=false"] if "barebones" in switch else []
    cli = run_cli("fit", "--config", ADAM, *SHORT, switch, *extra)
    assert not set(gone) & kinds(cli)
    assert FastSteps in kinds(cli)


def test_evaluating_writes_no_checkpoint_and_keeps_the_other_parts(run_cli):
    fitted = run_cli("fit", "--config", ADAM, *SHORT)
    best = fitted.trainer.checkpoint_callback.best_model_path
    cli = run_cli("validate", "--config", ADAM, *SHORT, "--ckpt_path", best)
    assert not {BestCheckpoint, LatestCheckpoint} & kinds(cli)
    assert RunSummary in kinds(cli)
