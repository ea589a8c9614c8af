"""Drift check: decisions against known truth, agreement with evidently, lineage, outputs, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from mlops.stages.datagen import DRIFTED_COLUMNS, ID_COLUMN, TARGET, TIME_COLUMN, generate
from mlops.stages.drift import EXIT_DRIFT
from mlops.drift_stats import column_drift

SKIP = {ID_COLUMN, TIME_COLUMN, TARGET}


def _kinds(frame: pd.DataFrame) -> dict[str, str]:
    return {c: ("numeric" if frame[c].dtype.kind in "if" else "categorical") for c in frame.columns if c not in SKIP}


def _drifted(reference: pd.DataFrame, current: pd.DataFrame, **kwargs) -> set[str]:
    results = column_drift(pl.from_pandas(reference), pl.from_pandas(current), _kinds(reference),
                           threshold=0.1, **kwargs)
    return {r.column for r in results if r.drifted}


def test_injected_drift_is_detected_exactly():
    """The generator's drifted period flags exactly the columns it shifts, no others."""
    reference = generate(5000, seed=11)
    current = generate(3000, seed=12, start="2024-07-01", days=31, drift=True)
    assert _drifted(reference, current) == set(DRIFTED_COLUMNS)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_same_distribution_raises_no_alarm(seed):
    """Two samples of the same distribution (different seeds and dates) flag no column."""
    reference = generate(4000, seed=seed)
    current = generate(4000, seed=seed + 100, start="2024-07-01", days=31)
    assert not _drifted(reference, current)


def test_psi_and_numeric_jensenshannon_detect_the_same_columns():
    """The alternative methods (PSI, JS on numeric histograms) also find exactly the injected columns."""
    reference = generate(5000, seed=5)
    current = generate(5000, seed=6, drift=True)
    assert _drifted(reference, current, numeric_method="psi", categorical_method="psi") >= set(DRIFTED_COLUMNS)
    assert _drifted(reference, current, numeric_method="jensenshannon") == set(DRIFTED_COLUMNS)


def test_values_agree_with_evidentlys_own_tests():
    """Each method's value equals evidently 0.7.23's implementation on the same columns (with nulls)."""
    # pylint: disable=import-outside-toplevel  # evidently's import is slow; only this test pays for it
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
    from evidently.legacy.core import ColumnType

    reference = generate(3000, seed=31)
    current = generate(2000, seed=32, drift=True)
    columns = {"annual_income": "numeric", "open_accounts": "numeric", "delinquencies_2y": "numeric",
               "employment_years": "numeric", "purpose": "categorical", "grade": "categorical"}
    evidently = {"wasserstein": _wasserstein_distance_norm, "jensenshannon": _jensenshannon, "psi": _psi}
    checked = set()
    for numeric, categorical in (("wasserstein", "jensenshannon"), ("jensenshannon", "jensenshannon"),
                                 ("psi", "psi")):
        results = column_drift(pl.from_pandas(reference), pl.from_pandas(current), columns, threshold=0.1,
                               numeric_method=numeric, categorical_method=categorical)
        for result in results:
            kind = ColumnType.Numerical if result.kind == "numeric" else ColumnType.Categorical
            expected, drifted = evidently[result.method](
                reference[result.column].dropna(), current[result.column].dropna(), kind, 0.1)
            assert result.value == pytest.approx(expected, rel=1e-9, abs=1e-12), (result.column, result.method)
            assert result.drifted == bool(drifted)
            checked.add((result.column, result.method))
    assert ("delinquencies_2y", "jensenshannon") in checked  # low-cardinality numeric: evidently's JS rule
    assert len(checked) == 15  # 6 columns x 3 methods, less the 3 that use JS in two runs


def test_empty_current_column_is_flagged_with_a_note():
    """A column with no values left in the current data counts as drifted and says why."""
    reference = pl.DataFrame({"x": np.arange(2000, dtype=float)})
    current = pl.DataFrame({"x": [None] * 100}, schema={"x": pl.Float64})
    result = column_drift(reference, current, {"x": "numeric"}, threshold=0.1)[0]
    assert result.drifted and result.value is None and "current" in result.note


