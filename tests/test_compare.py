"""Champion vs challenger: paired bootstrap, gates, slices, champion resolution, report, `make compare`."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from conftest import BASE_CONFIG, ROOT, multiclass_frame
from mlops import champion as champion_mod
from mlops import s3
from mlops.intervals import paired_bootstrap, resample_counts, weighted_metrics
from mlops.errors import MlopsError
from mlops.gates import check_gates, slice_rows, slice_values
from mlops.comparison import compare
from mlops.stages.compare import render_reports as render
from mlops.config import load_config
from mlops.data import load_training
from mlops.metrics import Predictions, compute
from mlops.registry import Registry
from mlops.stages.datagen import generate
from mlops.render import MAX_COMMENT_CHARS


def _binary(n: int, seed: int, noise: float = 0.0, round_to: int | None = 2) -> Predictions:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.35 * y + rng.random(n) * 0.65 + rng.normal(0, noise, n), 0, 1)
    if round_to is not None:
        score = np.round(score, round_to)  # ties in the scores, as real models have
    return Predictions(y, (score > 0.5).astype(int), np.c_[1 - score, score], (0, 1))


def _with_y(pred: Predictions, y: np.ndarray) -> Predictions:
    return Predictions(y, pred.y_pred, pred.proba, pred.classes)


def _multiclass(n: int, seed: int) -> Predictions:
    rng = np.random.default_rng(seed)
    classes = ("high", "low", "mid")
    proba = rng.dirichlet([1, 1, 1], n)
    y = np.array(classes, dtype=object)[rng.integers(0, 3, n)]
    return Predictions(y, np.array(classes, dtype=object)[proba.argmax(axis=1)], proba, classes)


def _regression(n: int, seed: int) -> Predictions:
    rng = np.random.default_rng(seed)
    y = rng.normal(50, 10, n)
    return Predictions(y, y + rng.normal(0, 3, n), None, ())


CASES = {"binary": _binary, "multiclass": _multiclass, "regression": _regression}


@pytest.mark.parametrize("task", list(CASES))
def test_weighted_metrics_equal_sklearn_on_the_full_sample(task):
    """With every row counted once, the vectorised metrics equal mlops.metrics.compute (ties included)."""
    pred = CASES[task](500, 1)
    vectorised = weighted_metrics(task, pred)(np.ones((500, 1), dtype=np.float32))
    for name, value in compute(task, pred).items():
        assert vectorised[name][0] == pytest.approx(value, rel=1e-5, abs=1e-6), name


@pytest.mark.parametrize("task", list(CASES))
def test_each_resample_equals_a_slow_reference_loop(task):
    """Every bootstrap resample's metric equals scikit-learn on the explicitly resampled rows."""
    pred = CASES[task](120, 2)
    counts = np.concatenate(list(resample_counts(120, 30, seed=5)), axis=1)
    fast = weighted_metrics(task, pred)(counts)
    for b in range(counts.shape[1]):
        rows = np.repeat(np.arange(120), counts[:, b].astype(int))
        proba = pred.proba[rows] if pred.proba is not None else None
        slow = compute(task, Predictions(pred.y_true[rows], pred.y_pred[rows], proba, pred.classes))
        for name, value in slow.items():
            assert fast[name][b] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, b)


def test_interval_matches_the_known_sampling_distribution_of_a_paired_difference():
    """For accuracy, the paired CI is mean(d) +- z * sd(d) / sqrt(n) of the per-row differences d."""
    rng = np.random.default_rng(3)
    n = 4000
    y = rng.integers(0, 2, n)

    def model(accuracy: float) -> Predictions:
        guess = np.where(rng.random(n) < accuracy, y, 1 - y)
        proba = np.where(guess[:, None] == np.array([0, 1])[None, :], 0.9, 0.1)
        return Predictions(y, guess, proba, (0, 1))

    champion, challenger = model(0.80), model(0.83)
    interval = paired_bootstrap("multiclass", champion, challenger, resamples=2000, seed=11)["accuracy"]
    d = (challenger.y_pred == y).astype(float) - (champion.y_pred == y).astype(float)
    expected_half = 1.959964 * d.std(ddof=1) / np.sqrt(n)
    low, high = interval["ci_low"], interval["ci_high"]
    assert (low + high) / 2 == pytest.approx(d.mean(), abs=0.002)
    assert (high - low) / 2 == pytest.approx(expected_half, rel=0.08)


