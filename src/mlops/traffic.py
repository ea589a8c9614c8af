"""What an endpoint served, as drift's current data: captured rows, their predictions, their labels.

Input: the config, a capture location (``drift.current: capture`` names the endpoint of
``drift.capture_environment``: ``s3://<bucket>/capture/<project>/<env>/<project>-<env>`` beside an
S3 registry, else ``capture.local_dir``), the reference frame (its dtypes) and the contract.
Output: :class:`Captured`: the rows of the last ``drift.window_days`` cast to the reference's
dtypes, the served predictions, and a record of what was read and what was not usable (events
that do not decode, rows breaking the contract: counted with examples; an error above
``drift.max_invalid_share``). :func:`performance` joins ``labels.source`` (``id,label,time``
rows) on ``data.id_column`` or the capture's ``inferenceId`` and scores what was served, with a
bootstrap interval, against the champion's held-out metric.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from mlops import capture, s3
from mlops.capture_decode import decode
from mlops.champion import Champion
from mlops.config import Config
from mlops.contract import Contract, load_contract
from mlops.data import Features, load
from mlops.drift_stats import column_drift, drift_options
from mlops.errors import DataError
from mlops.lineage import MODEL_FILE
from mlops.monitoring import ModelChecks, holdout_outputs, output_frame
from mlops.tasks import higher_is_better, tolerance
from mlops.validation import cast_column

if TYPE_CHECKING:  # scikit-learn (behind metrics) loads only when something is scored
    from mlops.metrics import Predictions

log = logging.getLogger(__name__)

PREFIX = "capture"


def destination(bucket: str, project: str, environment: str) -> str:
    """An environment's ``DataCaptureConfig.DestinationS3Uri`` (no trailing slash)."""
    return f"s3://{bucket}/{PREFIX}/{project}/{environment}"


def location(config: Config, source: str) -> str:
    """Where ``drift.current`` (``capture`` or ``capture:<folder or prefix>``) finds its capture files."""
    explicit = source.partition(":")[2].strip()
    if explicit:
        return config.resolve(explicit)
    environment = config.drift.capture_environment
    if s3.is_s3(config.registry.uri):
        bucket = s3.parse(config.registry.uri)[0]
        return f"{destination(bucket, config.project, environment)}/{config.project}-{environment}"
    return config.resolve(config.capture.local_dir)


@dataclass
class Captured:
    """Captured rows as current data, and what the capture held."""

    frame: pl.DataFrame  # features (reference dtypes), the id column when sent, _prediction, _proba, _version, ...
    files: list[str]
    record: dict


def _row_problems(frame: pl.DataFrame, contract: Contract | None, reference: pl.DataFrame,
                  columns: list[str]) -> tuple[pl.DataFrame, np.ndarray, list[dict]]:
    """Cast each column to the reference's dtype; mark rows with a value the contract refuses."""
    bad = np.zeros(frame.height, dtype=bool)
    problems, casts = [], []
    for name in columns:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(name))
        raw = frame.get_column(name)
        rule = contract.columns.get(name) if contract else None
        dtype = rule.dtype if rule else None
        if dtype is None:
            wanted = reference.schema.get(name, pl.String)
            values = raw.cast(wanted, strict=False) if wanted != pl.String else raw
        else:
            values = cast_column(raw, dtype)
        failing = [(values.is_null() & raw.is_not_null(), f"not a {dtype or values.dtype}")]
        if rule is not None:
            if not rule.nullable:
                failing.append((values.is_null(), "null in a non-nullable column"))
            if rule.min is not None:
                failing.append((values < rule.min, f"below the minimum {rule.min}"))
            if rule.max is not None:
                failing.append((values > rule.max, f"above the maximum {rule.max}"))
            if rule.allowed is not None:
                failing.append((~values.is_in(list(rule.allowed)) & values.is_not_null(), "not an allowed value"))
        for mask, what in failing:
            mask = mask.fill_null(False).to_numpy()
            if mask.any():
                bad |= mask
                problems.append({"column": name, "problem": what, "rows": int(mask.sum()),
                                 "examples": raw.filter(pl.Series(mask)).head(5).to_list()})
        casts.append(values.alias(name))
    return frame.with_columns(casts), bad, problems


def is_capture(source: str) -> bool:
    """True when ``drift.current`` (or ``--current``) names captured traffic."""
    return source == "capture" or source.startswith("capture:")


