"""Drift check: decisions against known truth, agreement with evidently, lineage, outputs, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from mlops.config import DriftConfig
from mlops.drift_html import evidently_thresholds
from mlops.drift_stats import P_VALUE, SMALL_REFERENCE, column_drift, dataset_drift, drift_options
from mlops.drift_tests import TEST_NAMES, benjamini_hochberg
from mlops.stages.datagen import DRIFTED_COLUMNS, ID_COLUMN, TARGET, TIME_COLUMN, generate
from mlops.stages.drift import EXIT_DRIFT

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


def _split(size: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One generated sample of 2 x size rows split at random into two halves (same distribution)."""
    both = pl.from_pandas(generate(2 * size, seed=seed))
    order = np.random.default_rng(seed).permutation(both.height)
    return both[order[:size]], both[order[size:]]


def test_same_distribution_small_batches_raise_no_dataset_drift():
    """Same-distribution splits of 100 and 300 rows per side: no dataset drift, under 5% of columns flagged."""
    settings = DriftConfig()
    splits, dataset_alarms, column_alarms, columns = 0, 0, 0, 0
    for size in (100, 300):
        for seed in range(8):
            reference, current = _split(size, 700 + seed)
            results = column_drift(reference, current, _kinds(reference.to_pandas()), **drift_options(settings))
            assert all(r.tested for r in results)
            splits += 1
            dataset_alarms += dataset_drift(results, settings.drift_share)["drifted"]
            column_alarms += sum(r.drifted for r in results)
            columns += len(results)
    assert dataset_alarms == 0, f"{dataset_alarms} of {splits} clean splits called dataset drift"
    assert column_alarms / columns <= 0.05, f"{column_alarms} of {columns} clean columns flagged"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_injected_drift_is_found_at_1000_rows(seed):
    """At 1,000 rows per side (tests decide) the generator's drifted period flags every injected column."""
    reference = pl.from_pandas(generate(1000, seed=seed))
    current = pl.from_pandas(generate(1000, seed=seed + 50, start="2024-07-01", days=31, drift=True))
    results = column_drift(reference, current, _kinds(reference.to_pandas()), threshold=0.1)
    assert {r.column for r in results if r.drifted} >= set(DRIFTED_COLUMNS)
    assert dataset_drift(results, 0.1)["drifted"]
    assert {r.method for r in results} == set(TEST_NAMES)


def test_small_sample_p_values_equal_evidentlys_tests():
    """At small sizes the test is evidently's default choice; KS and Z p-values equal evidently's to 1e-9."""
    # pylint: disable=import-outside-toplevel  # evidently's import is slow; only these tests pay for it
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
    from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
    from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test
    from evidently.legacy.core import ColumnType
    from scipy.stats import chi2_contingency

    reference = generate(600, seed=33)
    current = generate(400, seed=34, start="2024-07-01", days=31, drift=True)
    for frame in (reference, current):  # a numeric column with two values: evidently's Z-test
        frame["delinquent"] = (frame["delinquencies_2y"] > 0).astype(int)
    kinds = _kinds(reference)
    results = column_drift(pl.from_pandas(reference), pl.from_pandas(current), kinds, threshold=0.1,
                           correction="none")
    evidently_name = {"ks": "ks", "z": "z", "chi2_homogeneity": "chisquare"}
    evidently_test = {"ks": _ks_stat_test, "z": _z_stat_test, "chi2_homogeneity": _chi_stat_test}
    for result in results:
        ref, cur = reference[result.column].dropna(), current[result.column].dropna()
        kind = ColumnType.Numerical if result.kind == "numeric" else ColumnType.Categorical
        assert get_stattest(ref, cur, kind, None).name == evidently_name[result.method], result.column
        expected, drifted = evidently_test[result.method](ref, cur, kind, 0.05)
        if result.method == "chi2_homogeneity":  # ours is the two-sample test; evidently's value is kept beside it
            assert result.evidently_value == pytest.approx(expected, rel=1e-9, abs=1e-12), result.column
            table = pd.crosstab(np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref.astype(str), cur.astype(str)])
            assert result.value == pytest.approx(chi2_contingency(table, correction=False)[1], rel=1e-9)
            continue
        assert result.value == pytest.approx(expected, rel=1e-9, abs=1e-12), result.column
        assert result.drifted == bool(drifted), result.column
    assert {r.method for r in results} == set(TEST_NAMES)
    assert {"delinquent", "term_months"} <= {r.column for r in results if r.method == "z"}
    assert next(r for r in results if r.column == "months_since_delinquency").reference_rows < 600  # nulls dropped