def test_pairing_cancels_shared_noise_and_identical_models_give_zero():
    """Identical models have a zero-width interval; a near-copy's interval is far narrower than unpaired."""
    champion = _binary(3000, 4, round_to=None)
    same = paired_bootstrap("binary", champion, champion, resamples=200)
    assert same["roc_auc"]["ci_low"] == same["roc_auc"]["ci_high"] == 0.0
    rng = np.random.default_rng(9)
    score = np.clip(champion.proba[:, 1] + rng.normal(0, 0.02, 3000), 0, 1)
    near = Predictions(champion.y_true, (score > 0.5).astype(int), np.c_[1 - score, score], (0, 1))
    paired = paired_bootstrap("binary", champion, near, resamples=300)["roc_auc"]
    unpaired_se = np.hypot(*(np.std([compute("binary", _resample(p, rng))["roc_auc"] for _ in range(100)])
                             for p in (champion, near)))
    assert paired["se"] < unpaired_se / 4


def _resample(pred: Predictions, rng) -> Predictions:
    rows = rng.integers(0, len(pred.y_true), len(pred.y_true))
    return Predictions(pred.y_true[rows], pred.y_pred[rows], pred.proba[rows], pred.classes)


def test_bootstrap_refuses_unpaired_rows():
    """Scoring the two models on different rows is a programming error, not a silent comparison."""
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap("binary", _binary(50, 1), _binary(50, 2))


# ---------------------------------------------------------------- gates and slices


def _config(project, **sections):
    raw = copy.deepcopy(BASE_CONFIG)
    raw.update(sections)
    project.write_config(raw)
    return load_config(project.config_path)


def _result(primary: dict, validation_passed: bool = True, slices=()) -> dict:
    row = {"name": "roc_auc", "primary": True, "champion": None, "delta": None, "ci_low": None, "ci_high": None}
    row.update(primary)
    return {"metrics": [row], "confidence": 0.95, "slices": list(slices),
            "validation": {"passed": validation_passed, "failures": [] if validation_passed else [{}, {}],
                           "schema_file": "schema.yaml"}}


def test_min_primary_gate_message_names_value_gate_and_key(project):
    """A challenger below gates.min_primary fails with the value, the gate and where to change it."""
    config = _config(project, gates={"min_primary": 0.75})
    gates = check_gates(config, _result({"challenger": 0.71}))
    assert gates == [
        {"gate": "min_primary", "passed": False,
         "detail": "roc_auc=0.7100 is below the gate 0.75 (gates.min_primary in mlops.yaml)"},
        {"gate": "require_validation", "passed": True, "detail": "the data meets the contract schema.yaml"},
    ]


@pytest.mark.parametrize("delta, ci, passed", [
    (-0.030, (-0.045, -0.015), False),  # a real drop beyond max_drop
    (-0.030, (-0.060, +0.002), True),   # as large, but the interval includes no change: noise
    (-0.005, (-0.009, -0.001), True),   # a real drop within max_drop
    (+0.020, (+0.010, +0.030), True),   # better
])
def test_max_drop_gate_uses_the_interval(project, delta, ci, passed):
    """The drop gate fails only when the drop exceeds gates.max_drop and its interval excludes zero."""
    config = _config(project, gates={"max_drop": 0.01})
    result = _result({"challenger": 0.8 + delta, "champion": 0.8, "delta": delta, "ci_low": ci[0], "ci_high": ci[1]})
    (gate,) = [g for g in check_gates(config, result) if g["gate"] == "max_drop"]
    assert gate["passed"] is passed
    if not passed:
        assert "more than the allowed 0.01 (gates.max_drop in mlops.yaml)" in gate["detail"]


