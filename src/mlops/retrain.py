"""Retrain on fresh data (``make retrain``) and decide whether the retrain PR may be updated.

Inputs: the config (``retrain`` and ``drift`` sections), the champion's lineage record (its
training files are the reference, as in :mod:`mlops.drift`), the current data
(``drift.current``), the data contract, and the champion model (:func:`mlops.champion.resolve`:
the registry's prod model, else the base branch's).

Steps: build the training set by ``retrain.window`` (``reference_plus_current``: the champion's
training files plus the new files, a file already in the reference counted once;
``current_only``), optionally dropping rows older than ``retrain.max_age_days``; validate it
against the contract (a violation stops here: ``reports/validation.json`` and the error list the
failures); train the challenger on it; compare it with the champion on the held-out rows
(:func:`mlops.compare.compare`), which for ``split.method: time`` are the latest rows, so the new
period's.

Outputs: the data manifest ``retrain.manifest`` (``data/manifest.json``; URIs, S3 object
versions, sha256, rows, time window), ``data.source`` in ``mlops.yaml`` pointed at it (once), a
new model version under ``models/``, and ``reports/retrain/``: ``retrain.json``,
``comparison.md`` (the PR comment: the drift summary, the training data and the comparison),
``compare.json``/``compare.md``/``compare.html`` and a copy of ``drift.json``/``drift.md``.
Those text files, not a model binary, are the reviewable change of a retrain pull request.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from mlops.config import Config
from mlops.data import Dataset, load
from mlops.drift import find_champion, reference_sources
from mlops.errors import DataError, MlopsError
from mlops.io import atomic_write_json, atomic_write_text, read_json
from mlops.manifest import DataFile, build_manifest, fetch_s3, list_s3, sha256_file, time_range, write_manifest
from mlops.report import environment, fit_comment

log = logging.getLogger(__name__)

RETRAIN_DIR = "retrain"


def _expand_local(source: str) -> list[str]:
    if any(char in source for char in "*?["):
        paths = sorted(glob.glob(source, recursive=True))
    elif os.path.isdir(source):
        paths = sorted(str(p) for p in Path(source).iterdir())
    else:
        paths = [source] if os.path.exists(source) else []
    return [p for p in paths if Path(p).suffix.lower() in (".csv", ".parquet", ".pq")]


def _manifest_entries(source: str) -> list[dict]:
    record = read_json(source)
    base = Path(source).resolve().parent
    return [{**entry, "uri": entry["uri"] if "://" in entry["uri"] else str(base / entry["uri"])}
            for entry in record.get("files", [])]


def collect(sources: list[str], role: str, workdir: Path,
            time_column: str | None) -> list[tuple[DataFile, pl.DataFrame]]:
    """Every file behind ``sources`` with its sha256, size, rows and time range, and its rows."""
    found = []
    for source in sources:
        if source.endswith(".json"):
            entries = _manifest_entries(source)
        elif source.startswith("s3://"):
            entries = list_s3(source)
        else:
            entries = [{"uri": path} for path in _expand_local(source)]
        if not entries:
            raise DataError(f"{role} data: no CSV or Parquet files found at {source}; "
                            "check drift.current in the config")
        for entry in entries:
            uri = entry["uri"]
            if uri.startswith("s3://"):
                local = fetch_s3(uri, entry.get("version_id"), workdir / f"{len(found):05d}{Path(uri).suffix}")
            else:
                local = Path(uri)
            frame = load(str(local), label=f"{role} data").frame
            first, last = time_range(frame, time_column)
            found.append((DataFile(uri=str(uri), role=role, sha256=sha256_file(local), bytes=local.stat().st_size,
                                   rows=frame.height, version_id=entry.get("version_id"), etag=entry.get("etag"),
                                   first=first, last=last), frame))
    return found


def _window(config: Config, files: list[tuple[DataFile, pl.DataFrame]]) -> tuple[list, dict]:
    """Drop duplicate files (same sha256) and, with max_age_days, rows older than the window."""
    unique, seen = [], set()
    for data_file, frame in files:
        if data_file.sha256 in seen:
            log.info("%s is already in the training set (same sha256); counted once", data_file.uri)
            continue
        seen.add(data_file.sha256)
        unique.append((data_file, frame))
    column, days = config.data.time_column, config.retrain.max_age_days
    window = {"mode": config.retrain.window, "time_column": column, "max_age_days": days, "from": None, "to": None}
    if column:
        lasts = [f.last for f, _ in unique if f.last]
        firsts = [f.first for f, _ in unique if f.first]
        window.update({"from": min(firsts) if firsts else None, "to": max(lasts) if lasts else None})
    if days and column:
        latest = max(frame.get_column(column).max() for _, frame in unique)
        cutoff = latest - timedelta(days=days)
        kept = []
        for data_file, frame in unique:
            frame = frame.filter(pl.col(column) >= cutoff)
            if frame.height:
                kept.append((data_file, frame))
        unique = kept
        window["from"] = str(cutoff)
    return unique, window


def update_data_source(config: Config, manifest_rel: str) -> bool:
    """Point ``data.source`` in the config file at the manifest (a one-line, reviewable edit)."""
    path = Path(config.path)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r"^(data:\s*\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+source:[ \t]*)([^#\n]*?)([ \t]*(#.*)?)$", re.M)
    match = pattern.search(text)
    if match is None:
        raise MlopsError(f"cannot find data.source in {path}; set it to {manifest_rel} by hand")
    if match.group(2).strip().strip("'\"") == manifest_rel:
        return False
    atomic_write_text(path, text[:match.start(2)] + manifest_rel + text[match.end(2):])
    log.info("data.source in %s now names the manifest %s", path, manifest_rel)
    return True


def _with_source(config: Config, source: str) -> Config:
    data = config.data.model_copy(update={"source": source})
    return config.model_copy(update={"data": data}).located(Path(config.path))


def run(config: Config, *, current_source: str | None = None) -> dict:  # pylint: disable=too-many-locals  # one stage, told in order
    """Build the training set, validate, train, compare; write the manifest and the reports."""
    # pylint: disable-next=import-outside-toplevel  # scikit-learn, pandera and the comparison load only here
    from mlops.champion import resolve
    from mlops.compare import compare, render  # pylint: disable=import-outside-toplevel  # same
    from mlops.data import holdout_mask  # pylint: disable=import-outside-toplevel  # same
    from mlops.schema import load_contract  # pylint: disable=import-outside-toplevel  # same
    from mlops.train import train  # pylint: disable=import-outside-toplevel  # same
    from mlops.validate import raise_if_failed, validate  # pylint: disable=import-outside-toplevel  # same

    started = time.perf_counter()
    settings = config.retrain
    manifest_path = Path(config.resolve(settings.manifest))
    manifest_rel = os.path.relpath(manifest_path, config.root)
    current_source = current_source or config.drift.current
    out = config.reports_dir / RETRAIN_DIR
    with tempfile.TemporaryDirectory(prefix="mlops-retrain-") as temp:
        workdir = Path(temp)
        champion_lineage = find_champion(config, workdir / "lineage")
        time_column = config.data.time_column
        files = []
        if settings.window == "reference_plus_current":
            files += collect(reference_sources(config, champion_lineage), "reference", workdir, time_column)
        files += collect([config.resolve(current_source)], "current", workdir, time_column)
        files, window = _window(config, files)
        if not any(f.role == "current" for f, _ in files):
            raise DataError(f"drift.current ({current_source}) adds no new file to the training set "
                            "(every file is already in the reference); nothing to retrain on")
        frame = pl.concat([f for _, f in files], how="diagonal_relaxed")
        roles = np.concatenate([np.full(f.height, d.role == "current") for d, f in files])
        validation = validate(frame, load_contract(config), source=manifest_rel)
        atomic_write_json(config.reports_dir / "validation.json", validation)
        raise_if_failed(validation)

        new_config = _with_source(config, manifest_rel)
        digest = hashlib.sha256()
        for data_file, _ in files:
            digest.update(data_file.sha256.encode())
        dataset = Dataset(frame=frame, files=tuple(d.uri for d, _ in files), fingerprint=digest.hexdigest())
        held_out = holdout_mask(new_config, frame)
        new_period = held_out & roles
        if not new_period.any():
            raise DataError(
                f"none of the {int(held_out.sum())} held-out rows is from the new period, so the comparison "
                f"would not test the new data; use split.method: time or a larger drift.current batch"
            )
        champion = resolve(config, "auto")
        version, challenger_dir = train(new_config, dataset)
        result = compare(new_config, dataset, champion.model_dir, challenger_dir, champion=champion,
                         validation=validation)
        render(result, out)
    manifest = build_manifest(manifest_path, [d for d, _ in files], window=window, rows=frame.height,
                              created_by=f"make retrain ({version})")
    record = {
        "version": version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": manifest_rel,
        "window": window,
        "rows": frame.height,
        "files": manifest["files"],
        "held_out_rows": int(held_out.sum()),
        "held_out_new_period_rows": int(new_period.sum()),
        "held_out_reference_rows": int((held_out & ~roles).sum()),
        "champion": {"source": champion.source, "description": champion.description},
        "verdict": result["verdict"],
        "headline": result["headline"],
        "failures": result["failures"],
        "seconds": round(time.perf_counter() - started, 3),
    }
    if record["held_out_reference_rows"]:
        log.warning("%s of %s held-out rows are from the reference period (split.method %s)",
                    record["held_out_reference_rows"], record["held_out_rows"], config.split.method)
    # Reports first, then the manifest, then the config: a failure leaves no manifest unexplained.
    _write_reports(config, record, out)
    write_manifest(manifest_path, manifest)
    record["config_changed"] = update_data_source(config, manifest_rel)
    atomic_write_json(out / "retrain.json", record)
    return record


def _write_reports(config: Config, record: dict, out: Path) -> None:
    for name in ("drift.json", "drift.md"):
        source = config.reports_dir / name
        if source.is_file():
            shutil.copyfile(source, out / name)
    drift_md = (out / "drift.md").read_text(encoding="utf-8") if (out / "drift.md").is_file() else None
    compare_md = (out / "compare.md").read_text(encoding="utf-8")
    comment = environment().get_template("retrain.md.j2").render(r=record, drift_md=drift_md, compare_md=compare_md)
    atomic_write_text(out / "comparison.md", fit_comment(comment))
    atomic_write_json(out / "retrain.json", record)
    log.info("wrote %s and %s", out / "retrain.json", out / "comparison.md")


def _git(root: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=120, check=False)


def gate(config: Config, *, remote: str = "origin", force: bool = False, now: float | None = None) -> dict:
    """May the retrain PR be (re)pushed now? Reads the remote retrain branch's last commit time.

    Returns ``proceed``, ``reason``, ``branch``, ``base`` and ``lease`` (the remote branch's SHA,
    empty when it does not exist) for ``git push --force-with-lease=<branch>:<lease>``.
    """
    settings = config.retrain
    branch = settings.branch
    listing = _git(config.root, "ls-remote", "--heads", remote, f"refs/heads/{branch}")
    if listing.returncode != 0:
        raise MlopsError(f"cannot list branches of the git remote '{remote}': {listing.stderr.strip()}")
    state = {"branch": branch, "base": settings.base_branch, "lease": "", "proceed": True,
             "manifest": os.path.relpath(config.resolve(settings.manifest), config.root)}
    if not listing.stdout.strip():
        return {**state, "reason": f"no {branch} branch yet: a retrain PR will be opened"}
    sha = listing.stdout.split()[0]
    fetched = _git(config.root, "fetch", "--no-tags", "--quiet", remote,
                   f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    if fetched.returncode != 0:
        raise MlopsError(f"cannot fetch {branch} from '{remote}': {fetched.stderr.strip()}")
    committed = int(_git(config.root, "log", "-1", "--format=%ct", sha).stdout.strip() or 0)
    age_hours = ((now if now is not None else time.time()) - committed) / 3600
    state["lease"] = sha
    if age_hours < settings.cooldown_hours and not force:
        return {**state, "proceed": False,
                "reason": (f"{branch} was updated {age_hours:.1f} h ago, within retrain.cooldown_hours "
                           f"({settings.cooldown_hours:g} h): not updating the retrain PR "
                           "(dispatch with force to override)")}
    return {**state, "reason": f"{branch} was last updated {age_hours:.1f} h ago: the retrain PR will be updated"}


def write_gate_outputs(state: dict) -> None:
    """``proceed``, ``branch``, ``base``, ``lease`` to $GITHUB_OUTPUT; the reason to the job summary."""
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            for key in ("branch", "base", "lease", "manifest"):
                handle.write(f"{key}={state[key]}\n")
            handle.write(f"proceed={'true' if state['proceed'] else 'false'}\n")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and not state["proceed"]:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(f"\n**Retrain skipped**: {state['reason']}\n")