def _write_current(project, frame: pd.DataFrame) -> None:
    project.write_data(frame, "data/production/batch.csv")


def test_cli_exit_codes_outputs_and_github_output(project, tmp_path, monkeypatch):
    """Drift exits 3 and writes drifted=true; a clean batch exits 0 and writes drifted=false."""
    output = tmp_path / "github_output"
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _write_current(project, generate(1500, seed=40, start="2024-07-01", days=31, drift=True))
    code, out, _ = project.run("drift", "--no-html")
    assert code == EXIT_DRIFT, out
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["drifted"] and record["dataset_drift"]["drifted"]
    assert {c["column"] for c in record["columns"] if c["drifted"]} == set(DRIFTED_COLUMNS)
    assert record["reference"]["origin"].startswith("data.source")
    markdown = (project.root / "reports/drift.md").read_text()
    assert "drift found" in markdown and "`annual_income`" in markdown
    assert summary.read_text().count("## Drift check") == 1

    _write_current(project, generate(1500, seed=41, start="2024-07-01", days=31))
    code, out, _ = project.run("drift", "--no-html")
    assert code == 0, out
    assert output.read_text().splitlines() == ["drifted=true", "drifted=false"]
    assert "No drift" in out

    _write_current(project, generate(1500, seed=40, start="2024-07-01", days=31, drift=True))
    assert project.run("drift", "--no-html", "--exit-zero")[0] == 0
    assert project.run("drift", "--no-html", "--threshold", "0.9")[0] == 0


def test_errors_exit_1_with_a_clear_message(project):
    """A missing batch or a batch without a feature column is an error (exit 1), not 'no drift'."""
    code, _, err = project.run("drift", "--no-html", "--current", "data/nowhere/*.csv")
    assert code == 1 and "Error: drift.current: no data found" in err
    _write_current(project, generate(500, seed=42).drop(columns=["credit_score"]))
    code, _, err = project.run("drift", "--no-html")
    assert code == 1 and "credit_score" in err and "feature column" in err
    assert project.run("drift", "--no-html", "--threshold", "0")[0] == 1


def test_reference_follows_the_champions_lineage(project):
    """With a trained model, the reference is the files its lineage record names, not today's data.source."""
    assert project.run("train")[0] == 0
    assert project.run("evaluate")[0] == 0
    # Point data.source elsewhere: the drift check must still compare with what the model saw.
    other = generate(900, seed=50, drift=True)
    project.write_data(other, "data/other.csv")
    config = json.loads(json.dumps(__import__("yaml").safe_load(project.config_path.read_text())))
    config["data"]["source"] = "data/other.csv"
    project.write_config(config)
    _write_current(project, generate(1500, seed=51, start="2024-07-01", days=31))
    code, out, _ = project.run("drift", "--no-html")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["reference"]["sources"] == ["data/train.csv"]
    assert record["reference"]["origin"] == "models/LATEST"
    assert code == 0, out
    assert record["prediction_drift"]["column"] == "prediction"
    performance = record["performance"]
    assert performance["metric"] == "roc_auc" and performance["rows"] == 1500
    assert performance["holdout"] is not None and not performance["drifted"]


def test_threshold_override_applies_to_every_check(project):
    """--threshold is the threshold of the columns, the target and the prediction drift alike (drift.json)."""
    assert project.run("train")[0] == 0
    _write_current(project, generate(1500, seed=52, start="2024-07-01", days=31, drift=True))
    assert project.run("drift", "--no-html", "--exit-zero", "--threshold", "0.37")[0] == 0
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["settings"]["threshold"] == 0.37
    assert {c["threshold"] for c in record["columns"]} == {0.37}
    assert record["target_drift"]["threshold"] == 0.37
    assert record["prediction_drift"]["threshold"] == 0.37  # was drift.threshold (0.1) before the fix


