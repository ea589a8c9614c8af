"""How a model behaves on new rows: prediction drift and performance drift.

Input: the champion (:class:`~mlops.champion.Champion`), reference and current rows (polars),
the model's features, and the drift settings. Output (:class:`ModelChecks`): the prediction-drift
decision and, when the current rows carry labels, the performance record: the champion's primary
metric on them against its held-out metric and ``drift.max_metric_drop``.

Prediction drift compares the champion's outputs on (a sample of ``drift.model_sample_rows``)
current rows with its outputs on its held-out rows, with the same size-aware rule as a column (a
distance above ``drift.small_sample_rows`` held-out predictions, a test at or below). The
held-out outputs are the ones evaluate recorded beside the model
(:data:`~mlops.lineage.HOLDOUT_PREDICTIONS`); a model without them (older, or never evaluated)
has its held-out rows of the reference scored now. The current rows are scored once, for both
checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from mlops.champion import Champion
from mlops.config import Config, SplitConfig
from mlops.data import Features, holdout_mask, to_pandas
from mlops.drift_stats import ColumnDrift, column_drift, drift_options
from mlops.errors import DataError
from mlops.lineage import HOLDOUT_PREDICTIONS, MODEL_FILE
from mlops.tasks import higher_is_better, tolerance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChecks:
    """Prediction drift, performance drift, and where prediction drift's reference came from."""

    prediction: ColumnDrift | None = None
    performance: dict | None = None
    reference: str | None = None


def sample(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with ``seed``."""
    return frame.sample(rows, seed=seed) if frame.height > rows else frame


def warm_up() -> None:
    """Import scikit-learn and skops (seconds on 2 cores): the drift stage runs this in a thread while it reads."""
    # pylint: disable=import-outside-toplevel,unused-import  # the point is the import itself
    import mlops.metrics
    import mlops.model


def output_frame(outputs: np.ndarray) -> pl.DataFrame:
    """A model's outputs (:func:`~mlops.metrics.model_outputs`) as the one-column frame prediction drift compares."""
    return pl.DataFrame({"prediction": outputs.tolist() if outputs.dtype == object else outputs})


def _split_config(config: Config, champion: Champion) -> Config:
    """The config with the split the champion was trained with (its lineage record), when it recorded one."""
    try:
        return config.model_copy(update={"split": SplitConfig(**champion.metadata["split"])})
    except (KeyError, TypeError, ValueError):  # no record, or one this version cannot read
        return config


def holdout_outputs(config: Config, champion: Champion, reference: pl.DataFrame, features: Features,
                     pipeline) -> tuple[pl.DataFrame, str]:
    """The champion's outputs on its held-out rows: recorded by evaluate, else scored now; and where from."""
    # pylint: disable-next=import-outside-toplevel  # scikit-learn loads only when a model is scored
    from mlops.metrics import model_outputs, predict

    path = champion.model_dir / HOLDOUT_PREDICTIONS
    if path.is_file():
        try:
            frame = pl.read_parquet(path, columns=["prediction"])
            return frame, f"the champion's outputs on {frame.height:,} held-out rows ({HOLDOUT_PREDICTIONS})"
        except (pl.exceptions.PolarsError, OSError) as exc:
            log.warning("cannot read %s (%s); scoring the held-out rows instead", path, exc)
    settings, seed = config.drift, config.split.seed
    try:
        rows, origin = reference.filter(pl.Series(holdout_mask(_split_config(config, champion), reference))), \
            "held-out rows"
    except DataError as exc:  # e.g. the time column is gone from the reference files
        log.warning("cannot find the champion's held-out rows (%s); scoring reference rows instead", exc)
        rows, origin = reference, "reference rows"
    rows = sample(rows.select(features.all), settings.model_sample_rows, seed)
    pred = predict(pipeline, to_pandas(rows), np.zeros(rows.height), config.task, config.data.positive_label)
    return output_frame(model_outputs(pred, config.task)), (
        f"the champion's outputs on {rows.height:,} {origin}, scored now (the model has no {HOLDOUT_PREDICTIONS}; "
        "`make evaluate` records it)")


def model_checks(config: Config, champion: Champion, reference: pl.DataFrame, current: pl.DataFrame,
                 features: Features, threshold: float) -> ModelChecks:
    """Prediction drift (champion's outputs: current vs held out) and performance drift (labelled current rows)."""
    if champion.model_dir is None or not (champion.model_dir / MODEL_FILE).is_file():
        return ModelChecks()
    # pylint: disable-next=import-outside-toplevel  # scikit-learn and skops load only when a model is scored
    from mlops.metrics import compute, model_outputs, predict
    from mlops.model import load_model  # pylint: disable=import-outside-toplevel  # same

    settings, seed, target = config.drift, config.split.seed, config.data.target
    pipeline = load_model(champion.model_dir / MODEL_FILE)
    has_target = target in current.columns
    cur_rows = sample(current.select([*features.all, *([target] if has_target else [])]), settings.model_sample_rows,
                      seed)
    labelled = cur_rows.get_column(target).is_not_null().to_numpy() if has_target else np.zeros(cur_rows.height, bool)
    y_cur = cur_rows.get_column(target).to_numpy() if has_target else np.zeros(cur_rows.height)
    cur_pred = predict(pipeline, to_pandas(cur_rows, features.all), y_cur, config.task, config.data.positive_label)
    ref_frame, origin = holdout_outputs(config, champion, reference, features, pipeline)
    prediction = column_drift(
        ref_frame, output_frame(model_outputs(cur_pred, config.task)),
        {"prediction": "categorical" if config.task == "multiclass" else "numeric"},
        **{**drift_options(settings, threshold), "thresholds": {}},
    )[0]
    if not labelled.any():
        return ModelChecks(prediction, None, origin)
    scores = compute(config.task, cur_pred.subset(labelled))
    return ModelChecks(prediction, _performance(config, champion, scores, int(labelled.sum())), origin)


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
