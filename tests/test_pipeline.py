"""The pipeline end to end (validate -> train -> evaluate -> report) for each task, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import multiclass_frame, regression_frame
from mlops.stages.datagen import generate


def _models(project):
    folder = project.root / "models"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def test_binary_pipeline_writes_lineage_metrics_and_report(project):
    """One command produces a versioned model with lineage, real metrics, plots and both reports."""
    code, out, err = project.run("pipeline")
    assert code == 0, err
    assert "Trained" in out and "roc_auc=" in out
    (version,) = _models(project)
    meta = json.loads((project.root / "models" / version / "metadata.json").read_text())
    assert meta["data"]["rows"] == 800 and meta["data"]["train_rows"] + meta["data"]["test_rows"] == 800
    assert len(meta["data"]["fingerprint"]) == 64
    assert meta["libraries"]["scikit-learn"] and meta["classes"] == [0, 1]
    suite = meta["suite"]  # which suite code trained it: this checkout, its commit and code digest
    assert suite["home"] == str(Path(__file__).resolve().parents[1]) and len(suite["code_sha256"]) == 64
    assert suite["version"] == "0.1.0" and suite["ref"] is None  # not run by an action used by tag
    metrics = json.loads((project.root / "reports" / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"roc_auc", "pr_auc", "f1", "precision", "recall", "log_loss", "brier"}
    assert 0.6 < metrics["metrics"]["roc_auc"] <= 1.0  # the generator has learnable signal
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == metrics["test_rows"] == 200
    assert {"roc_curve", "pr_curve", "calibration", "confusion_matrix"} <= set(metrics["plots"])
    report = (project.root / "reports" / "report.md").read_text()
    assert f"roc_auc (primary) | {metrics['metrics']['roc_auc']:.4f}" in report
    assert "Data validation passed" in report
    html = (project.root / "reports" / "report.html").read_text()
    assert html.count("<svg") == 4  # plots are inlined: one self-contained file


def test_multiclass_by_config_only(project):
    """A multiclass dataset runs through the same code by changing only the config."""
    project.write_data(multiclass_frame())
    project.write_config({
        "project": "colours", "task": "multiclass",
        "data": {"source": "data/train.csv", "target": "label", "id_column": "row_id"},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
    })
    project.write_contract()
    code, _, err = project.run("pipeline")
    assert code == 0, err
    metrics = json.loads((project.root / "reports" / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"macro_f1", "accuracy", "log_loss"}
    assert metrics["metrics"]["accuracy"] > 0.6
    assert metrics["confusion_matrix"]["labels"] == ["high", "low", "mid"]


def test_regression_by_config_only(project):
    """A regression dataset with missing values runs by changing only the config."""
    project.write_data(regression_frame())
    project.write_config({
        "project": "houses", "task": "regression",
        "data": {"source": "data/train.csv", "target": "price", "id_column": "house_id"},
        "model": {"estimator": "sklearn.ensemble.HistGradientBoostingRegressor", "params": {"max_iter": 50}},
        "split": {"method": "random", "test_size": 0.3, "seed": 3},
    })
    project.write_contract()
    code, _, err = project.run("pipeline")
    assert code == 0, err
    metrics = json.loads((project.root / "reports" / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"rmse", "mae", "r2"}
    assert metrics["metrics"]["r2"] > 0.8
    assert set(metrics["plots"]) == {"residuals", "predicted_vs_true"}


def _edit_config(project, **changes):
    config = yaml.safe_load(project.config_path.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        config[section][key] = value
    project.write_config(config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model__estimator": "sklearn.ensemble.NoSuchForest"}, "cannot be imported"),
        ({"model__estimator": "sklearn.linear_model.Ridge"}, "is not a classifier"),
        ({"model__params": {"no_such_param": 1}}, "do not fit"),
        ({"data__target": "defaulted"}, "target column 'defaulted'"),
    ],
)
def test_bad_model_config_is_a_clear_error_and_writes_nothing(project, change, message):
    """Unknown estimator, wrong kind, bad params or missing target: Error, non-zero, no model folder."""
    _edit_config(project, **change)
    code, _, err = project.run("train")
    assert code == 1
    assert err.startswith("Error: ") and message in err and "Traceback" not in err
    assert not _models(project)


def test_one_class_target(project):
    """A target with a single class says so instead of failing inside scikit-learn."""
    frame = generate(400, seed=5)
    frame["default"] = 0
    project.write_data(frame)
    code, _, err = project.run("train")
    assert code == 1 and "only one class (0)" in err
    assert not _models(project)


def test_all_null_feature(project):
    """An entirely null feature column is named, with the fix."""
    frame = generate(400, seed=5)
    frame["savings_balance"] = np.nan
    project.write_data(frame)
    code, _, err = project.run("train")
    assert code == 1 and "savings_balance" in err and "every value is null" in err and "update the contract" in err


def test_failed_retrain_keeps_previous_model(project):
    """A failing train leaves the previous version and LATEST untouched."""
    assert project.run("train")[0] == 0
    before = (project.root / "models" / "LATEST").read_text()
    _edit_config(project, model__params={"C": "high"})
    code, _, err = project.run("train")
    assert code == 1, err
    assert (project.root / "models" / "LATEST").read_text() == before
    assert len(_models(project)) == 1


def test_evaluate_without_model(project):
    """Evaluating before training says to train first."""
    code, _, err = project.run("evaluate")
    assert code == 1 and "run `make train` first" in err


def test_error_becomes_github_annotation(project, monkeypatch, tmp_path):
    """Inside GitHub Actions an error is also an ::error:: annotation and a job-summary line."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, err = project.run("evaluate")
    assert code == 1
    assert "::error title=mlops::no trained model" in err
    assert "no trained model" in summary.read_text()


def test_train_refuses_data_that_breaks_the_contract_and_writes_nothing(project):
    """Text in a numeric column is refused before training: no new version, models/LATEST unchanged (it was exit 0)."""
    assert project.run("train")[0] == 0
    before, versions = (project.root / "models" / "LATEST").read_text(), _models(project)
    frame = generate(800, seed=3)
    frame["credit_score"] = frame["credit_score"].astype(object)
    frame.loc[:40, "credit_score"] = "excellent"
    project.write_data(frame)
    code, _, err = project.run("train")
    assert code == 1 and "broke the data contract" in err and "credit_score" in err and "wrong dtype" in err
    assert _models(project) == versions and (project.root / "models" / "LATEST").read_text() == before
    assert project.run("evaluate")[0] == 1  # evaluate refuses the same data


def test_a_failed_run_leaves_no_stale_result_behind(project):
    """A drift.json saying drifted=true, or an old metrics.json, does not survive a run that fails."""
    reports = project.root / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "drift.json").write_text('{"drifted": true}')
    (reports / "metrics.json").write_text('{"metrics": {"roc_auc": 0.99}}')
    assert project.run("drift", "--no-html", "--current", "data/nowhere/*.csv")[0] == 1
    assert not (reports / "drift.json").exists() and not (reports / "drift.md").exists()
    assert project.run("evaluate")[0] == 1  # no trained model yet
    assert not (reports / "metrics.json").exists()
