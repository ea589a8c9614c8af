"""Reading data, choosing features, splitting, and fingerprinting.

Input: a data source from the config: a local path, a glob, or an ``s3://`` URI (a key or a
prefix), of CSV or Parquet files, or a ``.json`` data manifest (:mod:`mlops.manifest`).
Output: a polars DataFrame (validation works on it), converted to pandas for scikit-learn. The
held-out split is a pure function of the config and the data, so every model compared is scored
on the same rows.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from mlops import s3, sources
from mlops.config import Config
from mlops.errors import DataError
from mlops.io import fingerprint_files
from mlops.manifest import load_manifest

if TYPE_CHECKING:  # pandas loads with scikit-learn, when rows are converted (drift's decision path skips ~0.7 s)
    import pandas as pd

log = logging.getLogger(__name__)

_READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}  # keys: sources.DATA_SUFFIXES


@dataclass(frozen=True)
class Dataset:
    """Loaded data plus where it came from."""

    frame: pl.DataFrame
    files: tuple[str, ...]
    fingerprint: str

    @property
    def rows(self) -> int:
        """Number of rows."""
        return self.frame.height


def _read_one(path: str, label: str) -> pl.DataFrame:
    kind = _READERS.get(Path(path).suffix.lower())
    if kind is None:
        raise DataError(f"{label}: {path} is neither .csv nor .parquet; convert it or rename it")
    if os.path.getsize(path) == 0:
        raise DataError(f"{label}: {path} is empty (0 bytes); point it at a file with a header and rows")
    if kind == "csv":
        _check_csv_header(path, label)
    try:
        if kind == "csv":
            return pl.read_csv(path, try_parse_dates=True, infer_schema_length=20_000)
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{label}: cannot read {path} as {kind}: {str(exc).splitlines()[0]}") from None


def _check_csv_header(path: str, label: str) -> None:
    """A repeated column name, or a header that is one column holding another delimiter, is refused with the fix."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        header = next(csv.reader([handle.readline()]), [])
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{label}: {path} names the column(s) {repeated} more than once in its header; "
                        "rename or drop the duplicates")
    if len(names) == 1:
        for delimiter, word in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if delimiter in names[0]:
                raise DataError(f"{label}: {path} has one column named {names[0][:60]!r}: it looks {word}-separated. "
                                "Save it comma-separated (the CSV reader expects commas)")


def load(source: str, label: str = "data.source") -> Dataset:
    """Read every file of ``source`` into one frame; ``label`` names the config key in errors."""
    if source.endswith(".json"):  # a data manifest (mlops.manifest): exactly the files it pins
        frame, files, fingerprint = load_manifest(source, label, _read_one)
        return Dataset(frame=frame, files=files, fingerprint=fingerprint)
    with tempfile.TemporaryDirectory(prefix="mlops-data-") as workdir:
        found = sources.entries(source)
        if not found:
            raise DataError(
                f"{label}: no data found at {source}; check the path in mlops.yaml "
                "(a file, a folder, a glob, or an s3:// URI of .csv/.parquet files)"
            )
        paths = [str(sources.local_copy(entry, Path(workdir), index)) for index, entry in enumerate(found)]
        frames = [_read_one(path, label) for path in paths]
        fingerprint = fingerprint_files(paths)
    try:
        frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{label}: the files at {source} do not share columns/types: {exc}") from None
    if frame.height == 0:
        raise DataError(f"{label}: {source} has a header but no rows; add data rows")
    log.info("loaded %s rows x %s columns from %s", frame.height, frame.width, source)
    files = tuple(paths) if not s3.is_s3(source) else (source,)
    return Dataset(frame=frame, files=files, fingerprint=fingerprint)


