"""How a model behaves on new rows: prediction drift and performance drift.

Input: the champion (:class:`~mlops.champion.Champion`), reference and current rows (polars),
the model's features, and the drift settings. Output: the prediction-drift decision (the
champion's outputs on both sides, compared like a column with the same size-aware rule: a
distance above ``drift.small_sample_rows`` scored reference rows, a test at or below) and, when
the current rows carry labels, the performance record: the champion's primary metric on them
against its held-out metric and ``drift.max_metric_drop``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from mlops.champion import Champion
from mlops.config import Config
from mlops.data import Features, to_pandas
from mlops.drift_stats import ColumnDrift, column_drift, drift_options
from mlops.lineage import MODEL_FILE
from mlops.tasks import higher_is_better, tolerance


def sample(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with ``seed``."""
    return frame.sample(rows, seed=seed) if frame.height > rows else frame


def _prediction_frame(pred, task: str) -> pl.DataFrame:
    """The champion's output: P(positive) for binary, the label for multiclass, the value for regression."""
    if task == "binary":
        return pl.DataFrame({"prediction": pred.proba[:, 1]})
    if task == "multiclass":
        return pl.DataFrame({"prediction": [str(v) for v in pred.y_pred]})
    return pl.DataFrame({"prediction": np.asarray(pred.y_pred, dtype=float)})


def model_checks(config: Config, champion: Champion, reference: pl.DataFrame, current: pl.DataFrame,
                 features: Features, threshold: float) -> tuple[ColumnDrift | None, dict | None]:
    """Prediction drift (champion's outputs on both sides) and performance drift (labelled current rows)."""
    if champion.model_dir is None or not (champion.model_dir / MODEL_FILE).is_file():
        return None, None
    # pylint: disable-next=import-outside-toplevel  # scikit-learn and skops load only when a model is scored
    from mlops.metrics import compute, predict
    from mlops.model import load_model  # pylint: disable=import-outside-toplevel  # same

    settings, seed, target = config.drift, config.split.seed, config.data.target
    pipeline = load_model(champion.model_dir / MODEL_FILE)
    ref_rows = sample(reference, settings.model_sample_rows, seed)
    cur_rows = sample(current, settings.model_sample_rows, seed)
    has_target = target in cur_rows.columns
    labelled = cur_rows.get_column(target).is_not_null().to_numpy() if has_target else np.zeros(cur_rows.height, bool)
    y_cur = cur_rows.get_column(target).to_numpy() if has_target else np.zeros(cur_rows.height)
    ref_pred = predict(pipeline, to_pandas(ref_rows, features.all), np.zeros(ref_rows.height), config.task)
    cur_pred = predict(pipeline, to_pandas(cur_rows, features.all), y_cur, config.task)
    prediction = column_drift(
        _prediction_frame(ref_pred, config.task), _prediction_frame(cur_pred, config.task),
        {"prediction": "categorical" if config.task == "multiclass" else "numeric"},
        **{**drift_options(settings, threshold), "thresholds": {}},
    )[0]
    if not labelled.any():
        return prediction, None
    scores = compute(config.task, replace(
        cur_pred, y_true=cur_pred.y_true[labelled], y_pred=cur_pred.y_pred[labelled],
        proba=None if cur_pred.proba is None else cur_pred.proba[labelled]))
    return prediction, _performance(config, champion, scores, int(labelled.sum()))


def _performance(config: Config, champion: Champion, scores: dict, rows: int) -> dict:
    """The champion's primary metric on labelled current rows against its held-out metric."""
    metric = config.primary_metric
    holdout = (champion.metrics or {}).get("metrics", {}).get(metric)
    max_drop = tolerance(config.drift.max_metric_drop, holdout)  # units, or "N%" of the held-out value
    performance = {"metric": metric, "current": scores[metric], "holdout": holdout, "rows": rows,
                   "max_drop": max_drop, "drop": None, "drifted": False}
    if holdout is not None and np.isfinite(scores[metric]):
        drop = holdout - scores[metric] if higher_is_better(metric) else scores[metric] - holdout
        performance.update(drop=drop, drifted=bool(drop > max_drop))
    return performance
