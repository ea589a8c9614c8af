"""The task table: which metrics each task reports, which is the default primary, and their direction.

Input: nothing (constants). Output: :data:`TASK_METRICS` (the first metric of each task is its
default primary metric) and :func:`higher_is_better`. Standard library only, so the config can
validate ``metrics.primary`` without importing scikit-learn.
"""

from __future__ import annotations

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "f1", "precision", "recall", "log_loss", "brier"),
    "multiclass": ("macro_f1", "accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})


def higher_is_better(metric: str) -> bool:
    """Direction of a metric: True when larger is better."""
    return metric not in LOWER_IS_BETTER
