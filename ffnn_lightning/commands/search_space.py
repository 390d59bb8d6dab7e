"""A hyperparameter search space in YAML, keyed by the command line's own option names.

    model.network.hidden: {type: categorical, choices: [[32], [64, 64]]}
    model.optimizer: {type: categorical, choices: [torch.optim.Adam, torch.optim.SGD]}
    model.optimizer.init_args.lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
    model.network.dropout: {type: float, low: 0.0, high: 0.5, step: 0.1}
    data.init_args.batch_size: {type: int, low: 16, high: 128, log: true}

Each entry is one of Optuna's distributions (``float``/``int`` with ``low``, ``high`` and
optionally ``log`` or ``step``; ``categorical`` with ``choices``); a trial's values become
``--<name>=<value>`` options of ``fit``.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from pathlib import Path
from typing import Any

import yaml

from ffnn_lightning.errors import InputError

KINDS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}}
KINDS["categorical"] = {"choices"}


class SearchSpace:
    """The entries of a search-space file, checked: a bad entry fails before any trial runs."""

    def __init__(self, entries: dict[str, dict[str, Any]], source: str = "search space") -> None:
        if not isinstance(entries, dict) or not entries:
            raise InputError(f"{source} names no option to search: give at least one entry.")
        # a class (model.optimizer) before the options of its init_args that follow it
        self.entries = dict(sorted(entries.items(), key=lambda item: item[0].count(".")))
        for name, entry in self.entries.items():
            _check_entry(name, entry, source)
        self.source = source

    @classmethod
    def from_file(cls, path: Path) -> SearchSpace:
        if not path.is_file():
            raise InputError(f"Search space {str(path)!r} does not exist.")
        return cls(yaml.safe_load(path.read_text()), str(path))

    def suggest(self, trial) -> dict[str, Any]:
        """The trial's value of each option (a list or mapping choice as YAML text)."""
        values = {}
        for name, entry in self.entries.items():
            kind, options = entry["type"], {k: v for k, v in entry.items() if k != "type"}
            if kind == "categorical":
                values[name] = trial.suggest_categorical(name, _choices(entry["choices"]))
            elif kind == "float":
                values[name] = trial.suggest_float(name, **options)
            else:
                values[name] = trial.suggest_int(name, **options)
        return values

    def first_values(self) -> dict[str, Any]:
        """A value of every entry (the first choice, the low end), to check the options parse."""
        return {
            name: _choices(e["choices"])[0] if e["type"] == "categorical" else e["low"]
            for name, e in self.entries.items()
        }

    def check_names(self, config: dict) -> None:
        """Refuse an option the command line does not have (``config`` is the flat
        ``--print_config`` of the run), naming the closest valid ones. Names compare without
        their ``init_args`` parts, which the command line may leave out
        (``model.network.hidden`` is ``model.init_args.network.init_args.hidden``)."""
        valid = {_short(key) for key in config}
        valid |= {key.removesuffix(".class_path") for key in valid if key.endswith("class_path")}
        # classes chosen here (an optimizer; a scheduler, null by default)
        chosen = {_short(n) for n, e in self.entries.items() if e["type"] == "categorical"}
        for name in map(_short, self.entries):
            if name in valid:
                continue
            if any(name.startswith(f"{cls}.") for cls in chosen & valid):
                continue  # an argument of a class chosen at run time; the trial's parse checks it
            close = difflib.get_close_matches(name, sorted(valid), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise InputError(f"{self.source}: the command line has no option {name!r}.{hint}")


def as_options(values: dict[str, Any]) -> list[str]:
    """``--name=value`` for each value, in the space's order (a class before its arguments)."""
    return [f"--{name}={_text(value)}" for name, value in values.items()]


def flat_config(print_config: str) -> dict[str, Any]:
    """``--print_config``'s YAML as ``{dotted.name: value}``."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        flat[prefix.rstrip(".")] = node

    walk(yaml.safe_load(print_config), "")
    flat.pop("", None)
    return flat


def printed_config(parse: Any, args: list[str]) -> str:
    """What ``parse(args + ['--print_config'])`` prints, or the parser's own error in one line
    (it would exit with the usage text)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parse([*args, "--print_config"])
        except SystemExit as done:
            if done.code:
                lines = err.getvalue().splitlines()
                starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
                said = " ".join(line.strip() for line in lines[starts[-1] :]) if starts else ""
                said = said.removeprefix("error: ") or "they do not parse"
                raise InputError(f"The options of a trial are refused: {said}") from None
    return out.getvalue()


def _check_entry(name: str, entry: Any, source: str) -> None:
    where = f"{source}: {name}"
    if not isinstance(entry, dict) or entry.get("type") not in KINDS:
        raise InputError(f"{where} needs a type: one of {sorted(KINDS)}, got {entry!r}.")
    unknown = set(entry) - KINDS[entry["type"]] - {"type"}
    if unknown:
        allowed = sorted(KINDS[entry["type"]])
        raise InputError(
            f"{where}: unknown keys {sorted(unknown)}; a {entry['type']} takes {allowed}."
        )
    if entry["type"] == "categorical":
        if not isinstance(entry.get("choices"), list) or not entry["choices"]:
            raise InputError(
                f"{where}: choices must be a non-empty list, got {entry.get('choices')!r}."
            )
        return
    low, high = entry.get("low"), entry.get("high")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        raise InputError(f"{where}: low and high must be numbers, got {low!r} and {high!r}.")
    if low > high:
        raise InputError(f"{where}: low ({low}) is above high ({high}).")
    if entry.get("log") and low <= 0:
        raise InputError(f"{where}: a log scale needs low > 0, got {low}.")
    if entry.get("log") and entry.get("step"):
        raise InputError(f"{where}: log and step cannot be combined (Optuna's rule).")


def _choices(choices: list) -> list:
    """Optuna stores scalar choices only: a list or mapping choice becomes its YAML text."""
    return [
        c if c is None or isinstance(c, bool | int | float | str) else _text(c) for c in choices
    ]


def _text(value: Any) -> str:
    """A value as the command line takes it: YAML in flow style for lists and mappings."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _short(option: str) -> str:
    """An option's name without its ``init_args`` parts."""
    return option.replace(".init_args.", ".").removesuffix(".init_args")