def test_evidently_thresholds_reproduce_the_corrected_decisions():
    """evidently's own tests at the thresholds given to the HTML report make the corrected (BH) decisions."""
    # pylint: disable=import-outside-toplevel  # as above
    from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
    from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test
    from evidently.legacy.core import ColumnType

    reference = generate(300, seed=35)
    checked = 0
    for drift in (False, True):
        current = generate(300, seed=36, start="2024-07-01", days=31, drift=drift)
        results = column_drift(pl.from_pandas(reference), pl.from_pandas(current), _kinds(reference), threshold=0.1)
        thresholds = evidently_thresholds(results)
        for result in results:
            ref, cur = reference[result.column].dropna(), current[result.column].dropna()
            kind = ColumnType.Numerical if result.kind == "numeric" else ColumnType.Categorical
            if result.method in ("ks", "z"):
                test = _ks_stat_test if result.method == "ks" else _z_stat_test
                assert bool(test(ref, cur, kind, thresholds[result.column])[1]) == result.drifted, result.column
            else:  # chi2_homogeneity: the worker's registered test flags p <= threshold
                assert (result.value <= thresholds[result.column]) == result.drifted, result.column
            checked += result.drifted
    assert checked >= len(DRIFTED_COLUMNS)


def test_config_defaults_are_the_statistics_defaults():
    """DriftConfig's defaults switch where evidently does (1,000 reference values) at p < 0.05, with the correction."""
    settings = DriftConfig()
    assert (settings.small_sample_rows, settings.p_value) == (SMALL_REFERENCE, P_VALUE) == (1000, 0.05)
    assert settings.correction == "benjamini-hochberg"


def test_benjamini_hochberg_matches_the_textbook_procedure():
    """Adjusted p-values: sorted p times m over rank, made monotone from the top, capped at 1, original order."""
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])
    assert not benjamini_hochberg([])


def test_the_switch_is_at_small_sample_rows_and_nothing_changes_above_it():
    """1,000 reference values: tests decide; 1,001: the distances decide exactly as with tests switched off."""
    current = pl.from_pandas(generate(1200, seed=38, start="2024-07-01", days=31, drift=True))
    small = pl.from_pandas(generate(1000, seed=37))
    kinds = _kinds(small.to_pandas())
    assert all(r.tested for r in column_drift(small, current, kinds, threshold=0.1))
    large = pl.from_pandas(generate(1001, seed=37))
    switched = column_drift(large, current, kinds, threshold=0.1)
    distances = column_drift(large, current, kinds, threshold=0.1, small_sample_rows=0)
    for ours, before in zip(switched, distances):
        if ours.reference_rows > 1000:
            assert ours == before and ours.rule == f"{ours.method} >= 0.1"
        else:  # a column with nulls: its non-null reference values are few, so it is tested (as in evidently)
            assert ours.tested and ours.rule.endswith("(KS test)"), ours.column
    assert sum(r.reference_rows > 1000 for r in switched) >= 15
    assert {r.column for r in switched if r.drifted} >= set(DRIFTED_COLUMNS)


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
    # 800 reference rows: the tests decide, so a distance threshold changes nothing here.
    assert project.run("drift", "--no-html", "--threshold", "0.9")[0] == EXIT_DRIFT
    project.write_data(generate(1500, seed=3))
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
    # 800 reference rows: target and prediction drift use the same small-sample rule as the columns.
    assert record["prediction_drift"]["rule"] == "p-value < 0.05 (KS test)"
    assert record["target_drift"]["rule"] == "p-value < 0.05 (Z-test)"
    performance = record["performance"]
    assert performance["metric"] == "roc_auc" and performance["rows"] == 1500
    assert performance["holdout"] is not None and not performance["drifted"]