def test_lower_is_better_metric_gates_point_the_right_way(project):
    """For a lower-is-better primary metric, a rise is the drop and the minimum gate is an upper bound."""
    config = _config(project, metrics={"primary": "log_loss"}, gates={"min_primary": 0.5, "max_drop": 0.01})
    result = _result({"name": "log_loss", "challenger": 0.62, "champion": 0.55, "delta": 0.07,
                      "ci_low": 0.05, "ci_high": 0.09})
    details = {g["gate"]: g for g in check_gates(config, result)}
    assert "log_loss=0.6200 is above the gate 0.5" in details["min_primary"]["detail"]
    assert not details["max_drop"]["passed"] and "dropped by 0.0700" in details["max_drop"]["detail"]


def test_validation_gate_and_opt_in_slice_gate(project):
    """Failed validation fails the check; flagged slices fail it only with gates.fail_on_slice_regression."""
    slices = [{"column": "grade", "value": "E", "flagged": True, "delta": -0.09}]
    config = _config(project)
    gates = {g["gate"]: g for g in check_gates(config, _result({"challenger": 0.8}, False, slices))}
    assert not gates["require_validation"]["passed"] and "slices" not in gates
    config = _config(project, gates={"fail_on_slice_regression": True})
    gates = {g["gate"]: g for g in check_gates(config, _result({"challenger": 0.8}, True, slices))}
    assert not gates["slices"]["passed"] and "grade=E" in gates["slices"]["detail"]


def test_slice_regressions_are_flagged_beyond_tolerance(project):
    """A slice whose primary metric falls by more than compare.slice_tolerance is flagged; small ones are not judged."""
    config = _config(project, compare={"slices": ["region"], "slice_tolerance": 0.05, "min_slice_rows": 50})
    champ = _binary(600, 7, round_to=None)
    region = np.array(["north"] * 300 + ["south"] * 280 + ["tiny"] * 20)
    score = champ.proba[:, 1].copy()
    score[300:580] = np.random.default_rng(1).random(280)  # the challenger is random in the south
    chall = Predictions(champ.y_true, (score > 0.5).astype(int), np.c_[1 - score, score], (0, 1))
    rows = slice_rows(config, pl.DataFrame({"region": region}), {"pred": champ}, {"pred": chall})
    by_value = {r["value"]: r for r in rows}
    assert by_value["south"]["flagged"] and not by_value["north"]["flagged"]
    assert by_value["north"]["delta"] == 0.0 and not by_value["tiny"]["judged"]


# ---------------------------------------------------------------- end to end on a tiny project


def _train_to(project, folder: str) -> Path:
    code, _, err = project.run("train")
    assert code == 0, err
    models = project.root / "models"
    target = project.root / folder
    shutil.move(models / (models / "LATEST").read_text().strip(), target)
    return target


def test_degraded_challenger_fails_with_interval_and_report_sections(project):
    """A challenger with fewer features loses to the champion: fail verdict first, every report section present."""
    champion_dir = _train_to(project, "champion")
    raw = copy.deepcopy(BASE_CONFIG)
    raw["data"]["numeric_features"], raw["data"]["categorical_features"] = ["age"], []
    raw["compare"] = {"slices": ["grade"], "min_slice_rows": 20, "bootstrap_resamples": 300}
    project.write_config(raw)
    challenger_dir = _train_to(project, "challenger")
    config = load_config(project.config_path)
    result = compare(config, load_training(config), champion_dir, challenger_dir,
                     validation={"passed": True, "rows": 800, "columns": 25, "failures": [],
                                 "source": "data/train.csv", "schema_file": "schema.yaml"})
    primary = result["metrics"][0]
    assert result["verdict"] == "fail" and primary["name"] == "roc_auc" and primary["change"] == "worse"
    assert primary["ci_low"] < primary["delta"] < primary["ci_high"] < 0
    assert result["test_rows"] == 200 and "gates.max_drop in mlops.yaml" in result["failures"][0]
    _, md_path, html_path = render(result, project.root / "reports")
    markdown = md_path.read_text()
    assert markdown.startswith("### ❌ Fail: roc_auc dropped by")
    headings = [line for line in markdown.splitlines() if line.startswith("#### ")]
    assert [h.split(" (")[0] for h in headings] == [
        "#### Gates", "#### Metrics", "#### Slices", "#### Curves", "#### Confusion matrices",
        "#### Data validation", "#### Models"]
    assert markdown.count("```mermaid") == 2 and "https://" not in markdown  # no image host
    assert "<svg" in html_path.read_text()