def test_performance_drift_alone_makes_the_run_drifted(project):
    """Labels that no longer follow the features (same feature distribution) are performance drift."""
    assert project.run("train")[0] == 0
    assert project.run("evaluate")[0] == 0
    current = generate(1500, seed=60, start="2024-07-01", days=31)
    current[TARGET] = np.random.default_rng(0).permutation(current[TARGET].to_numpy())
    _write_current(project, current)
    code, _, _ = project.run("drift", "--no-html")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert not record["dataset_drift"]["drifted"]
    assert record["performance"]["drifted"] and record["drifted"]
    assert code == EXIT_DRIFT
    assert "Performance drift" in (project.root / "reports/drift.md").read_text()


def test_registry_prod_pointer_wins_over_latest(project):
    """When the registry's prod pointer names a version, that version's training data is the reference."""
    # pylint: disable=import-outside-toplevel  # only this test needs the registry
    from mlops.config import load_config
    from mlops.registry import Registry

    assert project.run("train")[0] == 0
    config = load_config(project.config_path)
    prod_dir = config.models_dir / (config.models_dir / "LATEST").read_text().strip()
    registry = Registry.from_config(config)
    registry.set_pointer("prod", registry.register(prod_dir))
    project.write_data(generate(900, seed=70), "data/later.csv")
    assert project.run("train", "--data", str(project.root / "data/later.csv"))[0] == 0
    _write_current(project, generate(1200, seed=71, start="2024-07-01", days=31))
    project.run("drift", "--no-html")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["reference"]["origin"] == "registry prod pointer"
    assert record["reference"]["model_version"] == prod_dir.name
    assert record["reference"]["sources"] == ["data/train.csv"]


def test_html_report_is_evidentlys(project):
    """The HTML report is written by evidently's worker and names the checked columns."""
    _write_current(project, generate(1200, seed=80, start="2024-07-01", days=31, drift=True))
    code, _, _ = project.run("drift")
    assert code == EXIT_DRIFT
    html = (project.root / "reports/drift.html").read_text()
    assert "Dataset Drift" in html and "Wasserstein distance (normed)" in html and "annual_income" in html
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["html_report"] == "drift.html" and record["html_error"] is None


BUNDLED = {"wine": ("load_wine", "multiclass"), "diabetes": ("load_diabetes", "regression"),
           "breast_cancer": ("load_breast_cancer", "binary")}


def _bundled_frame(name: str) -> pd.DataFrame:
    """A scikit-learn bundled dataset with its target and a derived categorical column (a binned feature)."""
    from sklearn import datasets  # pylint: disable=import-outside-toplevel  # only these tests need the datasets

    loader, task = BUNDLED[name]
    frame = getattr(datasets, loader)(as_frame=True).frame
    first = frame.columns[0]
    frame["band"] = pd.qcut(frame[first], 4, labels=["low", "mid", "high", "top"]).astype(str)
    if task == "multiclass":
        frame["target"] = "class_" + frame["target"].astype(str)
    return frame


@pytest.mark.xfail(reason="a distance at a fixed 0.1 is sampling noise at 44-142 rows: most columns drift",
                   strict=True)
@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_dataset_split_at_random_has_no_dataset_drift(project, name):
    """A scikit-learn dataset split at random into reference and a 25% batch is not dataset drift."""
    frame = _bundled_frame(name)
    order = np.random.default_rng(0).permutation(len(frame))
    cut = len(frame) - len(frame) // 4
    project.write_config({"project": f"bundled-{name.replace('_', '-')}", "task": BUNDLED[name][1],
                          "data": {"source": "data/train.csv", "target": "target"},
                          "split": {"method": "random", "test_size": 0.25, "seed": 7}})
    project.write_data(frame.iloc[order[:cut]])
    project.write_contract()
    _write_current(project, frame.iloc[order[cut:]])
    code, out, _ = project.run("drift", "--no-html")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert not record["dataset_drift"]["drifted"], out
    assert code == 0, out