def load_many(locations: list[str], label: str) -> Dataset:
    """Read several sources (each a path, glob, s3:// URI or manifest) into one frame."""
    parts = [load(location, label=label) for location in locations]
    if len(parts) == 1:
        return parts[0]
    try:
        frame = pl.concat([p.frame for p in parts], how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{label}: {locations} do not share columns/types: {exc}") from None
    files = tuple(f for p in parts for f in p.files)
    local = [f for f in files if "://" not in f]
    if len(local) == len(files):
        fingerprint = fingerprint_files(local)
    else:
        fingerprint = hashlib.sha256("".join(p.fingerprint for p in parts).encode()).hexdigest()
    return Dataset(frame=frame, files=files, fingerprint=fingerprint)


def load_training(config: Config) -> Dataset:
    """The training data named by ``data.source``."""
    return load(config.resolve(config.data.source))


@dataclass(frozen=True)
class Features:
    """The model's input columns, split by kind."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def all(self) -> list[str]:
        """Every feature column, numeric first."""
        return [*self.numeric, *self.categorical]


def features_of(metadata: dict) -> Features:
    """The feature columns a model's lineage record names."""
    return Features(tuple(metadata["features"]["numeric"]), tuple(metadata["features"]["categorical"]))


def infer_features(config: Config, frame: pl.DataFrame) -> Features:
    """Feature columns from config, or inferred from dtypes (everything but target/id/time/drop)."""
    data = config.data
    excluded = {data.target, data.id_column, data.time_column, *data.drop_columns} - {None}
    if data.target not in frame.columns:
        raise DataError(
            f"target column '{data.target}' (data.target in {config.path}) is not in the data; "
            f"columns are: {', '.join(frame.columns)}"
        )
    numeric = data.numeric_features
    categorical = data.categorical_features
    candidates = [c for c in frame.columns if c not in excluded]
    if numeric is None:
        numeric = [c for c in candidates if frame.schema[c].is_numeric() and c not in (categorical or [])]
    if categorical is None:
        categorical = [
            c for c in candidates
            if c not in numeric and (frame.schema[c] in (pl.String, pl.Categorical, pl.Boolean, pl.Enum))
        ]
    missing = [c for c in [*numeric, *categorical] if c not in frame.columns]
    if missing:
        raise DataError(
            f"feature columns {missing} (data.numeric_features/categorical_features in {config.path}) "
            f"are not in the data; columns are: {', '.join(frame.columns)}"
        )
    if not numeric and not categorical:
        raise DataError(f"no feature columns found; list them under data.numeric_features in {config.path}")
    return Features(numeric=tuple(numeric), categorical=tuple(categorical))


def _stable_unit_interval(values: pl.Series, seed: int) -> np.ndarray:
    """Map ids to [0, 1) by hashing, so a row's split does not depend on row order or new rows."""
    hashed = values.cast(pl.String).hash(seed=seed).to_numpy()
    return (hashed % np.uint64(1_000_003)).astype(np.float64) / 1_000_003


def holdout_mask(config: Config, frame: pl.DataFrame) -> np.ndarray:
    """Boolean mask of the held-out rows, a pure function of config and data."""
    settings = config.split
    if settings.method == "time":
        column = config.data.time_column
        if column not in frame.columns:
            raise DataError(f"time column '{column}' (data.time_column in {config.path}) is not in the data")
        times = frame.get_column(column)
        cutoff = times.quantile(1.0 - settings.test_size, interpolation="lower")
        mask = (times > cutoff).to_numpy()
    elif config.data.id_column and config.data.id_column in frame.columns:
        mask = _stable_unit_interval(frame.get_column(config.data.id_column), settings.seed) < settings.test_size
    else:
        rng = np.random.default_rng(settings.seed)
        mask = rng.random(frame.height) < settings.test_size
    mask = np.asarray(mask, dtype=bool)
    if mask.all() or not mask.any():
        raise DataError(
            f"the {settings.method} split left {'no training' if mask.all() else 'no held-out'} rows "
            f"from {frame.height}; adjust split.test_size in {config.path} or add data"
        )
    return mask


def to_pandas(frame: pl.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Convert (a column subset of) a polars frame for scikit-learn; strings stay strings, nulls NaN."""
    subset = frame.select(columns) if columns is not None else frame
    return subset.to_pandas()


@dataclass(frozen=True)
class Split:
    """Train and held-out parts as pandas, features and target separated."""

    x_train: pd.DataFrame
    y_train: pd.Series
    x_test: pd.DataFrame
    y_test: pd.Series
    test_frame: pl.DataFrame


def split(config: Config, frame: pl.DataFrame, features: Features) -> Split:
    """Split into train/held-out by :func:`holdout_mask`."""
    mask = holdout_mask(config, frame)
    mask_series = pl.Series(mask)
    train, test = frame.filter(~mask_series), frame.filter(mask_series)
    target = config.data.target
    return Split(
        x_train=to_pandas(train, features.all),
        y_train=train.get_column(target).to_pandas(),
        x_test=to_pandas(test, features.all),
        y_test=test.get_column(target).to_pandas(),
        test_frame=test,
    )
