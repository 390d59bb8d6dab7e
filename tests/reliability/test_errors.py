"""Bad input and diverging runs end in one clear line and a non-zero exit, not a traceback."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path

import pytest
import torch

from ffnn_lightning.cli import run
from tests.conftest import CONFIGS

ADAM = str(CONFIGS / "blobs_adam.yaml")
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """``python -m ffnn_lightning ARGS`` in ``cwd``, run in this process through the same
    entry point (a Python start per case would cost 5 s): its exit status and stderr, where
    an exit with a message writes it as Python does. A traceback would fail the test."""
    stderr, here = io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(stderr):
            run([*args, *QUIET])
        code = 0
    except SystemExit as done:
        code = 1 if isinstance(done.code, str) else done.code or 0
        if isinstance(done.code, str):
            stderr.write(done.code + "\n")
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(args, code, "", stderr.getvalue())


def test_a_diverging_run_stops_naming_epoch_and_step_and_writes_no_checkpoint(tmp_path):
    sgd_lr_10 = [
        "--model.optimizer=SGD",
        "--model.optimizer.lr=10",
        "--model.optimizer.momentum=0.9",
    ]
    done = cli("fit", "--config", ADAM, *sgd_lr_10, cwd=tmp_path)
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: The training loss became nan at epoch 0, optimizer step ")
    assert "lower learning rate" in last_line and "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.network.hidden=[256, 0]"], "Every hidden width must be a positive integer"),
        (["--model.network.activation=rellu"], "Unknown activation 'rellu'"),
        (["--data.init_args.batch_size=0"], "batch_size must be a positive integer"),
        (["--data.init_args.val_fraction=1.2"], "val_fraction must be in [0, 1), got 1.2"),
    ],
)
def test_bad_values_are_reported_without_a_traceback(tmp_path, args, message):
    # the model's values are checked when it is built (our one-line "error: ..."); the data
    # module's already while the arguments are parsed (jsonargparse's own report)
    done = cli("fit", "--config", ADAM, *args, "--trainer.max_epochs=1", cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "lightning_logs").exists()


class RunsCode:
    """Pickles into a call of os.system: what a crafted checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCode(str(marker))}, crafted)
    done = cli("validate", "--config", ADAM, "--ckpt_path", str(crafted), cwd=tmp_path)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: Refused to load '{crafted}': it holds Python objects")
    )
    assert not marker.exists()


def test_a_missing_checkpoint_is_named(tmp_path):
    done = cli("test", "--config", ADAM, "--ckpt_path", "nowhere/last.ckpt", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --ckpt_path 'nowhere/last.ckpt' does not exist."
    )


def test_a_checkpoint_of_another_network_names_the_layer_and_touches_nothing(run_cli):
    from ffnn_lightning.errors import InputError

    short = ["--config", ADAM, "--trainer.max_epochs=1", "--data.init_args.n_samples=300"]
    cli = run_cli("fit", *short)
    run = Path(cli.trainer.log_dir)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    last = str(run / "checkpoints" / "last.ckpt")
    with pytest.raises(InputError, match=r"network.layers.0.weight has shape \[256, 64\] there"):
        run_cli("validate", *short, "--data.init_args.n_features=5", "--ckpt_path", last)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