def load_captured(config: Config, source: str, reference: pl.DataFrame, features: list[str]) -> Captured:
    """The captured rows of the window, cast and checked by the contract (when there is one) or the
    reference's dtypes; an error when too much of it is unusable."""
    contract = load_contract(config) if os.path.isfile(config.resolve(config.data.schema_file)) else None
    where = location(config, source)
    since = capture.window_start(config.drift.window_days)
    files = capture.list_window(where, since)
    events = capture.read_events(files)
    columns = list(contract.columns) if contract else list(reference.columns)
    traffic = decode(events, features, set(columns), config.task == "regression")
    # The id and the time travel with the features when the callers send them (the serving code accepts both).
    extra = [c for c in (config.data.id_column, config.data.time_column) if c and c in traffic.rows.columns]
    keep = list(dict.fromkeys([*features, *extra]))
    frame, bad, problems = _row_problems(traffic.rows, contract, reference, keep)
    unusable_events = sum(traffic.problems.values())
    record = {
        "location": where, "window_days": config.drift.window_days, "since": since.isoformat(timespec="seconds"),
        "files": len(files), "events": traffic.events, "unusable_events": unusable_events,
        "event_problems": traffic.summary(), "rows": frame.height, "invalid_rows": int(bad.sum()),
        "row_problems": problems, "requests": {v: dict(c) for v, c in traffic.requests.items()},
    }
    limit = config.drift.max_invalid_share
    for what, count, total in (("events", unusable_events, traffic.events), ("rows", int(bad.sum()), frame.height)):
        if total and count / total > limit:
            details = record["event_problems"] if what == "events" else problems
            listed = "; ".join(f"{p.get('column') or ''} {p['problem']}: {p.get('events', p.get('rows'))}".strip()
                               for p in details[:5])
            raise DataError(f"{count} of {total} captured {what} in {where} cannot be used ({listed}), over "
                            f"drift.max_invalid_share {limit}; fix the callers or the contract, or raise the share")
    if unusable_events or bad.any():
        log.warning("captured traffic: %d unusable events, %d rows breaking the contract (in drift.json)",
                    unusable_events, int(bad.sum()))
    frame = frame.filter(pl.Series(~bad))
    return Captured(frame.select([*keep, "_prediction", "_proba", "_version", "_inference_id", "_time"]),
                    files, record)


def served_predictions(frame: pl.DataFrame, classes: list, task: str, positive, y_true=None) -> Predictions:
    """What the endpoint answered for ``frame``'s rows, as :class:`~mlops.metrics.Predictions` (labels as text)."""
    from mlops.metrics import Predictions, positive_label  # pylint: disable=import-outside-toplevel  # see above

    y_true = np.zeros(frame.height) if y_true is None else np.asarray(y_true)
    if task == "regression":
        return Predictions(y_true, frame.get_column("_prediction").to_numpy(), None, ())
    names = tuple(str(c) for c in classes)
    proba = np.asarray(frame.get_column("_proba").to_list(), dtype=float).reshape(frame.height, len(names))
    chosen = positive_label(names, None if positive is None else str(positive)) if task == "binary" else None
    return Predictions(y_true, frame.get_column("_prediction").to_numpy().astype(str), proba, names, chosen)


def _labels(config: Config) -> pl.DataFrame:
    labels = load(config.resolve(config.labels.source), label="labels.source").frame
    missing = [c for c in ("id", "label") if c not in labels.columns]
    if missing:
        raise DataError(f"labels.source ({config.labels.source}) lacks the column(s) {missing}; it must have a "
                        f"header id,label[,time]; columns are: {', '.join(labels.columns)}")
    return labels.select(pl.col("id").cast(pl.String), pl.col("label")).unique("id", keep="last")


