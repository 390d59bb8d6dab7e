"""A checkpoint from a stranger runs no code: a class path stored in it that points outside the
package and its libraries is refused in one line before anything imports it, unless the user
names the class or trusts the checkpoint whole."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from ffnn_lightning.cli import main, run
from ffnn_lightning.commands.export import main as export
from ffnn_lightning.training.checkpoints import named_modules, stored_class_paths
from tests.conftest import CONFIGS

ADAM = str(CONFIGS / "blobs_adam.yaml")
SMALL = ["--data.init_args.n_samples=300", "--trainer.max_epochs=1"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
# a module that leaves a file behind when it is imported
EVIL = "from pathlib import Path\nPath('{marker}').write_text('ran')\nclass Thing: pass\n"


def plant(hparams: dict, datamodule: dict, where: str) -> None:
    """Point one stored name of a checkpoint at ``evil.Thing``."""
    places = {
        "module": lambda: hparams.__setitem__("_class_path", "evil.Thing"),
        "network": lambda: hparams["network"].__setitem__("class_path", "evil.Thing"),
        "activation": lambda: hparams["network"]["init_args"].__setitem__(
            "activation", "evil.Thing"
        ),
        "loss": lambda: hparams.__setitem__("loss", "evil.Thing"),
        "metrics": lambda: hparams.__setitem__("metrics", {"extra": "evil.Thing"}),
        "instantiator": lambda: hparams.__setitem__("_instantiator", "evil.make"),
        # its fit stays under the class's name, as a stranger's own class would store it
        "data module": lambda: datamodule.__setitem__(
            "_class_path", "evil." + datamodule["_class_path"].rpartition(".")[2]
        ),
        "nested": lambda: hparams["network"]["init_args"].__setitem__(
            "norm", {"class_path": "evil.sub.make_norm"}
        ),
    }
    places[where]()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fit")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        cli = main(["fit", "--config", ADAM, *SMALL, *QUIET])
        return Path(cli.trainer.checkpoint_callback.best_model_path).resolve()


@pytest.fixture
def stranger(trained, tmp_path, monkeypatch):
    """A folder where an importable ``evil`` module would leave ``ran.txt``; returns a maker of
    checkpoints with one stored name pointing at it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "__init__.py").write_text(EVIL.format(marker=tmp_path / "ran.txt"))
    (tmp_path / "evil" / "sub.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    state = torch.load(trained, weights_only=True)

    def make(where: str) -> str:
        changed = copy.deepcopy(state)
        plant(changed["hyper_parameters"], changed["datamodule_hyper_parameters"], where)
        path = tmp_path / f"{where.replace(' ', '_')}.ckpt"
        torch.save(changed, path)
        return str(path)

    return make


PLACES = [
    "module", "network", "activation", "loss", "metrics", "instantiator", "data module", "nested",
]  # fmt: skip


@pytest.mark.parametrize("where", PLACES)
@pytest.mark.parametrize("command", ["predict", "validate"])
def test_a_stored_foreign_class_path_is_refused_before_its_module_runs(stranger, where, command):
    checkpoint = stranger(where)
    before = sorted(p.name for p in Path.cwd().iterdir())
    with pytest.raises(SystemExit) as stopped:
        run([command, "--ckpt_path", checkpoint, *QUIET])
    message = str(stopped.value.code)
    assert message.startswith(f"error: {checkpoint} names evil.")
    assert "--weights_only false" in message and "\n" not in message
    assert not Path("ran.txt").exists()
    assert sorted(p.name for p in Path.cwd().iterdir()) == before  # nothing written


@pytest.mark.parametrize("where", ["module", "activation", "instantiator"])
def test_export_refuses_a_stored_foreign_class_path_too(stranger, where):
    checkpoint = stranger(where)
    with pytest.raises(Exception, match="names evil") as stopped:
        export(["--ckpt_path", checkpoint])
    assert "--weights_only false" in str(stopped.value)
    assert not Path("ran.txt").exists() and not Path(checkpoint).with_suffix(".onnx").exists()


def test_a_fit_resumed_from_a_strangers_checkpoint_is_refused(stranger):
    checkpoint = stranger("loss")
    with pytest.raises(SystemExit, match=r"names evil\.Thing"):
        run(["fit", "--config", ADAM, *SMALL, *QUIET, "--ckpt_path", checkpoint])
    assert not Path("ran.txt").exists()


def test_a_class_the_user_names_is_imported(stranger):
    """Naming it is the user's choice to run that module: the refusal is gone (and the
    import happens, as it would for a config of the user's own)."""
    checkpoint = stranger("loss")
    with pytest.raises(SystemExit) as stopped:
        run(["predict", "--ckpt_path", checkpoint, *QUIET, "--model.loss", "evil.Thing"])
    assert "from outside ffnn_lightning" not in str(stopped.value.code)
    assert Path("ran.txt").exists()


def test_the_packages_own_checkpoints_pass(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["predict", "--ckpt_path", str(trained), *QUIET])
    assert (trained.parent.parent / "predictions.csv").is_file()


def test_class_paths_are_found_at_any_depth_and_file_names_are_not():
    stored = {
        "network": {"class_path": "a.B", "init_args": {"act": "c.D", "path": "data.csv"}},
        "parts": [{"class_path": "e.f"}],
        "_instantiator": "g.h",
        "filename": "best-{epoch}",
    }
    assert sorted(stored_class_paths(stored)) == ["a.B", "c.D", "e.f", "g.h"]


def test_a_named_class_names_each_module_above_it():
    named = named_modules(["--model", "my_pkg.nets.Residual", "loss: other.Focal\n"])
    assert {"my_pkg", "my_pkg.nets", "my_pkg.nets.Residual", "other"} <= named


def test_a_stored_data_module_is_not_checked_where_another_replaces_it(stranger):
    """``--data FileDataModule`` reads new rows with the checkpoint's fit: its stored data
    module is never imported, so it is no reason to refuse."""
    checkpoint = stranger("data module")
    Path("new.csv").write_text(",".join(f"x{i}" for i in range(64)) + "\n" + "0," * 63 + "0\n")
    run(
        [
            "predict",
            "--ckpt_path",
            checkpoint,
            *QUIET,
            "--data=FileDataModule",
            "--data.path=new.csv",
        ]
    )
    assert Path("predictions-new.csv").is_file() and not Path("ran.txt").exists()
