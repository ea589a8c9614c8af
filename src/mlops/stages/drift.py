"""Drift check (``make drift``): recent production data against the champion's training data.

Inputs: the config (``drift`` section); the champion's lineage record, which names its training
data (:func:`mlops.champion.for_reference`: the version the registry's ``prod`` pointer serves,
else ``models/LATEST``, else ``data.source``); the current data ``drift.current`` (a path, glob
or ``s3://`` prefix of CSV or Parquet files), or ``--current``; ``--threshold`` overrides
``drift.threshold`` for every check (columns, target and prediction drift).

Outputs, in ``reports/``:

- ``drift.json``: per column the method, value, threshold, the rule that decided (a distance
  above ``drift.small_sample_rows`` reference values, a corrected p-value at or below) and the
  decision; dataset drift (share of drifted feature columns against ``drift.drift_share``);
  target and prediction drift when present; performance drift when the current data carries
  labels (the champion's primary metric on current rows against its held-out metric);
- ``drift.md``: a Markdown summary (Jinja2) for PR bodies and job summaries;
- ``drift.html``: evidently's ``DataDriftPreset`` report on a sample of each side.

The decisions come from :mod:`mlops.drift_stats` on the full data (one vectorised pass) and
:mod:`mlops.monitoring` (the champion scores a sample of current rows once, in a thread that
starts by importing scikit-learn while polars reads; its held-out outputs are read from the model
folder). drift.json and drift.md are written as soon as the decision is known; the evidently
report, built meanwhile by a low-priority worker process started first
(:class:`mlops.drift_html.HtmlReport`), is awaited afterwards for at most
``drift.report_timeout_seconds``, and only its own fields (``html_status``, ``html_report``,
``html_error``) are filled in then. Exits 0 (no drift), 3 (drift found; 0 with ``--exit-zero``)
or 1 (error), whatever the report does; the step output ``drifted`` is ``true`` or ``false`` and
the summary goes to the job summary.
With ``drift.current: capture`` the current rows are the endpoint's captured traffic
(:mod:`mlops.traffic`): prediction drift uses the predictions it served, performance the labels
of ``labels.source``. Over 300 lines because the whole record is built here; with ``compute:
sagemaker`` :func:`run` takes it from :func:`mlops.remote.drift_job` instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from mlops import jobs, remote
from mlops.champion import Champion, for_reference, training_sources
from mlops.config import Config
from mlops.context import Context, Result
from mlops.data import Dataset, Features, features_of, infer_features, load, load_many
from mlops.drift_html import HtmlReport, html_job
from mlops.drift_stats import ColumnDrift, column_drift, dataset_drift, drift_options
from mlops.monitoring import ModelChecks, model_checks, warm_up
from mlops.errors import DataError, MlopsError
from mlops.io import atomic_write_json, atomic_write_text, fingerprint_text
from mlops.render import fit_comment, render
from mlops.traffic import Captured, is_capture, load_captured, served_checks

log = logging.getLogger(__name__)

EXIT_NO_DRIFT = 0
EXIT_DRIFT = 3
# What drift.json and drift.md call the reference's origin, per champion source.
ORIGINS = {"registry": "registry prod pointer", "latest": "models/LATEST",
           "none": "data.source (no trained model found)"}


def run(ctx: Context, current: str | None = None, threshold: float | None = None, no_html: bool = False,
        exit_zero: bool = False) -> Result:
    """Check for drift; exit 3 on drift unless ``exit_zero`` (the ``drifted`` output says it either way)."""
    if threshold is not None and threshold <= 0:
        raise MlopsError(f"--threshold must be above 0, got {threshold}")
    if jobs.wanted(ctx.config):  # compute: sagemaker: the statistics come from a Processing job
        result = DriftResult(remote.drift_job(ctx.config, current, threshold))
        write_reports(ctx.config, result)
    else:
        result = check_drift(ctx.config, current_source=current, threshold=threshold, html=False if no_html else None)
    wrote = " and drift.html" if result.record["html_report"] else ""
    return Result(
        message=f"{summary_line(result.record)}\nWrote {ctx.config.reports_dir / 'drift.json'} and drift.md{wrote}",
        outputs={"drifted": result.drifted}, summary=render_markdown(result.record),
        exit_code=EXIT_DRIFT if result.drifted and not exit_zero else EXIT_NO_DRIFT)


@dataclass
class DriftResult:
    """Everything ``drift.json`` records."""

    record: dict
    columns: list[ColumnDrift] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Dataset drift or performance drift."""
        return bool(self.record["drifted"])


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


