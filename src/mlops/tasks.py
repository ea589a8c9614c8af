"""The task table: which metrics each task reports, which is the default primary, and their direction.

Input: nothing (constants). Output: :data:`TASK_METRICS` (the first metric of each task is its
default primary metric) and :func:`higher_is_better`. Standard library only, so the config can
validate ``metrics.primary`` without importing scikit-learn.
"""

from __future__ import annotations

import math

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "f1", "precision", "recall", "log_loss", "brier"),
    "multiclass": ("macro_f1", "accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})


def higher_is_better(metric: str) -> bool:
    """Direction of a metric: True when larger is better."""
    return metric not in LOWER_IS_BETTER


def tolerance(setting: float | str, reference: float | None) -> float:
    """A tolerance in the metric's own units: a number as given, or "N%" of ``reference``'s size.

    ``gates.max_drop: "2%"`` with a champion RMSE of 58.0 allows a drop of 1.16.
    """
    if isinstance(setting, str):
        share = float(setting.rstrip("%")) / 100
        return abs(reference) * share if reference is not None and math.isfinite(reference) else 0.0
    return float(setting)
