"""Drift check (``make drift``): recent production data against the champion's training data.

Inputs: the config (``drift`` section); the champion's lineage record, which names its training
data (the version the registry's ``prod`` pointer serves, else ``models/LATEST``, else
``data.source``); the current data ``drift.current`` (a path, glob or ``s3://`` prefix of CSV or
Parquet files).

Outputs, in ``reports/``:

- ``drift.json``: per column the method, value, threshold and decision; dataset drift (share of
  drifted feature columns against ``drift.drift_share``); target and prediction drift when
  present; performance drift when the current data carries labels (the champion's primary metric
  on current rows against its held-out metric);
- ``drift.md``: a Markdown summary (Jinja2) for PR bodies and job summaries;
- ``drift.html``: evidently's ``DataDriftPreset`` report on a sample of each side.

The decisions come from :mod:`mlops.drift_stats` on the full data (one vectorised pass); the
evidently report runs in a worker process started first, so its 3-5 s import overlaps the
reading and the statistics. ``python -m mlops drift`` exits 0 (no drift), 3 (drift found) or
1 (error); in GitHub Actions it also writes ``drifted=true|false`` to ``$GITHUB_OUTPUT`` and the
summary to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from mlops.config import Config
from mlops.data import Dataset, Features, fingerprint_files, infer_features, load, to_pandas
from mlops.drift_stats import ColumnDrift, column_drift
from mlops.errors import DataError, ModelError
from mlops.io import atomic_write_json, atomic_write_text, read_json
from mlops.lineage import MODEL_FILE
from mlops.registry import Registry
from mlops.report import environment, fit_comment

log = logging.getLogger(__name__)


EXIT_NO_DRIFT = 0
EXIT_DRIFT = 3
PROD = "prod"


@dataclass
class Champion:
    """The model whose training data is the reference, if one exists."""

    origin: str
    version: str | None = None
    metadata: dict | None = None
    model_dir: Path | None = None
    metrics: dict | None = None


@dataclass
class DriftResult:
    """Everything ``drift.json`` records."""

    record: dict
    columns: list[ColumnDrift] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Dataset drift or performance drift."""
        return bool(self.record["drifted"])


def find_champion(config: Config, workdir: Path) -> Champion:
    """The prod model from the registry, else ``models/LATEST``, else none (reference = data.source)."""
    registry = Registry.from_config(config)
    try:
        pointer = registry.pointer(PROD)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # boto3/OS errors: say which registry failed
        raise ModelError(
            f"cannot read the {PROD} pointer from registry.uri {config.registry.uri}: {exc}. "
            "Check the URI and your credentials"
        ) from None
    if pointer and pointer.get("current"):
        version = pointer["current"]
        model_dir = registry.fetch(version, workdir / version)
        metrics = model_dir / "metrics.json"
        return Champion(f"registry {PROD} pointer", version, registry.metadata(version), model_dir,
                        read_json(metrics) if metrics.is_file() else None)
    latest = config.models_dir / "LATEST"
    if latest.is_file():
        folder = config.models_dir / latest.read_text(encoding="utf-8").strip()
        if (folder / "metadata.json").is_file():
            metrics = folder / "metrics.json"
            return Champion("models/LATEST", folder.name, read_json(folder / "metadata.json"), folder,
                            read_json(metrics) if metrics.is_file() else None)
    return Champion("data.source (no trained model found)")


def reference_sources(config: Config, champion: Champion) -> list[str]:
    """The files the champion was trained on (its lineage record), or ``data.source``."""
    if champion.metadata:
        source = champion.metadata.get("data", {}).get("source") or ""
        if source.endswith(".json") and os.path.isfile(config.resolve(source)):
            # Trained from a data manifest: the same pinned files, versions and time window.
            return [config.resolve(source)]
        files = [config.resolve(f) for f in champion.metadata.get("data", {}).get("files", [])]
        if files and all("://" in f or os.path.exists(f) for f in files):
            return files
        source = champion.metadata.get("data", {}).get("source")
        if source:
            log.warning("some training files of %s are gone; using its recorded data.source %s",
                        champion.version, source)
            return [config.resolve(source)]
    return [config.resolve(config.data.source)]


