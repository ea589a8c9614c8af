"""Retrain: the training set, the contract stop, the manifest, the comparison on new rows, the cooldown gate."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from fake_github import FakeGitHub
from mlops.config import load_config
from mlops.config import set_data_source as update_data_source
from mlops.errors import MlopsError
from mlops.registry import Registry
from mlops.stages.datagen import generate
from mlops.stages.retrain_gate import gate


def _promote_latest(project) -> str:
    """Train and point the registry's prod at the model, as a deploy would."""
    assert project.run("train")[0] == 0
    assert project.run("evaluate")[0] == 0
    config = load_config(project.config_path)
    folder = config.models_dir / (config.models_dir / "LATEST").read_text().strip()
    registry = Registry.from_config(config)
    registry.set_pointer("prod", registry.register(folder))
    return folder.name


def test_retrain_pins_the_new_training_set_and_compares_on_new_rows(project):
    """Reference + new batch -> manifest (sha256, rows, window), data.source, challenger, comparison."""
    champion = _promote_latest(project)
    project.write_data(generate(600, seed=90, start="2024-07-01", days=31, drift=True), "data/production/b.csv")
    code, out, err = project.run("retrain")
    assert code == 0, err
    manifest = json.loads((project.root / "data/manifest.json").read_text())
    assert [(f["uri"], f["role"], f["rows"]) for f in manifest["files"]] == [
        ("train.csv", "reference", 800), ("production/b.csv", "current", 600)]
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert manifest["rows"] == 1400 and manifest["window"]["to"].startswith("2024-07-31")
    config_text = project.config_path.read_text()
    assert yaml.safe_load(config_text)["data"]["source"] == "data/manifest.json"

    record = json.loads((project.root / "reports/retrain/retrain.json").read_text())
    assert record["config_changed"] and "prod" in record["champion"]["description"]
    assert champion in record["champion"]["description"]
    # A time split on reference + new data holds out the newest rows: all from the new batch.
    assert record["held_out_rows"] == record["held_out_new_period_rows"] == 350
    assert record["held_out_reference_rows"] == 0
    comment = (project.root / "reports/retrain/comparison.md").read_text()
    assert "350 held-out rows, 350 of them from the new period" in comment
    assert "production/b.csv" in comment and record["headline"] in comment
    meta = json.loads((project.root / "models" / record["version"] / "metadata.json").read_text())
    assert meta["data"]["source"] == "data/manifest.json"
    assert meta["data"]["files"] == ["data/train.csv", "data/production/b.csv"]
    assert "Retrained" in out

    # The merged config trains from exactly the pinned files; a changed file is refused.
    assert project.run("validate")[0] == 0
    with open(project.root / "data/production/b.csv", "a", encoding="utf-8") as handle:
        handle.write("\n")
    code, _, err = project.run("validate")
    assert code == 1 and "changed since the manifest" in err


def test_contract_violation_stops_before_training(project):
    """A new batch that breaks schema.yaml stops the retrain with the report; nothing is written."""
    _promote_latest(project)
    before = project.config_path.read_text()
    models = set(os.listdir(project.root / "models"))
    bad = generate(400, seed=91, start="2024-07-01", days=31)
    bad.loc[:9, "purpose"] = "crypto"
    project.write_data(bad, "data/production/bad.csv")
    code, _, err = project.run("retrain")
    assert code == 1 and "broke the data contract" in err and "crypto" in err
    assert not (project.root / "data/manifest.json").exists()
    assert project.config_path.read_text() == before
    assert set(os.listdir(project.root / "models")) == models
    validation = json.loads((project.root / "reports/validation.json").read_text())
    assert not validation["passed"] and validation["source"] == "data/manifest.json"


def test_current_only_window_and_already_trained_batch(project):
    """current_only trains on the new batch alone; a batch the champion already saw is not 'new'."""
    config = yaml.safe_load(project.config_path.read_text())
    config["retrain"] = {"window": "current_only"}
    project.write_config(config)
    project.write_data(generate(700, seed=92, start="2024-07-01", days=31), "data/production/c.csv")
    _promote_latest(project)
    code, _, err = project.run("retrain")
    assert code == 0, err
    manifest = json.loads((project.root / "data/manifest.json").read_text())
    assert [f["role"] for f in manifest["files"]] == ["current"]

    config["retrain"] = {"window": "reference_plus_current"}
    config["drift"] = {"current": "data/train.csv"}
    project.write_config(config)
    code, _, err = project.run("retrain")
    assert code == 1 and "adds no new file" in err