def test_report_is_cut_to_the_comment_limit(project):
    """A report with thousands of slices still fits one GitHub comment and says it was cut."""
    side = {"label": "challenger", "version": "v", "git_sha": "abc", "estimator": "e", "data_source": "d",
            "data_fingerprint": "f" * 64, "train_rows": 1, "training_seconds": 1.0, "model_bytes": 2048,
            "latency_ms_per_1k": {"p50": 1.0, "p95": 2.0}, "confusion_matrix": None, "metrics": {}}
    result = {"verdict": "pass", "headline": "Pass: fine.", "champion": None, "challenger": side,
              "champion_description": "none", "test_rows": 10, "data": {"source": "d", "rows": 1,
                                                                          "fingerprint": "f" * 64},
              "confidence": 0.95, "resamples": 1000, "notes": [], "gates": [], "curves": {}, "schema_diff": None,
              "validation": None, "slice_tolerance": 0.05, "primary_metric": "roc_auc",
              "metrics": [{"name": "roc_auc", "primary": True, "champion": None, "challenger": 0.8, "delta": None,
                           "ci_low": None, "ci_high": None, "higher_is_better": True, "change": ""}],
              "slices": [{"column": "c", "value": f"value-{i}", "rows": 9, "judged": False, "champion": None,
                          "challenger": 0.5, "delta": None, "flagged": False} for i in range(5000)]}
    markdown = render(result, project.root / "reports")[1].read_text()
    assert len(markdown) <= MAX_COMMENT_CHARS and markdown.startswith("### ✅ Pass: fine.")
    assert markdown.rstrip().endswith("the full report is in the workflow artifact.")


