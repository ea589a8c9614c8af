"""Data manifests: a reviewable, pinned list of the files a model is trained on.

Input (write): the files a retrain chose, each a local path or an ``s3://bucket/key`` object.
Output: ``data/manifest.json`` (``retrain.manifest``) listing, per file, its URI (local paths
relative to the manifest's folder), role (reference or current), sha256, bytes, rows, first and
last timestamp, and for S3 the object's ``VersionId`` and ETag when the bucket has versioning;
plus the training window and totals. It is small text, so a retrain pull request shows exactly
which data changed.

Input (read): ``data.source`` naming a ``.json`` manifest. Output: the rows of exactly those
files (S3 objects fetched at their recorded version), each checked against its sha256, so the
training data cannot change silently under a merged config.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import polars as pl

from mlops import s3
from mlops.errors import DataError
from mlops.io import atomic_write_json, fingerprint_files, read_json, sha256_file

log = logging.getLogger(__name__)

FORMAT = "mlops-data-manifest/1"
RETRAIN_DIR = "retrain"  # reports/retrain/: a retrain's staged manifest, its record, and its reports


def staged_paths(reports_dir: Path) -> tuple[Path, Path]:
    """Where ``make collect`` stages a retrain's manifest and its record (read by ``make propose``)."""
    return reports_dir / RETRAIN_DIR / "manifest.json", reports_dir / RETRAIN_DIR / "collect.json"


@dataclass(frozen=True)
class DataFile:
    """One file of a training set, as the manifest records it."""

    uri: str  # absolute local path or s3:// URI
    role: str
    sha256: str
    bytes: int
    rows: int
    version_id: str | None = None
    etag: str | None = None
    first: str | None = None
    last: str | None = None


def time_range(frame: pl.DataFrame, column: str | None) -> tuple[str | None, str | None]:
    """First and last value of the time column, as ISO text."""
    if not column or column not in frame.columns or frame.height == 0:
        return None, None
    series = frame.get_column(column)
    return str(series.min()), str(series.max())


def build_manifest(path: Path, files: list[DataFile], *, window: dict, rows: int, created_by: str) -> dict:
    """The manifest record; local URIs become relative to the manifest's folder."""
    base = path.resolve().parent
    record = {
        "format": FORMAT,
        "created_by": created_by,
        "window": window,
        "rows": rows,
        "files": [
            {
                "uri": f.uri if "://" in f.uri else os.path.relpath(f.uri, base),
                "role": f.role, "sha256": f.sha256, "bytes": f.bytes, "rows": f.rows,
                **({"version_id": f.version_id} if f.version_id else {}),
                **({"etag": f.etag} if f.etag else {}),
                "first": f.first, "last": f.last,
            }
            for f in files
        ],
    }
    return record


def write_manifest(path: Path, record: dict) -> None:
    """Write the manifest atomically."""
    atomic_write_json(path, record)
    log.info("wrote %s: %s files, %s rows", path, len(record["files"]), record["rows"])


def listed_files(source: str) -> list[dict]:
    """The files a manifest lists, local URIs made absolute (resolved against the manifest's folder)."""
    base = Path(source).resolve().parent
    return [{**entry, "uri": entry["uri"] if "://" in entry["uri"] else str(base / entry["uri"])}
            for entry in read_json(source).get("files", [])]


def load_manifest(source: str, label: str, reader: Callable[[str, str], pl.DataFrame]):
    """Every file the manifest lists, checked against its sha256: (frame, files, fingerprint).

    ``reader(path, label)`` reads one CSV or Parquet file (mlops.data passes its own reader).
    """
    path = Path(source)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{label}: cannot read the data manifest {source}: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not record.get("files"):
        raise DataError(f"{label}: {source} is not a data manifest ({FORMAT} with a non-empty 'files' list)")
    frames, files, locals_ = [], [], []
    with tempfile.TemporaryDirectory(prefix="mlops-manifest-") as workdir:
        for index, entry in enumerate(record["files"]):
            uri = entry["uri"]
            if s3.is_s3(uri):
                local = s3.download(uri, Path(workdir) / f"{index:05d}{Path(uri).suffix}", entry.get("version_id"))
            else:
                local = path.resolve().parent / uri
                uri = str(local)
                if not local.is_file():
                    raise DataError(f"{label}: {local} (listed in the manifest {source}) does not exist")
            actual = sha256_file(local)
            if actual != entry["sha256"]:
                raise DataError(
                    f"{label}: {entry['uri']} changed since the manifest {source} was written "
                    f"(sha256 {actual[:12]}..., manifest says {entry['sha256'][:12]}...); restore the file "
                    "or run `make retrain` to write a new manifest"
                )
            locals_.append(local)
            frames.append(reader(str(local), label))
            files.append(uri)
        fingerprint = fingerprint_files(locals_)
    try:
        frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{label}: the files in {source} do not share columns/types: {exc}") from None
    window = record.get("window") or {}
    column = window.get("time_column")
    if window.get("max_age_days") and window.get("from") and column in frame.columns:
        # The same rows the retrain trained on: the window's cutoff applies on every load.
        frame = frame.filter(pl.col(column) >= datetime.fromisoformat(window["from"]))
    log.info("loaded %s rows from %s files of the manifest %s", frame.height, len(files), source)
    return frame, tuple(files), fingerprint