@dataclass
class _Inputs:
    """What a check compares: both sides, their origin, and the model's view of the columns."""

    champion: Champion
    sources: list[str]
    reference: Dataset
    current_source: str
    current: Dataset
    features: Features
    captured: Captured | None = None


def _load_inputs(config: Config, current_source: str | None) -> _Inputs:
    champion = for_reference(config)
    sources = training_sources(config, champion)
    reference = load_many(sources, label="reference (the champion's training data)")
    current_source = current_source or config.drift.current
    metadata = champion.metadata
    if metadata:
        features = features_of(metadata)
        recorded = metadata.get("data", {}).get("fingerprint")
        if recorded and recorded != reference.fingerprint:
            log.warning("the reference files changed since %s was trained (sha256 differs)", champion.version)
    else:
        features = infer_features(config, reference.frame)
    captured = load_captured(config, current_source, reference.frame, features.all) \
        if is_capture(current_source) else None
    if captured is not None:
        current = Dataset(captured.frame, tuple(captured.files), fingerprint_text("\n".join(captured.files)))
    else:
        current = load(config.resolve(current_source), label="drift.current")
    _check_columns(features, reference.frame, current.frame, current_source)
    return _Inputs(champion, sources, reference, current_source, current, features, captured)


def _target_drift(config: Config, inputs: _Inputs, threshold: float) -> ColumnDrift | None:
    target = config.data.target
    reference, current = inputs.reference.frame, inputs.current.frame
    if target not in reference.columns or target not in current.columns \
            or current.get_column(target).null_count() == current.height:
        return None
    kind = "numeric" if config.task == "regression" else "categorical"
    return column_drift(reference, current, {target: kind}, **drift_options(config.drift, threshold))[0]


def _model_expected(config: Config) -> bool:
    """Whether a champion may exist (models/LATEST, or a registry), checked without downloading anything."""
    uri = config.registry.uri
    return (config.models_dir / "LATEST").is_file() or "://" in uri or Path(config.resolve(uri)).is_dir()


def check_drift(config: Config, *, current_source: str | None = None, threshold: float | None = None,
                html: bool | None = None) -> DriftResult:
    """Run the drift check, write drift.json / drift.md, then wait (bounded) for drift.html; return the result.

    The decision path overlaps its slow parts: scikit-learn's import and the champion's scoring run in
    a thread while polars reads and reduces the columns (both release the GIL), and the evidently
    worker runs at a lower priority. drift.json and drift.md are written as soon as the decision is
    known (``html_status: pending``), then rewritten with the report's outcome only.
    """
    started = time.perf_counter()
    settings = config.drift
    threshold = settings.threshold if threshold is None else threshold
    html = settings.report_html if html is None else html
    worker = HtmlReport(html)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-drift-model")
    try:
        if _model_expected(config):
            pool.submit(warm_up)
        with tempfile.TemporaryDirectory(prefix="mlops-drift-") as workdir:
            inputs = _load_inputs(config, current_source)
            loaded = time.perf_counter()
            if inputs.captured is not None:  # what the endpoint served, and its labels
                checks = pool.submit(served_checks, config, inputs.champion, inputs.reference.frame, inputs.features,
                                     inputs.captured, threshold)
            else:
                checks = pool.submit(model_checks, config, inputs.champion, inputs.reference.frame,
                                     inputs.current.frame, inputs.features, threshold)
            columns = column_drift(inputs.reference.frame, inputs.current.frame, _column_kinds(inputs.features),
                                   **drift_options(settings, threshold))
            target_drift = _target_drift(config, inputs, threshold)
            computed = time.perf_counter()
            if worker.process is not None:
                worker.send(html_job(config, inputs.reference.frame, inputs.current.frame,
                                     [columns] + ([[target_drift]] if target_drift else []), Path(workdir),
                                     config.reports_dir / "drift.html"))
            sampled = time.perf_counter()
            result = DriftResult(_record(config, inputs, columns, target_drift, checks.result(), threshold=threshold,
                                         html_status="pending" if worker.process is not None else "off"), columns)
            decided = time.perf_counter()
            result.record["seconds"] = {
                "load": round(loaded - started, 3), "statistics": round(computed - loaded, 3),
                "report_sample": round(sampled - computed, 3), "model": round(decided - sampled, 3),
                "decision": round(decided - started, 3), "decision_cpu": round(time.process_time(), 3)}
            write_reports(config, result)  # the decision: nothing below changes it or the exit code
            html_error = worker.wait(settings.report_timeout_seconds)  # at once without a worker
    finally:
        worker.stop()
        pool.shutdown(wait=False, cancel_futures=True)
    if worker.process is not None:
        if html_error:
            log.warning("the evidently HTML report failed: %s", html_error)
        result.record.update(html_report=None if html_error else "drift.html", html_error=html_error,
                             html_status="failed" if html_error else "written")
        result.record["seconds"].update(html_wait=round(time.perf_counter() - decided, 3))
    result.record["seconds"]["total"] = round(time.perf_counter() - started, 3)
    write_reports(config, result)
    return result


