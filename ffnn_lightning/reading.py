"""Reading a table file: CSV or Parquet, compressed or not, with a one-line error for what
cannot be read. It imports neither PyTorch nor Lightning (pandas when first called), so that
``predict`` with an ONNX model reads its file as ``FileDataModule`` does, and quickly."""

from __future__ import annotations

from pathlib import Path

from ffnn_lightning.errors import InputError

COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")


def read_table(path: Path, separator: str = ",", encoding: str = "utf-8"):
    """A CSV or Parquet file (compressed or not) as a DataFrame, with a clear error for what
    cannot be read."""
    import pandas as pd

    if not str(path) or str(path) == ".":
        raise InputError("No data file given: set --data.path to a CSV or Parquet file.")
    if path.is_dir():
        raise InputError(f"Data file {str(path)!r} is a folder: name a CSV or Parquet file.")
    if not path.is_file():
        raise InputError(f"Data file {str(path)!r} does not exist.")
    packed = path.suffix.lower() in COMPRESSED
    kind = Path(path.stem).suffix.lower() if packed else path.suffix.lower()
    # utf-8-sig: a byte-order mark, as spreadsheet programs write, is not a column name
    encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        if kind == ".parquet":
            frame = pd.read_parquet(_unpacked(path) if packed else path)
        else:
            frame = pd.read_csv(path, sep=separator, encoding=encoding)
            _check_separator(path, frame, separator)
            _refuse_duplicate_names(path, separator, encoding)
    except pd.errors.EmptyDataError as error:
        raise InputError(f"Data file {str(path)!r} is empty.") from error
    except LookupError as error:
        raise InputError(f"Unknown encoding {encoding!r} for {str(path)!r} ({error}).") from error
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        remedy = (
            "If it is text in another encoding, name it: --data.init_args.encoding latin-1 "
            "(or cp1252, ...)."
        )
        raise InputError(
            f"Data file {str(path)!r} is not a {encoding.replace('-sig', '').upper()} CSV file "
            f"({_reason(error)}). {remedy}"
        ) from error
    except (OSError, EOFError, ValueError) as error:  # a broken archive, or no Parquet inside
        raise InputError(f"Data file {str(path)!r} cannot be read ({_reason(error)}).") from error
    if frame.empty:
        raise InputError(f"Data file {str(path)!r} has a header but no rows.")
    return frame


def _reason(error: Exception) -> str:
    return (
        f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
        if str(error)
        else type(error).__name__
    )


def _unpacked(path: Path):
    """The content of a compressed file, for a reader that takes no compression itself."""
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return io.BytesIO(archive.read(archive.namelist()[0]))
    if suffix == ".zst":
        import zstandard  # pandas' own choice for .zst

        with path.open("rb") as handle:
            return io.BytesIO(zstandard.ZstdDecompressor().stream_reader(handle).read())
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[suffix]
    with opener(path, "rb") as handle:
        return io.BytesIO(handle.read())


def _refuse_duplicate_names(path: Path, separator: str, encoding: str) -> None:
    """Refuse a CSV header that names a column twice (pandas would rename one ``a.1``)."""
    import pandas as pd

    header = pd.read_csv(path, sep=separator, encoding=encoding, header=None, nrows=1)
    names = [str(name) for name in header.iloc[0].tolist()]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"Data file {str(path)!r} names these columns more than once: {twice}.")


def _check_separator(path: Path, frame, separator: str) -> None:
    """Refuse a file read as one column whose header holds another usual separator."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    found = next((s for s in (";", "\t", "|", ",") if s != separator and s in header), None)
    if found is not None:
        shown = "\\t" if found == "\t" else found
        raise InputError(
            f"Data file {str(path)!r} looks separated by {found!r}, not {separator!r}: set "
            f"--data.separator '{shown}'."
        )
