"""Metrics per task, shared by evaluate and compare.

Input: true labels/values and a model's predictions (labels, and probabilities for classifiers).
Output: a dict of metric name to float, names as in :data:`mlops.tasks.TASK_METRICS`, and the
confusion matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline



@dataclass(frozen=True)
class Predictions:
    """A model's output on some rows; ``proba`` columns follow ``classes``."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    classes: tuple


def predict(pipeline: Pipeline, x, y_true, task: str) -> Predictions:
    """Run the model on ``x``."""
    y_true = np.asarray(y_true)
    if task == "regression":
        return Predictions(y_true, np.asarray(pipeline.predict(x), dtype=float), None, ())
    proba = pipeline.predict_proba(x)
    classes = tuple(pipeline.classes_.tolist())
    y_pred = np.asarray(pipeline.classes_)[proba.argmax(axis=1)]
    return Predictions(y_true, y_pred, proba, classes)


def compute(task: str, pred: Predictions) -> dict[str, float]:
    """Every metric of the task."""
    y_true, y_pred = pred.y_true, pred.y_pred
    if task == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "r2": float(skm.r2_score(y_true, y_pred)),
        }
    labels = list(pred.classes)
    proba = np.clip(pred.proba, 1e-15, 1 - 1e-15)
    if task == "binary":
        positive = labels[1]
        score = pred.proba[:, 1]
        is_positive = (y_true == positive).astype(int)
        single_class = is_positive.min() == is_positive.max()
        return {
            "roc_auc": float("nan") if single_class else float(skm.roc_auc_score(is_positive, score)),
            "pr_auc": float("nan") if single_class else float(skm.average_precision_score(is_positive, score)),
            "f1": float(skm.f1_score(y_true, y_pred, pos_label=positive, zero_division=0)),
            "precision": float(skm.precision_score(y_true, y_pred, pos_label=positive, zero_division=0)),
            "recall": float(skm.recall_score(y_true, y_pred, pos_label=positive, zero_division=0)),
            "log_loss": float(skm.log_loss(y_true, proba, labels=labels)),
            "brier": float(np.mean((score - is_positive) ** 2)),
        }
    return {
        "macro_f1": float(skm.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "log_loss": float(skm.log_loss(y_true, proba, labels=labels)),
    }


def confusion(pred: Predictions) -> tuple[list, np.ndarray]:
    """Labels and the confusion matrix (rows: true, columns: predicted)."""
    labels = list(pred.classes)
    return labels, skm.confusion_matrix(pred.y_true, pred.y_pred, labels=labels)


def confusion_record(pred: Predictions) -> dict:
    """The confusion matrix as JSON: {"labels", "matrix"}."""
    labels, matrix = confusion(pred)
    return {"labels": [str(x) for x in labels], "matrix": matrix.tolist()}