def test_threshold_override_applies_to_every_check(project):
    """--threshold is the distance threshold of the columns, the target and the prediction drift alike (drift.json)."""
    project.write_data(generate(1500, seed=3))  # above drift.small_sample_rows: distances decide
    project.write_contract()
    # Prediction drift's reference is the champion's held-out outputs: hold out 1,050 rows, above the switch too.
    config = __import__("yaml").safe_load(project.config_path.read_text())
    project.write_config({**config, "split": {**config["split"], "test_size": 0.7}})
    assert project.run("train")[0] == 0
    _write_current(project, generate(1500, seed=52, start="2024-07-01", days=31, drift=True))
    assert project.run("drift", "--no-html", "--exit-zero", "--threshold", "0.37")[0] == 0
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["settings"]["threshold"] == 0.37
    assert {c["threshold"] for c in record["columns"] if c["method"] == "wasserstein"} == {0.37}
    # A sparse column (about 390 non-null reference values) is tested whatever the distance threshold.
    assert {c["threshold"] for c in record["columns"] if c["method"] == "ks"} == {0.05}
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


def test_prediction_drift_compares_with_the_champions_held_out_outputs(project):
    """The prediction reference is evaluate's record of the held-out outputs; without it, the same rows scored now."""
    # pylint: disable=import-outside-toplevel  # only this test reads the model folder
    from mlops.config import load_config
    from mlops.lineage import HOLDOUT_PREDICTIONS

    assert project.run("train")[0] == 0 and project.run("evaluate")[0] == 0
    config = load_config(project.config_path)
    model_dir = config.models_dir / (config.models_dir / "LATEST").read_text().strip()
    held_out = json.loads((model_dir / "metrics.json").read_text())["test_rows"]
    recorded = pl.read_parquet(model_dir / HOLDOUT_PREDICTIONS)
    assert recorded.height == held_out == 200 and recorded.get_column("prediction").is_between(0, 1).all()
    _write_current(project, generate(1500, seed=53, start="2024-07-01", days=31, drift=True))
    project.run("drift", "--no-html")
    from_record = json.loads((project.root / "reports/drift.json").read_text())["prediction_drift"]
    assert from_record["reference_rows"] == held_out and HOLDOUT_PREDICTIONS in from_record["reference"]

    (model_dir / HOLDOUT_PREDICTIONS).unlink()  # an older model: its held-out rows are scored now
    project.run("drift", "--no-html")
    scored = json.loads((project.root / "reports/drift.json").read_text())["prediction_drift"]
    assert "scored now" in scored["reference"] and scored["reference_rows"] == held_out
    assert scored["value"] == pytest.approx(from_record["value"], rel=1e-12)
    assert scored["drifted"] == from_record["drifted"]


class _SlowReport:
    """Stands in for the evidently worker: records what drift.json held while the report was awaited."""

    seen: list = []

    def __init__(self, enabled: bool):
        self.process = object() if enabled else None
        self.reports = None

    def send(self, job):
        """Remember where the reports go."""
        self.reports = __import__("pathlib").Path(job["out"]).parent

    def wait(self, timeout):
        """What a report past its timeout returns, after looking at drift.json."""
        _SlowReport.seen.append(json.loads((self.reports / "drift.json").read_text()))
        return f"the evidently report took longer than {timeout:g}s (drift.report_timeout_seconds) and was stopped"

    def stop(self):
        """Nothing runs."""


