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
    """A model's output on some rows; ``proba`` columns follow ``classes``.

    ``positive`` is a binary task's positive class (``data.positive_label``; by default the
    second of the sorted classes, as scikit-learn orders them).
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    classes: tuple
    positive: object = None

    @property
    def positive_label(self):
        """The positive class of a binary task."""
        return self.classes[1] if self.positive is None else self.positive

    @property
    def positive_score(self) -> np.ndarray:
        """P(positive class) per row."""
        return self.proba[:, list(self.classes).index(self.positive_label)]

    def subset(self, keep: np.ndarray) -> Predictions:
        """The same predictions on the rows ``keep`` selects."""
        proba = self.proba[keep] if self.proba is not None else None
        return Predictions(self.y_true[keep], self.y_pred[keep], proba, self.classes, self.positive)


def positive_label(labels, configured):
    """The positive class among ``labels`` (sorted classes of a binary task): the configured one, else the second.

    A configured label given as text (YAML) matches a class by its text, so ``"1"`` finds ``1``.
    """
    if configured is None:
        return labels[1] if len(labels) > 1 else None
    for label in labels:
        if label == configured or str(label) == str(configured):
            return label
    raise ValueError(f"data.positive_label {configured!r} is not one of the classes {list(labels)}")


def predict(pipeline: Pipeline, x, y_true, task: str, positive=None) -> Predictions:
    """Run the model on ``x`` (``positive``: data.positive_label for a binary task)."""
    y_true = np.asarray(y_true)
    if task == "regression":
        return Predictions(y_true, np.asarray(pipeline.predict(x), dtype=float), None, ())
    proba = pipeline.predict_proba(x)
    classes = tuple(pipeline.classes_.tolist())
    y_pred = np.asarray(pipeline.classes_)[proba.argmax(axis=1)]
    chosen = positive_label(classes, positive) if task == "binary" else None
    return Predictions(y_true, y_pred, proba, classes, chosen)


def model_outputs(pred: Predictions, task: str) -> np.ndarray:
    """What prediction drift compares: P(positive) for binary, the label (as text) for multiclass, the value for
    regression."""
    if task == "binary":
        return np.asarray(pred.positive_score, dtype=float)
    if task == "multiclass":
        return np.asarray([str(v) for v in pred.y_pred.tolist()], dtype=object)
    return np.asarray(pred.y_pred, dtype=float)


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
        positive = pred.positive_label
        score = pred.positive_score
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
    # Macro F1 over the classes present in these rows (true or predicted), as scikit-learn's default:
    # a class absent from a slice is not a 0 that drags the slice's average down.
    return {
        "macro_f1": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "log_loss": float(skm.log_loss(y_true, proba, labels=labels)),
    }


def undefined_reason(task: str, pred: Predictions, metric: str, value: float) -> str | None:
    """Why ``metric`` is NaN on these rows (one class, too few rows), or None when it is a number."""
    if not np.isnan(value):
        return None
    if task == "binary":
        classes = sorted({str(v) for v in pred.y_true.tolist()})
        return f"{metric} needs both classes, but the {len(pred.y_true)} rows hold only {', '.join(classes)}"
    if task == "regression":
        return f"{metric} needs rows whose targets vary; the {len(pred.y_true)} rows have one value"
    return f"{metric} is undefined on these {len(pred.y_true)} rows"


def confusion(pred: Predictions) -> tuple[list, np.ndarray]:
    """Labels and the confusion matrix (rows: true, columns: predicted)."""
    labels = list(pred.classes)
    return labels, skm.confusion_matrix(pred.y_true, pred.y_pred, labels=labels)


def confusion_record(pred: Predictions) -> dict:
    """The confusion matrix as JSON: {"labels", "matrix"}."""
    labels, matrix = confusion(pred)
    return {"labels": [str(x) for x in labels], "matrix": matrix.tolist()}
