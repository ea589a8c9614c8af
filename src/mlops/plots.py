"""Evaluation plots as SVG files (matplotlib, no display needed).

Input: :class:`~mlops.metrics.Predictions` and the task, or curves of two models. Output:
``reports/plots/<name>.svg`` (:func:`make_plots`) and inline SVG text (:func:`curve_overlays`);
the HTML reports inline them, so each stays one self-contained file.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI runners have no display

import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position  # must follow use("Agg")
import numpy as np  # pylint: disable=wrong-import-position  # grouped with the plotting imports
from sklearn import metrics as skm  # pylint: disable=wrong-import-position  # same
from sklearn.calibration import calibration_curve  # pylint: disable=wrong-import-position  # same

from mlops.io import atomic_path  # pylint: disable=wrong-import-position  # same
from mlops.metrics import Predictions, confusion  # pylint: disable=wrong-import-position  # same


def _save(fig, folder: Path, name: str) -> Path:
    path = folder / f"{name}.svg"
    with atomic_path(path) as temp:
        fig.savefig(temp, format="svg", bbox_inches="tight")
    plt.close(fig)
    return path


def _confusion_plot(pred: Predictions, folder: Path) -> Path:
    labels, matrix = confusion(pred)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(x) for x in labels], rotation=45)
    ax.set_yticks(range(len(labels)), [str(x) for x in labels])
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="black")
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    return _save(fig, folder, "confusion_matrix")


def _binary_plots(pred: Predictions, folder: Path) -> dict[str, Path]:
    positive = (pred.y_true == pred.positive_label).astype(int)
    score = pred.positive_score
    out = {}
    if positive.min() != positive.max():
        fpr, tpr, _ = skm.roc_curve(positive, score)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(fpr, tpr, label=f"AUC {skm.auc(fpr, tpr):.3f}")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        ax.legend(loc="lower right")
        out["roc_curve"] = _save(fig, folder, "roc_curve")
        precision, recall, _ = skm.precision_recall_curve(positive, score)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(recall, precision)
        ax.axhline(positive.mean(), linestyle="--", color="grey", label="base rate")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
        ax.legend(loc="upper right")
        out["pr_curve"] = _save(fig, folder, "pr_curve")
    frac_pos, mean_pred = calibration_curve(positive, score, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(mean_pred, frac_pos, marker="o")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title="Calibration")
    out["calibration"] = _save(fig, folder, "calibration")
    return out


def _regression_plots(pred: Predictions, folder: Path) -> dict[str, Path]:
    residual = pred.y_true - pred.y_pred
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(pred.y_pred, residual, s=4, alpha=0.4)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set(xlabel="predicted", ylabel="residual (true - predicted)", title="Residuals")
    out = {"residuals": _save(fig, folder, "residuals")}
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(pred.y_true, pred.y_pred, s=4, alpha=0.4)
    low, high = float(np.min(pred.y_true)), float(np.max(pred.y_true))
    ax.plot([low, high], [low, high], color="grey", linestyle="--")
    ax.set(xlabel="true", ylabel="predicted", title="Predicted vs true")
    out["predicted_vs_true"] = _save(fig, folder, "predicted_vs_true")
    return out


def make_plots(task: str, pred: Predictions, folder: Path, max_points: int = 20_000) -> dict[str, Path]:
    """Write the task's plots into ``folder``; scatter plots use at most ``max_points`` rows."""
    folder.mkdir(parents=True, exist_ok=True)
    if task == "regression":
        if len(pred.y_true) > max_points:
            keep = np.random.default_rng(0).choice(len(pred.y_true), max_points, replace=False)
            pred = Predictions(pred.y_true[keep], pred.y_pred[keep], None, ())
        return _regression_plots(pred, folder)
    out = {"confusion_matrix": _confusion_plot(pred, folder)}
    if task == "binary":
        out.update(_binary_plots(pred, folder))
    return out


def curve_overlays(curves: dict) -> dict[str, str]:
    """ROC / PR overlays of several models as inline SVG text ({} when there are no curves)."""
    if not curves:
        return {}
    out = {}
    for key, title, xlabel, ylabel in (("roc", "ROC curve", "false positive rate", "true positive rate"),
                                       ("pr", "Precision-recall curve", "recall", "precision")):
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for label, values in curves[key].items():
            ax.plot(curves["grid"], values, marker="o", label=label)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="lower right" if key == "roc" else "lower left")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
        plt.close(fig)
        out[key] = buffer.getvalue()[buffer.getvalue().find("<svg"):]
    return out
