"""Where one ``fit`` spends its time, from the process's start to its last checkpoint.

    python benchmarks/fit_time.py                                   # phoneme (5,404 rows)
    python benchmarks/fit_time.py --config configs/presets/strong.yaml
    python benchmarks/fit_time.py --name magic --config configs/networks/tabm.yaml

A KEEL table through the command line's own route (``configs/keel.yaml`` and the overlays
given), in this process: the imports and building the CLI (parsing the configs, reading the
table and fitting its preprocessing, which the data's link to the model runs) are timed as
they are; then ``trainer.fit`` runs three times with the same seed: the first fit, as a
command pays it, timed; a second, timed, whose difference from the first is what a process
pays once (importing ``skops``, the checkpoints' format for the preprocessing, at the first
checkpoint; first calls); a third under ``cProfile`` (Lightning's own profilers would send the
fit down Lightning's per-step route, not the fast one it takes), whose shares split the second
into the training steps, validation, checkpoint writes, calibration, epoch-end metrics and
logging, and the rest (the loops' own bookkeeping, the progress of hooks). Prints one table of
seconds and shares.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time

START = time.perf_counter()

# part of the fit -> the functions whose cumulative time it is (none calls another's)
PARTS = {
    "training steps": [("fast_steps.py", "_run_steps"), ("loops/optimization/automatic.py", "run")],
    "validation": [("model/module.py", "validation_step")],
    "checkpoint writes": [("trainer/trainer.py", "save_checkpoint")],
    "calibration": [
        ("calibration.py", "on_validation_batch_end"),
        ("calibration.py", "on_validation_epoch_end"),
        ("calibration.py", "on_fit_end"),
    ],
    "epoch metrics and logging": [
        ("model/module.py", "on_train_epoch_end"),
        ("model/module.py", "on_validation_epoch_end"),
    ],
}


def built(args: argparse.Namespace, folder: str):
    from ffnn_lightning.cli import main as cli_main

    configs = [a for path in args.config for a in ("--config", path)]
    return cli_main(
        [
            "--config", "configs/keel.yaml", *configs,
            f"--data.init_args.name={args.name}",
            f"--trainer.default_root_dir={folder}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ],
        run=False,
    )  # fmt: skip


def fitted(cli) -> float:
    start = time.perf_counter()
    cli.before_fit()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return time.perf_counter() - start


def shares(stats: pstats.Stats, fit: float) -> dict[str, float]:
    """Each part's share of the profiled fit."""
    cumulative = {(path, name): ct for (path, _, name), (_, _, _, ct, _) in stats.stats.items()}
    return {
        part: sum(
            ct
            for (path, name), ct in cumulative.items()
            for end, function in functions
            if name == function and path.endswith(end)
        )
        / fit
        for part, functions in PARTS.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="phoneme", help="a KEEL table")
    parser.add_argument("--config", nargs="*", default=[], help="overlays on configs/keel.yaml")
    args = parser.parse_args()

    import ffnn_lightning.cli  # noqa: F401  (the imports, timed on their own)

    imported = time.perf_counter()
    cli = built(args, tempfile.mkdtemp())
    cli_seconds = time.perf_counter() - imported
    fit = fitted(cli)
    epochs, steps = cli.trainer.current_epoch, cli.trainer.global_step
    warm = fitted(built(args, tempfile.mkdtemp()))  # the process's one-time costs paid by now

    profiler = cProfile.Profile()
    again = built(args, tempfile.mkdtemp())
    profiler.enable()
    profiled = fitted(again)
    profiler.disable()
    part_shares = shares(pstats.Stats(profiler), profiled)

    rows = [
        ("imports (torch, Lightning, the template)", imported - START),
        ("CLI: configs, reading, preprocessing", cli_seconds),
        ("first fit only: one-time costs (skops' import, first calls)", fit - warm),
        *((part, share * warm) for part, share in part_shares.items()),
        ("the loops' own bookkeeping, hooks", (1 - sum(part_shares.values())) * warm),
    ]
    total = imported - START + cli_seconds + fit
    print(f"{args.name} {' '.join(args.config)}: {epochs} epochs, {steps} optimizer steps")
    print("| part | seconds | share |\n|---|---|---|")
    for part, value in rows:
        print(f"| {part} | {value:.2f} | {value / total:.0%} |")
    print(f"| **all** | {total:.2f} | |")


if __name__ == "__main__":
    main()