def test_make_compare_without_champion_gate_failure_and_step_summary(project, monkeypatch, tmp_path):
    """`compare` writes all reports and the summary, then exits 1 with the gate's reason when it fails."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert project.run("train")[0] == 0
    code, out, err = project.run("compare", "--champion", "none")
    assert code == 0, err
    assert out.startswith("✅ Pass: no champion to compare with yet")
    report = json.loads((project.root / "reports" / "compare.json").read_text())
    assert report["champion"] is None and report["verdict"] == "pass"
    alone = (project.root / "reports" / "compare.md").read_text()
    assert "No baseline yet" in alone and '"plotColorPalette": "#0969da"' in alone  # one blue line per chart
    raw = copy.deepcopy(BASE_CONFIG)
    raw["gates"] = {"min_primary": 0.99}
    project.write_config(raw)
    code, out, err = project.run("compare", "--champion", "none")
    assert code == 1 and out.startswith("❌ Fail:")
    assert "is below the gate 0.99 (gates.min_primary in mlops.yaml)" in err
    assert json.loads((project.root / "reports" / "compare.json").read_text())["verdict"] == "fail"
    assert (project.root / "reports" / "compare.md").read_text().startswith("### ❌ Fail: roc_auc=")
    assert summary.read_text().count("### ") == 2


# ---------------------------------------------------------------- champion resolution (a, b, c)


def test_champion_a_is_the_registry_prod_model(project):
    """(a) With a reachable registry whose prod pointer is set, the champion is that version."""
    assert project.run("train")[0] == 0
    config = load_config(project.config_path)
    registry = Registry.from_config(config)
    version = registry.register(config.models_dir / (config.models_dir / "LATEST").read_text().strip())
    registry.set_pointer("prod", version)
    found = champion_mod.resolve(config)
    assert found.source == "registry" and version in found.description
    assert json.loads((found.model_dir / "metadata.json").read_text())["version"] == version
    assert champion_mod.resolve(config).cached


def test_champion_a_s3_without_credentials_falls_through(project, monkeypatch):
    """(a) An s3:// registry without AWS credentials is skipped with a reason, not an error."""
    monkeypatch.setattr(s3, "has_credentials", lambda: False)
    config = _config(project, registry={"uri": "s3://bucket/prefix"})
    found = champion_mod.resolve(config, base_ref="no-such-ref")
    assert found.source == "none" and "no AWS credentials" in found.description


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(name="repo")
def _repo(project, monkeypatch):
    """The tiny project as a git repository whose main commit carries its own copy of the package."""
    shutil.copytree(ROOT / "src" / "mlops", project.root / "src" / "mlops",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (project.root / ".gitignore").write_text("models/\nreports/\n.cache/\n.registry/\n")
    for key in ("MLOPS_BASE_REF", "GITHUB_BASE_REF", "MLOPS_CHAMPION_CACHE", "MLOPS_GIT_SHA"):
        monkeypatch.delenv(key, raising=False)
    _git(project.root, "init", "-q", "-b", "main")
    _git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return project


def test_champion_b_trains_the_base_commit_with_its_own_config_and_caches_it(repo):
    """(b) The base commit's model is trained in a worktree from that commit's config, then reused by SHA."""
    base = _git(repo.root, "rev-parse", "HEAD")
    _git(repo.root, "checkout", "-qb", "pr")
    raw = yaml.safe_load(repo.config_path.read_text())
    raw["model"]["params"] = {"max_iter": 300, "C": 0.001}  # the PR's change
    repo.write_config(raw)
    config = load_config(repo.config_path)
    found = champion_mod.resolve(config, base_ref="main")
    assert found.source == "base" and found.base_sha == base and not found.cached
    meta = json.loads((found.model_dir / "metadata.json").read_text())
    assert meta["git_sha"] == base and meta["params"]["C"] == 1.0  # main's config, not the PR's
    assert found.model_dir == repo.root / ".cache" / "champion" / base
    assert _git(repo.root, "worktree", "list").count("\n") == 0  # the temporary worktree is gone
    again = champion_mod.resolve(config, base_ref="main")
    assert again.cached and again.model_dir == found.model_dir


def test_champion_b_says_nothing_is_in_production_yet(repo):
    """(a)->(b) A readable registry with no prod model falls back to the base model and says so."""
    (repo.root / ".registry").mkdir()
    found = champion_mod.resolve(load_config(repo.config_path), base_ref="main")
    assert found.source == "base"
    assert found.description.endswith("; registry .registry has no prod model yet")


def test_champion_c_first_pr_has_no_baseline(repo):
    """(c) A base commit without the pipeline means no baseline, said plainly."""
    empty_tree = _git(repo.root, "hash-object", "-t", "tree", "/dev/null")
    first = _git(repo.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit-tree", empty_tree, "-m", "first")
    found = champion_mod.resolve(load_config(repo.config_path), base_ref=first)
    assert found.source == "none" and found.model_dir is None
    assert "has no mlops.yaml: no baseline yet" in found.description


def test_pr_that_changes_the_evaluation_data_says_so(project):
    """When the data's fingerprint differs from the base champion's, the report says so and uses the new data."""
    champion_dir = _train_to(project, "champion")
    challenger_dir = _train_to(project, "challenger")
    project.write_data(generate(900, seed=4))
    config = load_config(project.config_path)
    dataset = load_training(config)
    base = champion_mod.Champion("base", champion_dir, "the base branch's model", "a" * 40)
    result = compare(config, dataset, champion_dir, challenger_dir, champion=base)
    assert len(result["notes"]) == 1
    note = result["notes"][0]
    assert note.startswith("This PR changed the evaluation data") and dataset.fingerprint[:12] in note
    assert result["test_rows"] == 225  # the held-out quarter of the NEW data


def test_schema_diff_against_the_base_commit(repo):
    """Columns added, removed and changed in schema.yaml since the base commit are listed."""
    from mlops.comparison import contract_diff  # pylint: disable=import-outside-toplevel  # only this test

    base = _git(repo.root, "rev-parse", "HEAD")
    contract = yaml.safe_load((repo.root / "schema.yaml").read_text())
    removed = "region"
    del contract["columns"][removed]
    contract["columns"]["new_column"] = {"dtype": "float"}
    contract["columns"]["age"]["max"] = 120
    (repo.root / "schema.yaml").write_text(yaml.safe_dump(contract))
    diff = contract_diff(load_config(repo.config_path), base)
    assert diff["added"] == ["new_column"] and diff["removed"] == [removed]
    before = yaml.safe_load(_git(repo.root, "show", f"{base}:schema.yaml"))["columns"]["age"].get("max")
    assert before != 120 and {"column": "age", "key": "max", "before": before, "after": 120} in diff["changed"]


def test_champion_is_scored_when_the_pr_dropped_one_of_its_columns(project):
    """A column the champion needs but the PR's data dropped is scored as missing, and the report says so."""
    champion_dir = _train_to(project, "champion")
    frame = pl.read_csv(project.root / "data" / "train.csv").drop("savings_balance", "region")
    frame.write_csv(project.root / "data" / "train.csv")
    project.write_contract()  # the PR updates the contract with the data, as training requires
    challenger_dir = _train_to(project, "challenger")
    config = load_config(project.config_path)
    result = compare(config, load_training(config), champion_dir, challenger_dir)
    assert result["champion"]["missing_columns"] == ["savings_balance", "region"]
    assert any("savings_balance, region" in note for note in result["notes"])
    assert 0.5 < result["metrics"][0]["champion"] <= 1.0


# ---------------------------------------------------------------- numbers that mean what they say


def test_macro_f1_of_a_slice_counts_only_its_classes():
    """A perfectly classified slice holding 2 of 3 classes has macro F1 1.0 (it was 0.667), in both code paths."""
    y = np.array(["a", "b", "a", "b", "c", "c"], dtype=object)
    proba = np.eye(3)[[0, 1, 0, 1, 2, 2]]
    pred = Predictions(y, y.copy(), proba, ("a", "b", "c"))
    keep = np.array([True, True, True, True, False, False])
    assert compute("multiclass", pred.subset(keep))["macro_f1"] == 1.0
    weights = keep.astype(np.float32)[:, None]
    assert weighted_metrics("multiclass", pred)(weights)["macro_f1"][0] == pytest.approx(1.0)


def test_relative_tolerance_is_a_share_of_the_champion():
    """max_drop "2%" allows 2% of the champion's value: a 1.0 RMSE drop on 58 is allowed, 1.5 is not."""
    from mlops.tasks import tolerance  # pylint: disable=import-outside-toplevel  # only this test

    assert tolerance("2%", 58.0) == pytest.approx(1.16) and tolerance(0.05, 58.0) == 0.05


def test_relative_max_drop_gate(project):
    """gates.max_drop: "2%" judges a regression PR by 2% of the champion's RMSE, and says so."""
    config = _config(project, gates={"max_drop": "2%"})
    ok = check_gates(config, _result({"champion": 0.80, "delta": -0.01, "ci_low": -0.02, "ci_high": -0.005}))
    assert next(g for g in ok if g["gate"] == "max_drop")["passed"]  # 0.01 < 2% of 0.80 (0.016)
    failing = check_gates(config, _result({"champion": 0.80, "delta": -0.03, "ci_low": -0.04, "ci_high": -0.02}))
    gate = next(g for g in failing if g["gate"] == "max_drop")
    assert not gate["passed"] and "0.016 (2% of the champion's)" in gate["detail"]


def test_config_refuses_a_tolerance_that_is_not_a_number_or_a_share(project):
    """max_drop: "lots" is a config error naming the key and the two accepted forms."""
    raw = copy.deepcopy(BASE_CONFIG)
    raw["gates"] = {"max_drop": "lots"}
    project.write_config(raw)
    code, _, err = project.run("validate")
    assert code == 1 and "gates.max_drop must be a number" in err and "'2%'" in err


def test_positive_label_is_configurable_and_shown(project):
    """data.positive_label: 0 makes class 0 the positive one (F1 and ROC AUC change) and the report names it."""
    assert project.run("train")[0] == 0 and project.run("evaluate")[0] == 0
    default = json.loads((project.root / "reports" / "metrics.json").read_text())
    raw = copy.deepcopy(BASE_CONFIG)
    raw["data"]["positive_label"] = 0
    project.write_config(raw)
    assert project.run("train")[0] == 0 and project.run("evaluate")[0] == 0 and project.run("report")[0] == 0
    flipped = json.loads((project.root / "reports" / "metrics.json").read_text())
    assert default["positive_label"] == 1 and flipped["positive_label"] == 0
    assert flipped["metrics"]["roc_auc"] == pytest.approx(default["metrics"]["roc_auc"], abs=0.02)
    assert flipped["metrics"]["f1"] != pytest.approx(default["metrics"]["f1"])
    assert "Positive class: `0`" in (project.root / "reports" / "report.md").read_text()
    raw["data"]["positive_label"] = "yes"
    project.write_config(raw)
    code, _, err = project.run("train")
    assert code == 1 and "data.positive_label 'yes' is not one of the classes [0, 1]" in err


def test_a_one_class_held_out_set_is_an_error_naming_the_cause(project):
    """Held-out rows of one class: evaluate and compare say roc_auc needs both classes (not 'nan is below the gate')."""
    frame = generate(800, seed=3)
    frame.loc[frame.index[-250:], "default"] = 0  # the time split holds out the newest quarter: all class 0
    project.write_data(frame)
    assert project.run("train")[0] == 0
    code, _, err = project.run("evaluate")
    assert code == 1 and "roc_auc needs both classes, but the 200 rows hold only 0" in err
    code, _, err = project.run("compare", "--champion", "none")
    assert code == 1 and "roc_auc needs both classes" in err and "nan" not in err


def test_latency_is_timed_on_a_thousand_rows_even_from_a_small_held_out_set():
    """Fifty held-out rows are repeated to 1,000 for timing, instead of timing 50 and multiplying by 20."""
    from mlops.scoring import LATENCY_ROWS, latency_batch  # pylint: disable=import-outside-toplevel  # only here

    x = pl.DataFrame({"a": range(50)}).to_pandas()
    batch = latency_batch(x)
    assert len(batch) == LATENCY_ROWS == 1000 and batch["a"].tolist()[:51] == [*range(50), 0]


def test_slice_columns_are_checked_and_continuous_ones_binned(project):
    """An unknown slice column is a config error; a continuous one gets 5 bins; a many-valued text one is refused."""
    config = _config(project, compare={"slices": ["no_such_column"]})
    frame = load_training(config).frame
    with pytest.raises(MlopsError, match="compare.slices names 'no_such_column', which is not a column"):
        slice_values(config, frame, "no_such_column")
    config = _config(project, compare={"slices": ["annual_income"]})
    labels = set(slice_values(config, frame, "annual_income").tolist()) - {"(null)"}
    assert len(labels) == 5 and all(label.startswith("[") for label in labels)
    texts = frame.with_columns(pl.col("loan_id").cast(pl.String).alias("loan_text"))
    with pytest.raises(MlopsError, match="has 800 distinct values"):
        slice_values(config, texts, "loan_text")


def _switch_to(project, frame, **config) -> None:
    """A PR that points the template at other data: new data, config and contract."""
    raw = copy.deepcopy(BASE_CONFIG)
    raw.update(config)
    project.write_config(raw)
    project.write_data(frame)
    project.write_contract()


@pytest.mark.parametrize("case", ["task and labels", "target", "features"])
def test_a_champion_that_cannot_be_compared_says_why_and_the_challenger_is_judged_alone(project, case):
    """The first PR after switching data (it crashed in log_loss): no comparison, the reason, min_primary alone."""
    champion_dir = _train_to(project, "champion")  # the template's binary loan model
    if case == "task and labels":
        _switch_to(project, multiclass_frame(600), task="multiclass",
                   data={"source": "data/train.csv", "target": "label", "id_column": "row_id"},
                   split={"method": "random", "test_size": 0.25, "seed": 7},
                   model={"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}})
        said = "the task changed: the champion is binary, this model multiclass"
    elif case == "target":
        frame = generate(800, seed=3)
        frame["defaulted_12m"] = frame.pop("default")
        _switch_to(project, frame, data={**BASE_CONFIG["data"], "target": "defaulted_12m"})
        said = "the target changed: the champion predicts 'default', this model 'defaulted_12m'"
    else:
        frame = multiclass_frame(600)
        frame["label"] = (frame["label"] == "high").astype(int)
        _switch_to(project, frame, data={"source": "data/train.csv", "target": "label", "id_column": "row_id"},
                   split={"method": "random", "test_size": 0.25, "seed": 7})
        said = "the target changed"  # the loan model's target is gone too; the first difference is named
    challenger_dir = _train_to(project, "challenger")
    config = load_config(project.config_path)
    result = compare(config, load_training(config), champion_dir, challenger_dir,
                     validation={"passed": True, "failures": []})
    assert result["champion"] is None and result["champion_source"] == "incompatible"
    assert said in result["champion_description"] and result["verdict"] == "pass"
    assert result["headline"].startswith("Pass: the champion cannot be compared with it")
    assert result["notes"][0].startswith("No comparison: ")
    assert {g["gate"] for g in result["gates"]} <= {"min_primary", "require_validation"}


def test_a_champion_whose_features_are_all_gone_is_not_compared():
    """Same task and target, but none of the champion's feature columns in the data: no comparison, said so."""
    from mlops.champion import incompatibility  # pylint: disable=import-outside-toplevel  # only this test

    meta = {"task": "binary", "target": "y", "classes": [0, 1], "features": {"numeric": ["a"], "categorical": []}}
    assert "none of the champion's feature columns" in incompatibility(meta, meta, pl.DataFrame({"b": [1]}))
    assert "now hold text" in incompatibility(meta, meta, pl.DataFrame({"a": ["x"]}))
    assert incompatibility(meta, meta, pl.DataFrame({"a": [1.0]})) is None


def test_the_comment_says_what_changed_in_the_config_and_names_the_artifact(repo, monkeypatch):
    """The mlops.yaml keys a PR changed (estimator, params, data source) head the comment; the footer names the
    artifact the run uploaded (it said `pr-report` whatever the workflow used)."""
    from mlops.comparison import config_diff  # pylint: disable=import-outside-toplevel  # only this test

    base = _git(repo.root, "rev-parse", "HEAD")
    config = yaml.safe_load(repo.config_path.read_text())
    config["model"]["params"]["C"] = 0.5
    config["model"]["estimator"] = "sklearn.linear_model.LogisticRegressionCV"
    repo.config_path.write_text(yaml.safe_dump(config))
    diff = {row["key"]: (row["before"], row["after"]) for row in config_diff(load_config(repo.config_path), base)}
    assert diff == {"model.params.C": (None, 0.5), "model.estimator": ("sklearn.linear_model.LogisticRegression",
                                                                       "sklearn.linear_model.LogisticRegressionCV")}
    config["model"]["estimator"] = "sklearn.linear_model.LogisticRegression"
    repo.config_path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("MLOPS_REPORT_ARTIFACT", "my-report")
    code, _, err = repo.run("train")
    assert code == 0, err
    code, _, err = repo.run("compare", "--base-ref", "main")
    assert code in (0, 1), err
    text = (repo.root / "reports" / "compare.md").read_text()
    assert "#### What changed in `mlops.yaml`" in text and "| `model.params.C` | (not set) | `0.5` |" in text
    assert "in the run's `my-report` artifact" in text and "pr-report" not in text


def test_a_run_without_registry_access_says_prod_may_serve_another_model(repo, monkeypatch):
    """A fork PR (no credentials for the s3 registry) is compared with the base branch's model, and told so."""
    monkeypatch.setattr(s3, "has_credentials", lambda: False)
    config = yaml.safe_load(repo.config_path.read_text())
    config["registry"] = {"uri": "s3://bucket/registry"}
    repo.config_path.write_text(yaml.safe_dump(config))
    found = champion_mod.resolve(load_config(repo.config_path), base_ref="main")
    assert found.source == "base" and "Prod may serve another version" in found.note