def load_many(sources: list[str], label: str) -> Dataset:
    """Read several sources (each a path, glob or s3:// URI) into one frame."""
    parts = [load(source, label=label) for source in sources]
    if len(parts) == 1:
        return parts[0]
    try:
        frame = pl.concat([p.frame for p in parts], how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{label}: {sources} do not share columns/types: {exc}") from None
    files = tuple(f for p in parts for f in p.files)
    local = [f for f in files if "://" not in f]
    if len(local) == len(files):
        fingerprint = fingerprint_files(local)
    else:
        fingerprint = hashlib.sha256("".join(p.fingerprint for p in parts).encode()).hexdigest()
    return Dataset(frame=frame, files=files, fingerprint=fingerprint)


def _check_columns(features: Features, reference: pl.DataFrame, current: pl.DataFrame, source: str) -> None:
    missing = [c for c in features.all if c not in current.columns]
    if missing:
        raise DataError(
            f"drift.current ({source}) lacks the model's feature column(s) {missing}; "
            "fix the production export or retrain without them"
        )
    for name in features.numeric:
        ref_dtype, cur_dtype = reference.schema[name], current.schema[name]
        if ref_dtype.is_numeric() and not (cur_dtype.is_numeric() or cur_dtype == pl.Null):
            raise DataError(
                f"column '{name}' is numeric in the reference data but {cur_dtype} in drift.current ({source}); "
                "fix the production export (non-numeric values in a numeric column)"
            )


def _column_kinds(features: Features) -> dict[str, str]:
    kinds = {name: "numeric" for name in features.numeric}
    kinds.update({name: "categorical" for name in features.categorical})
    return kinds


def _sample(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
    return frame.sample(rows, seed=seed) if frame.height > rows else frame


def _prediction_frame(pred, task: str) -> pl.DataFrame:
    """The champion's output: P(positive) for binary, the label for multiclass, the value for regression."""
    if task == "binary":
        return pl.DataFrame({"prediction": pred.proba[:, 1]})
    if task == "multiclass":
        return pl.DataFrame({"prediction": [str(v) for v in pred.y_pred]})
    return pl.DataFrame({"prediction": np.asarray(pred.y_pred, dtype=float)})


def model_checks(config: Config, champion: Champion, reference: pl.DataFrame, current: pl.DataFrame,
                 features: Features) -> tuple[ColumnDrift | None, dict | None]:
    """Prediction drift (champion's outputs on both sides) and performance drift (labelled current rows)."""
    if champion.model_dir is None or not (champion.model_dir / MODEL_FILE).is_file():
        return None, None
    # pylint: disable-next=import-outside-toplevel  # scikit-learn and skops load only when a model is scored
    from mlops.metrics import compute, higher_is_better, predict
    from mlops.model import load_model  # pylint: disable=import-outside-toplevel  # same

    settings, seed, target = config.drift, config.split.seed, config.data.target
    pipeline = load_model(champion.model_dir / MODEL_FILE)
    ref_rows = _sample(reference, settings.model_sample_rows, seed)
    cur_rows = _sample(current, settings.model_sample_rows, seed)
    has_target = target in cur_rows.columns
    labelled = cur_rows.get_column(target).is_not_null().to_numpy() if has_target else np.zeros(cur_rows.height, bool)
    y_cur = cur_rows.get_column(target).to_numpy() if has_target else np.zeros(cur_rows.height)
    ref_pred = predict(pipeline, to_pandas(ref_rows, features.all), np.zeros(ref_rows.height), config.task)
    cur_pred = predict(pipeline, to_pandas(cur_rows, features.all), y_cur, config.task)
    prediction = column_drift(
        _prediction_frame(ref_pred, config.task), _prediction_frame(cur_pred, config.task),
        {"prediction": "categorical" if config.task == "multiclass" else "numeric"},
        threshold=settings.threshold, numeric_method=settings.numeric_method,
        categorical_method=settings.categorical_method,
    )[0]
    if not labelled.any():
        return prediction, None
    scores = compute(config.task, replace(
        cur_pred, y_true=cur_pred.y_true[labelled], y_pred=cur_pred.y_pred[labelled],
        proba=None if cur_pred.proba is None else cur_pred.proba[labelled]))
    return prediction, _performance(config, champion, scores, int(labelled.sum()), higher_is_better)


def _performance(config: Config, champion: Champion, scores: dict, rows: int, higher_is_better) -> dict:
    """The champion's primary metric on labelled current rows against its held-out metric."""
    metric, max_drop = config.primary_metric, config.drift.max_metric_drop
    holdout = (champion.metrics or {}).get("metrics", {}).get(metric)
    performance = {"metric": metric, "current": scores[metric], "holdout": holdout, "rows": rows,
                   "max_drop": max_drop, "drop": None, "drifted": False}
    if holdout is not None and np.isfinite(scores[metric]):
        drop = holdout - scores[metric] if higher_is_better(metric) else scores[metric] - holdout
        performance.update(drop=drop, drifted=bool(drop > max_drop))
    return performance


class HtmlReport:
    """evidently's HTML report, built by a worker process started before the data is read."""

    def __init__(self, enabled: bool):
        self.process = None
        if enabled:
            # The worker imports this same mlops package, whatever the venv's install points at.
            package_root = str(Path(__file__).resolve().parents[1])
            path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with  # lives across the check
                [sys.executable, "-m", "mlops.drift_html"], env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )

    def finish(self, job: dict | None, timeout: float = 600) -> str | None:
        """Send the job (None cancels) and wait; return an error message or None."""
        if self.process is None:
            return None
        try:
            _, err = self.process.communicate(json.dumps(job) + "\n" if job else "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            return f"the evidently report took longer than {timeout:.0f}s and was stopped"
        if self.process.returncode != 0:
            lines = [line for line in err.strip().splitlines() if line.strip()]
            return lines[-1] if lines else f"exit code {self.process.returncode}"
        return None


def _html_job(config: Config, reference: pl.DataFrame, current: pl.DataFrame, columns: list[ColumnDrift],
              workdir: Path, out: Path) -> dict:
    rows, seed = config.drift.report_sample_rows, config.split.seed
    names = [c.column for c in columns]
    paths = {}
    for side, frame in (("reference", reference), ("current", current)):
        path = workdir / f"{side}.parquet"
        _sample(frame.select(names), rows, seed).write_parquet(path)
        paths[side] = str(path)
    return {
        **paths,
        "numeric": [c.column for c in columns if c.kind == "numeric"],
        "categorical": [c.column for c in columns if c.kind == "categorical"],
        "methods": {c.column: c.method for c in columns},
        "thresholds": {c.column: c.threshold for c in columns},
        "drift_share": config.drift.drift_share,
        "out": str(out),
    }


@dataclass
class _Inputs:
    """What a check compares: both sides, their origin, and the model's view of the columns."""

    champion: Champion
    sources: list[str]
    reference: Dataset
    current_source: str
    current: Dataset
    features: Features


def _load_inputs(config: Config, workdir: Path, current_source: str | None) -> _Inputs:
    champion = find_champion(config, workdir)
    sources = reference_sources(config, champion)
    reference = load_many(sources, label="reference (the champion's training data)")
    current_source = current_source or config.drift.current
    current = load(config.resolve(current_source), label="drift.current")
    if champion.metadata:
        meta = champion.metadata["features"]
        features = Features(tuple(meta["numeric"]), tuple(meta["categorical"]))
        recorded = champion.metadata.get("data", {}).get("fingerprint")
        if recorded and recorded != reference.fingerprint:
            log.warning("the reference files changed since %s was trained (sha256 differs)", champion.version)
    else:
        features = infer_features(config, reference.frame)
    _check_columns(features, reference.frame, current.frame, current_source)
    return _Inputs(champion, sources, reference, current_source, current, features)


def _target_drift(config: Config, inputs: _Inputs, threshold: float) -> ColumnDrift | None:
    target, settings = config.data.target, config.drift
    reference, current = inputs.reference.frame, inputs.current.frame
    if target not in reference.columns or target not in current.columns \
            or current.get_column(target).null_count() == current.height:
        return None
    kind = "numeric" if config.task == "regression" else "categorical"
    return column_drift(reference, current, {target: kind}, threshold=threshold,
                        numeric_method=settings.numeric_method, categorical_method=settings.categorical_method,
                        thresholds=settings.column_thresholds)[0]


def check(config: Config, *, current_source: str | None = None, threshold: float | None = None,
          html: bool | None = None) -> DriftResult:
    """Run the drift check, write drift.json / drift.md / drift.html, return the result."""
    started = time.perf_counter()
    settings = config.drift
    threshold = settings.threshold if threshold is None else threshold
    html = settings.report_html if html is None else html
    worker = HtmlReport(html)
    job: dict | str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-drift-") as workdir:
            inputs = _load_inputs(config, Path(workdir), current_source)
            loaded = time.perf_counter()
            columns = column_drift(
                inputs.reference.frame, inputs.current.frame, _column_kinds(inputs.features), threshold=threshold,
                numeric_method=settings.numeric_method, categorical_method=settings.categorical_method,
                thresholds=settings.column_thresholds,
            )
            target_drift = _target_drift(config, inputs, threshold)
            computed = time.perf_counter()
            if worker.process is not None:
                job = _html_job(config, inputs.reference.frame, inputs.current.frame,
                                columns + ([target_drift] if target_drift else []), Path(workdir),
                                config.reports_dir / "drift.html")
            sampled = time.perf_counter()
            prediction, performance = model_checks(config, inputs.champion, inputs.reference.frame,
                                                   inputs.current.frame, inputs.features)
            scored = time.perf_counter()
            html_error = worker.finish(job)
            job = "done"
    finally:
        if job != "done":
            worker.finish(None, timeout=30)
    if html_error:
        log.warning("the evidently HTML report failed: %s", html_error)
    drifted_count = sum(c.drifted for c in columns)
    share = drifted_count / len(columns)
    dataset_drift = share >= settings.drift_share
    relative = [os.path.relpath(s, config.root) if "://" not in s else s for s in inputs.sources]
    record = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "drifted": bool(dataset_drift or (performance or {}).get("drifted", False)),
        "reference": {
            "origin": inputs.champion.origin, "model_version": inputs.champion.version, "sources": relative,
            "rows": inputs.reference.rows, "fingerprint": inputs.reference.fingerprint,
        },
        "current": {
            "source": inputs.current_source,
            "files": [os.path.relpath(f, config.root) if "://" not in f else f for f in inputs.current.files],
            "rows": inputs.current.rows, "fingerprint": inputs.current.fingerprint,
        },
        "settings": {
            "numeric_method": settings.numeric_method, "categorical_method": settings.categorical_method,
            "threshold": threshold, "drift_share": settings.drift_share, "max_metric_drop": settings.max_metric_drop,
        },
        "dataset_drift": {"drifted": bool(dataset_drift), "drifted_columns": drifted_count,
                          "columns": len(columns), "share": share, "drift_share": settings.drift_share},
        "columns": [c.to_dict() for c in columns],
        "target_drift": target_drift.to_dict() if target_drift else None,
        "prediction_drift": prediction.to_dict() if prediction else None,
        "performance": performance,
        "html_report": None if (not html or html_error) else "drift.html",
        "html_error": html_error,
        "seconds": {"load": round(loaded - started, 3), "statistics": round(computed - loaded, 3),
                    "report_sample": round(sampled - computed, 3), "model": round(scored - sampled, 3),
                    "html_wait": round(time.perf_counter() - scored, 3),
                    "total": round(time.perf_counter() - started, 3)},
    }
    result = DriftResult(record, columns)
    write_outputs(config, result)
    return result


def render_markdown(record: dict) -> str:
    """The Markdown summary (fits a GitHub comment)."""
    columns = sorted(record["columns"], key=lambda c: (not c["drifted"], -(c["value"] or 0)))
    return fit_comment(environment().get_template("drift.md.j2").render(r=record, columns=columns))


def write_outputs(config: Config, result: DriftResult) -> None:
    """drift.json, drift.md; in GitHub Actions also the step output and the job summary."""
    reports = config.reports_dir
    markdown = render_markdown(result.record)
    atomic_write_json(reports / "drift.json", result.record)
    atomic_write_text(reports / "drift.md", markdown)
    if not result.record["html_report"]:
        stale = reports / "drift.html"
        if stale.exists():
            stale.unlink()
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"drifted={'true' if result.drifted else 'false'}\n")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    log.info("wrote %s and %s", reports / "drift.json", reports / "drift.md")


def summary_line(record: dict) -> str:
    """One line for the terminal."""
    data = record["dataset_drift"]
    drifted = [c["column"] for c in record["columns"] if c["drifted"]]
    line = (f"{data['drifted_columns']} of {data['columns']} feature columns drifted "
            f"(share {data['share']:.2f}, dataset drift at {data['drift_share']:.2f})")
    if drifted:
        line += ": " + ", ".join(drifted)
    performance = record.get("performance")
    if performance and performance.get("drop") is not None:
        line += (f"; {performance['metric']} {performance['current']:.4f} on current vs "
                 f"{performance['holdout']:.4f} held out")
    return ("DRIFT: " if record["drifted"] else "No drift: ") + line