def _record(config: Config, inputs: _Inputs, columns: list[ColumnDrift], target_drift: ColumnDrift | None,
            checks: ModelChecks, *, threshold: float, html_status: str) -> dict:
    """drift.json's content: the decision, what it compared, the settings; the HTML report still ``pending``."""
    settings = config.drift
    dataset = dataset_drift(columns, settings.drift_share, settings.correction)
    relative = [os.path.relpath(s, config.root) if "://" not in s else s for s in inputs.sources]
    performance = checks.performance
    triggers = [name for name, fired in (("dataset drift", dataset["drifted"]),
                                         ("performance drop", (performance or {}).get("drifted", False))) if fired]
    insufficient = None
    if inputs.current.rows < settings.min_rows:
        insufficient = (f"{inputs.current.rows} current rows, fewer than drift.min_rows {settings.min_rows}: "
                        "nothing is decided and no retrain is proposed until more data arrives")
        triggers = []
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "drifted": bool(triggers),
        "triggers": triggers,
        "insufficient": insufficient,
        "reference": {
            "origin": ORIGINS[inputs.champion.source], "model_version": inputs.champion.version, "sources": relative,
            "rows": inputs.reference.rows, "fingerprint": inputs.reference.fingerprint,
        },
        "current": {
            "source": inputs.current_source,
            "files": [os.path.relpath(f, config.root) if "://" not in f else f for f in inputs.current.files],
            "rows": inputs.current.rows, "fingerprint": inputs.current.fingerprint,
        },
        "settings": {
            "numeric_method": settings.numeric_method, "categorical_method": settings.categorical_method,
            "threshold": threshold, "small_sample_rows": settings.small_sample_rows, "p_value": settings.p_value,
            "correction": settings.correction, "drift_share": settings.drift_share,
            "max_metric_drop": settings.max_metric_drop, "min_rows": settings.min_rows,
            "max_invalid_share": settings.max_invalid_share,
        },
        "capture": inputs.captured.record if inputs.captured is not None else None,
        "dataset_drift": dataset,
        "columns": [c.to_dict() for c in columns],
        "target_drift": target_drift.to_dict() if target_drift else None,
        "prediction_drift": {**checks.prediction.to_dict(), "reference": checks.reference} if checks.prediction
        else None,
        "performance": checks.performance,
        "html_report": None,
        "html_error": None,
        "html_status": html_status,
    }


def _strength(column: dict) -> float:
    """How far a column is into drift: distance over threshold, or level over (adjusted) p-value."""
    if column["value"] is None:
        return 0.0
    if column.get("adjusted") is None:
        return column["value"] / column["threshold"]
    return column["threshold"] / max(column["adjusted"], 1e-300)


def render_markdown(record: dict) -> str:
    """The Markdown summary (fits a GitHub comment)."""
    columns = sorted(record["columns"], key=lambda c: (not c["drifted"], -_strength(c)))
    return fit_comment(render("drift.md.j2", r=record, columns=columns))


def write_reports(config: Config, result: DriftResult) -> None:
    """drift.json and drift.md (and no stale drift.html once none will be written)."""
    reports = config.reports_dir
    atomic_write_json(reports / "drift.json", result.record)
    atomic_write_text(reports / "drift.md", render_markdown(result.record))
    if not result.record["html_report"] and result.record.get("html_status") != "pending":
        stale = reports / "drift.html"
        if stale.exists():
            stale.unlink()
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
    if record.get("insufficient"):
        return "Too little data: " + record["insufficient"] + "; " + line
    return ("DRIFT: " if record["drifted"] else "No drift: ") + line
