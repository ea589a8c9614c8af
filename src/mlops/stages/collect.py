"""Collect the training set of a retrain (``make collect``; the first step of ``make retrain``).

Inputs: the config (``retrain`` and ``drift`` sections), the champion's lineage record (its
training files are the reference, as in ``make drift``), and the new data (``drift.current``,
or ``--current``).

Captured traffic (``drift.current: capture``) is first turned into training rows: the captured
rows that ``labels.source`` labels, written to ``reports/retrain/captured.parquet`` (committed on
the retrain branch with the manifest, so the PR names exactly what it trained on).

Steps: ``retrain.window`` picks the files (``reference_plus_current``: the champion's training
files plus the new ones, a file already in the reference counted once; ``current_only``),
optionally without rows older than ``retrain.max_age_days``; the held-out rows must include rows
of the new period (else the comparison would not test the new data).

Outputs, in ``reports/retrain/``: ``manifest.json`` (the staged data manifest: URIs, S3 object
versions, sha256, rows, time window; ``make propose`` moves it to ``retrain.manifest`` once the
comparison is done) and ``collect.json`` (window, rows, held-out counts). The next stages of
``make retrain`` (validate, train, compare) read that manifest as their data.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from mlops import sources
from mlops.champion import for_reference, training_sources
from mlops.config import Config
from mlops.context import Context, Result
from mlops.data import Dataset, features_of, holdout_mask, infer_features, load
from mlops.errors import DataError
from mlops.io import atomic_path, atomic_write_json, fingerprint_files, sha256_file
from mlops.traffic import is_capture, labelled_rows
from mlops.manifest import DataFile, build_manifest, staged_paths, time_range, write_manifest

log = logging.getLogger(__name__)


def run(ctx: Context, current: str | None = None) -> Result:
    """Build the retrain's training set; the next stages of the composition use it as their data."""
    config = ctx.config
    staged, collected = staged_paths(config.reports_dir)
    current_source = current or config.drift.current
    with tempfile.TemporaryDirectory(prefix="mlops-collect-") as temp:
        workdir = Path(temp)
        time_column = config.data.time_column
        files = []
        champion = for_reference(config)
        captured = is_capture(current_source)
        reference = collect_files(training_sources(config, champion), "reference", workdir, time_column) \
            if config.retrain.window == "reference_plus_current" or captured else []
        if config.retrain.window == "reference_plus_current":
            files += reference
        # Captured traffic: read once with the reference (its dtypes) in hand, written beside the manifest.
        current_location = _captured_file(config, current_source, champion, reference, staged.parent) \
            if captured else config.resolve(current_source)
        files += collect_files([current_location], "current", workdir, time_column)
        files, window = _window(config, files)
        if not any(f.role == "current" for f, _, _ in files):
            raise DataError(f"drift.current ({current_source}) adds no new file to the training set "
                            "(every file is already in the reference); nothing to retrain on")
        frame = pl.concat([f for _, f, _ in files], how="diagonal_relaxed")
        fingerprint = fingerprint_files([local for _, _, local in files])
    roles = np.concatenate([np.full(f.height, d.role == "current") for d, f, _ in files])
    held_out = holdout_mask(config, frame)
    new_period = held_out & roles
    if not new_period.any():
        raise DataError(
            f"none of the {int(held_out.sum())} held-out rows is from the new period, so the comparison "
            f"would not test the new data; use split.method: time or a larger drift.current batch"
        )
    manifest = build_manifest(staged, [d for d, _, _ in files], window=window, rows=frame.height,
                              created_by="make retrain")
    write_manifest(staged, manifest)
    record = {"current": current_source, "window": window, "rows": frame.height,
              "held_out_rows": int(held_out.sum()), "held_out_new_period_rows": int(new_period.sum()),
              "held_out_reference_rows": int((held_out & ~roles).sum())}
    if record["held_out_reference_rows"]:
        log.warning("%s of %s held-out rows are from the reference period (split.method %s)",
                    record["held_out_reference_rows"], record["held_out_rows"], config.split.method)
    atomic_write_json(collected, record)
    ctx.data = str(staged)
    ctx.label = os.path.relpath(config.resolve(config.retrain.manifest), config.root)
    ctx.dataset = Dataset(frame=frame, files=tuple(d.uri for d, _, _ in files), fingerprint=fingerprint)
    return Result(message=f"Collected {frame.height} rows from {len(files)} file(s) -> {staged}")


def _captured_file(config: Config, source: str, champion, reference: list, folder: Path) -> str:
    """The labelled captured rows as a Parquet file beside the staged manifest (``reference``: its collected files)."""
    frame = pl.concat([f for _, f, _ in reference], how="diagonal_relaxed")
    features = features_of(champion.metadata).all if champion.metadata else infer_features(config, frame).all
    rows = labelled_rows(config, source, frame, features)
    path = folder / "captured.parquet"
    with atomic_path(path) as temp:
        rows.write_parquet(temp)
    log.info("%d labelled captured rows -> %s", rows.height, path)
    return str(path)


def collect_files(locations: list[str], role: str, workdir: Path,
                  time_column: str | None) -> list[tuple[DataFile, pl.DataFrame, Path]]:
    """Every file behind ``locations`` with its sha256, size, rows and time range, its rows, and a local copy."""
    found = []
    for location in locations:
        entries = sources.entries(location, versions=True)
        if not entries:
            raise DataError(f"{role} data: no CSV or Parquet files found at {location}; "
                            "check drift.current in the config")
        for entry in entries:
            local = sources.local_copy(entry, workdir, len(found))
            frame = load(str(local), label=f"{role} data").frame
            first, last = time_range(frame, time_column)
            found.append((DataFile(uri=str(entry["uri"]), role=role, sha256=sha256_file(local),
                                   bytes=local.stat().st_size, rows=frame.height, version_id=entry.get("version_id"),
                                   etag=entry.get("etag"), first=first, last=last), frame, local))
    return found


def _window(config: Config, files: list[tuple[DataFile, pl.DataFrame, Path]]) -> tuple[list, dict]:
    """Drop duplicate files (same sha256) and, with max_age_days, rows older than the window."""
    unique, seen = [], set()
    for data_file, frame, local in files:
        if data_file.sha256 in seen:
            log.info("%s is already in the training set (same sha256); counted once", data_file.uri)
            continue
        seen.add(data_file.sha256)
        unique.append((data_file, frame, local))
    column, days = config.data.time_column, config.retrain.max_age_days
    window = {"mode": config.retrain.window, "time_column": column, "max_age_days": days, "from": None, "to": None}
    if column:
        lasts = [f.last for f, _, _ in unique if f.last]
        firsts = [f.first for f, _, _ in unique if f.first]
        window.update({"from": min(firsts) if firsts else None, "to": max(lasts) if lasts else None})
    if days and column:
        latest = max(frame.get_column(column).max() for _, frame, _ in unique)
        cutoff = latest - timedelta(days=days)
        kept = []
        for data_file, frame, local in unique:
            frame = frame.filter(pl.col(column) >= cutoff)
            if frame.height:
                kept.append((data_file, frame, local))
        unique = kept
        window["from"] = str(cutoff)
    return unique, window