def test_the_decision_is_written_before_the_html_report_and_does_not_depend_on_it(project, monkeypatch):
    """drift.json and drift.md hold the decision while the report is awaited; a report that times out changes
    neither the decision nor the exit code."""
    _write_current(project, generate(1500, seed=54, start="2024-07-01", days=31, drift=True))
    assert project.run("drift", "--no-html")[0] == EXIT_DRIFT
    without = json.loads((project.root / "reports/drift.json").read_text())
    monkeypatch.setattr("mlops.stages.drift.HtmlReport", _SlowReport)
    _SlowReport.seen.clear()
    assert project.run("drift")[0] == EXIT_DRIFT
    assert len(_SlowReport.seen) == 1
    pending = _SlowReport.seen[0]
    final = json.loads((project.root / "reports/drift.json").read_text())
    assert pending["html_status"] == "pending" and pending["html_report"] is None
    assert final["html_status"] == "failed" and "took longer" in final["html_error"] and final["html_report"] is None
    volatile = {"generated_at", "seconds", "html_status", "html_report", "html_error"}
    for record in (pending, final):
        assert {k: v for k, v in record.items() if k not in volatile} == \
            {k: v for k, v in without.items() if k not in volatile}
    assert not (project.root / "reports/drift.html").exists()


def test_a_real_report_past_its_timeout_is_stopped(project):
    """With drift.report_timeout_seconds too short for evidently, the worker is stopped, no drift.html is left,
    and the exit code is the decision's."""
    config = __import__("yaml").safe_load(project.config_path.read_text())
    project.write_config({**config, "drift": {"report_timeout_seconds": 0.05}})
    _write_current(project, generate(1500, seed=55, start="2024-07-01", days=31, drift=True))
    assert project.run("drift")[0] == EXIT_DRIFT
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["html_status"] == "failed" and "drift.report_timeout_seconds" in record["html_error"]
    assert record["drifted"] and not (project.root / "reports/drift.html").exists()


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
    """The HTML report is evidently's, with our method per column: distances, and tests for sparse columns."""
    reference = generate(1100, seed=3)
    reference.loc[reference.index % 5 < 2, "region"] = None  # 660 non-null values: tested, like the sparse numeric
    project.write_data(reference)
    _write_current(project, generate(1200, seed=80, start="2024-07-01", days=31, drift=True))
    code, _, _ = project.run("drift")
    assert code == EXIT_DRIFT
    html = (project.root / "reports/drift.html").read_text()
    assert "Dataset Drift" in html and "annual_income" in html
    for method in ("Wasserstein distance (normed)", "Jensen-Shannon distance", "K-S p_value",
                   "chi-square homogeneity p_value"):
        assert method in html, method
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["html_report"] == "drift.html" and record["html_error"] is None
    assert record["html_status"] == "written" and record["seconds"]["total"] >= record["seconds"]["decision"]


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


def test_drift_json_and_md_say_which_rule_decided(project):
    """drift.json names each column's rule (corrected p-value at 800 rows, distance at 1,500) and the dataset's."""
    _write_current(project, generate(600, seed=90, start="2024-07-01", days=31))
    assert project.run("drift", "--no-html")[0] == 0
    record = json.loads((project.root / "reports/drift.json").read_text())
    income = next(c for c in record["columns"] if c["column"] == "annual_income")
    assert income["method"] == "ks" and income["threshold"] == 0.05 and income["adjusted"] >= income["value"]
    assert income["rule"] == "Benjamini-Hochberg adjusted p-value < 0.05 over 22 tested columns (KS test)"
    assert record["dataset_drift"]["tested_columns"] == 22
    assert "Benjamini-Hochberg" in record["dataset_drift"]["rule"]
    assert record["settings"]["small_sample_rows"] == 1000 and record["settings"]["p_value"] == 0.05
    markdown = (project.root / "reports/drift.md").read_text()
    assert "| decided by |" in markdown and "| adjusted p < 0.05 |" in markdown

    project.write_data(generate(1500, seed=3))
    assert project.run("drift", "--no-html")[0] == 0
    record = json.loads((project.root / "reports/drift.json").read_text())
    income = next(c for c in record["columns"] if c["column"] == "annual_income")
    assert income["method"] == "wasserstein" and income["rule"] == "wasserstein >= 0.1" and income["adjusted"] is None
    assert record["dataset_drift"]["tested_columns"] == 1  # months_since_delinquency: ~390 non-null values