def join_labels(config: Config, frame: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """The captured rows that have a label, and the coverage record."""
    labels = _labels(config)
    id_column = config.data.id_column
    if id_column and id_column in frame.columns and frame.get_column(id_column).is_not_null().any():
        key, how = pl.col(id_column).cast(pl.String), f"data.id_column ({id_column})"
    else:  # a request's InferenceId names its one row; a request of several rows cannot be matched by it
        key, how = pl.col("_inference_id"), "the capture's inferenceId"
    keyed = frame.with_columns(key.alias("_key"))
    joined = keyed.join(labels.rename({"id": "_key"}), on="_key", how="inner")
    matched_ids = joined.get_column("_key").n_unique()
    record = {"source": config.labels.source, "matched_by": how, "labels": labels.height,
              "labelled_rows": joined.height, "rows": frame.height,
              "coverage": round(joined.height / frame.height, 4) if frame.height else 0.0,
              "unmatched_labels": labels.height - matched_ids}
    if record["unmatched_labels"]:
        log.warning("%d of %d labels in labels.source match no captured row (by %s)", record["unmatched_labels"],
                    labels.height, how)
    return joined, record


def performance(config: Config, frame: pl.DataFrame, classes: list, holdout_metrics: dict) -> dict | None:
    """The served predictions' primary metric on the labelled rows, its interval, and the gate."""
    if not config.labels.source:
        return None
    joined, record = join_labels(config, frame)
    metric = config.primary_metric
    holdout = holdout_metrics.get(metric)
    out = {"metric": metric, "holdout": holdout, "current": None, "ci_low": None, "ci_high": None,
           "confidence": config.compare.confidence, "note": None,
           "rows": joined.height, "drop": None, "max_drop": tolerance(config.drift.max_metric_drop, holdout),
           "drifted": False, "labels": record}
    if joined.height < 2:
        out["note"] = "too few labelled rows to score"
        return out
    # pylint: disable-next=import-outside-toplevel  # scikit-learn only to score
    from mlops.intervals import bootstrap_interval
    from mlops.metrics import compute  # pylint: disable=import-outside-toplevel  # same

    label = joined.get_column("label")
    y_true = label.cast(pl.Float64).to_numpy() if config.task == "regression" else label.cast(pl.String).to_numpy()
    pred = served_predictions(joined, classes, config.task, config.data.positive_label, y_true)
    current = compute(config.task, pred)[metric]
    low, high = bootstrap_interval(config.task, pred, metric, resamples=config.compare.bootstrap_resamples,
                                   confidence=config.compare.confidence)
    out.update(current=current, ci_low=low, ci_high=high)
    if holdout is not None and np.isfinite(current):
        better = higher_is_better(metric)
        drop = holdout - current if better else current - holdout
        worse_for_sure = (high < holdout) if better else (low > holdout)  # the interval excludes the held-out value
        out.update(drop=drop, drifted=bool(drop > out["max_drop"] and worse_for_sure))
    return out




def served_checks(config: Config, champion: Champion, reference: pl.DataFrame, features: Features,
                  captured: Captured, threshold: float) -> ModelChecks:
    """Prediction drift of what was served (vs the champion's held-out outputs) and performance on labels."""
    frame = captured.frame
    if champion.model_dir is None or not (champion.model_dir / MODEL_FILE).is_file() or not frame.height:
        return ModelChecks()
    # pylint: disable-next=import-outside-toplevel  # scikit-learn and skops load only when a model is scored
    from mlops.metrics import model_outputs
    from mlops.model import load_model  # pylint: disable=import-outside-toplevel  # same

    pipeline = load_model(champion.model_dir / MODEL_FILE)
    held_out, origin = holdout_outputs(config, champion, reference, features, pipeline)
    classes = [str(c) for c in getattr(pipeline, "classes_", [])]
    served = served_predictions(frame, classes, config.task, config.data.positive_label)
    prediction = column_drift(
        held_out, output_frame(model_outputs(served, config.task)),
        {"prediction": "categorical" if config.task == "multiclass" else "numeric"},
        **{**drift_options(config.drift, threshold), "thresholds": {}})[0]
    holdout = (champion.metrics or {}).get("metrics", {})
    return ModelChecks(prediction, performance(config, frame, classes, holdout), origin)

def labelled_rows(config: Config, source: str, reference: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    """Captured rows that have a label, as training rows: the features, the id, the time, the label as target.

    The time column is the request's own when it carried one, else the capture's inferenceTime.
    """
    if not config.labels.source:
        raise DataError(f"drift.current is {source}, but labels.source is not set: a retrain on captured traffic "
                        "needs its labels (files or an s3:// prefix of id,label,time rows)")
    captured = load_captured(config, source, reference, features)
    joined, record = join_labels(config, captured.frame)
    if not joined.height:
        raise DataError(f"none of the {record['rows']} captured rows has a label in labels.source "
                        f"({config.labels.source}, matched by {record['matched_by']}); nothing to retrain on")
    target, time_column = config.data.target, config.data.time_column
    columns = [pl.col("label").cast(reference.schema.get(target, pl.String), strict=False).alias(target)]
    if time_column and time_column not in joined.columns:
        when = pl.col("_time").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False)
        columns.append(when.cast(reference.schema.get(time_column, pl.Datetime("us")), strict=False).alias(time_column))
    keep = [c for c in joined.columns if not c.startswith("_") and c not in ("label", target)]
    return joined.with_columns(columns).select([*keep, *(c.meta.output_name() for c in columns)])