def test_update_data_source_keeps_comments_and_is_idempotent(tmp_path):
    """Only the value of data.source changes; the comment and other keys stay as written."""
    path = tmp_path / "mlops.yaml"
    path.write_text("project: x-y\ntask: binary\n\ndata:\n  target: t\n  source: data/a.csv   # where\n"
                    "split:\n  source: not-this\n")
    config = type("C", (), {"path": str(path)})()
    assert update_data_source(config, "data/manifest.json")
    assert path.read_text() == ("project: x-y\ntask: binary\n\ndata:\n  target: t\n  source: data/manifest.json   "
                                "# where\nsplit:\n  source: not-this\n")
    assert not update_data_source(config, "data/manifest.json")


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def test_gate_cooldown_lease_and_force(project, tmp_path, monkeypatch):
    """No branch: proceed with an empty lease; a fresh branch: skip unless forced or the cooldown passed."""
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", str(remote))
    _git(project.root, "init", "-q", "-b", "main")
    _git(project.root, "add", "-A")
    _git(project.root, "commit", "-q", "-m", "base")
    _git(project.root, "remote", "add", "origin", str(remote))
    config = load_config(project.config_path)
    state = gate(config)
    assert state["proceed"] and state["lease"] == "" and state["branch"] == "retrain/drift"
    assert state["manifest"] == "data/manifest.json"

    _git(project.root, "push", "-q", "origin", "HEAD:refs/heads/retrain/drift")
    sha = _git(project.root, "rev-parse", "HEAD").strip()
    skipped = gate(config)
    assert not skipped["proceed"] and skipped["lease"] == sha and "cooldown" in skipped["reason"]
    assert gate(config, force=True)["proceed"]
    commit_time = int(_git(project.root, "log", "-1", "--format=%ct").strip())
    assert gate(config, now=commit_time + 25 * 3600)["proceed"]

    output, summary = tmp_path / "output", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = project.run("retrain-gate")
    assert code == 0 and out.startswith("Skip:")
    assert output.read_text().splitlines() == [
        "branch=retrain/drift", "base=main", f"lease={sha}", "manifest=data/manifest.json", "open-pr=",
        "proceed=false"]
    assert "Retrain skipped" in summary.read_text()

    # With the API: the cooldown holds while an open PR carries the branch; without one the PR is retried.
    with FakeGitHub() as api:
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/loans")
        monkeypatch.setenv("GH_TOKEN", "t")
        api.route("GET", "/repos/acme/loans/pulls", body=[{"number": 101, "head": {"ref": "retrain/drift"}}])
        held = gate(config)
        assert not held["proceed"] and held["open_pr"] == 101 and "cooldown" in held["reason"]
        (query,) = api.made("GET", "/repos/acme/loans/pulls")
        assert "head=acme%3Aretrain%2Fdrift" in query.path and "state=open" in query.path
        api.route("GET", "/repos/acme/loans/pulls", body=[])
        retried = gate(config)  # e.g. the PR creation was refused: the branch is pushed, no PR exists
        assert retried["proceed"] and retried["open_pr"] == 0 and "opened again" in retried["reason"]


def test_gate_needs_a_reachable_remote(project):
    """Without the git remote the gate is an error that names it, not a silent 'proceed'."""
    _git(project.root, "init", "-q", "-b", "main")
    with pytest.raises(MlopsError, match="git remote 'origin'"):
        gate(load_config(project.config_path))


def test_max_age_days_drops_old_rows_and_records_the_window(project):
    """retrain.max_age_days keeps only rows newer than the cutoff and writes the cutoff into the manifest."""
    config = yaml.safe_load(project.config_path.read_text())
    config["retrain"] = {"max_age_days": 60}
    project.write_config(config)
    _promote_latest(project)
    project.write_data(generate(500, seed=93, start="2024-07-01", days=31), "data/production/d.csv")
    code, _, err = project.run("retrain")
    assert code == 0, err
    manifest = json.loads((project.root / "data/manifest.json").read_text())
    assert manifest["window"]["max_age_days"] == 60 and manifest["window"]["from"].startswith("2024-06-")
    assert 500 < manifest["rows"] < 1300
    # The merged config loads the same windowed rows, not every row of the pinned files.
    assert project.run("validate")[0] == 0
    validation = json.loads((project.root / "reports/validation.json").read_text())
    assert validation["rows"] == manifest["rows"]
