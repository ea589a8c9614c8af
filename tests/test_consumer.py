"""Another repository uses the suite's actions by tag (acme/mlops/actions/<name>@v1), under act.

The consumer (tests/consumer/) holds only mlops.yaml, schema.yaml, its data (scikit-learn's
breast-cancer set, not the template's loans) and two workflows; no Makefile, no src/. act's
``--local-repository acme/mlops@v1=<suite>`` maps the tag to a clean copy of this checkout, so
each action runs that copy's Makefile and code in the consumer's working directory.
"""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from act_support import add_origin, git, make_template_repo, open_pr, posted_comment, run_workflow
from conftest import ROOT
from deploy_helpers import use_moto
from fake_github import FakeGitHub
from mlops.config import load_config
from mlops.stages.bootstrap import bootstrap

pytestmark = [pytest.mark.workflow, pytest.mark.aws]

FIXTURE = ROOT / "tests" / "consumer"
SUITE_TAG = "acme/mlops@v1"
ROLE = {"AWS_ROLE_ARN_STAGING": "arn:aws:iam::123456789012:role/cells-github-deploy-staging"}


@pytest.fixture(name="suite")
def fixture_suite(tmp_path) -> Path:
    """This checkout as the suite's repository, tagged v1."""
    suite = make_template_repo(ROOT, tmp_path / "suite")
    git(suite, "tag", "v1")
    return suite


@pytest.fixture(name="consumer")
def fixture_consumer(tmp_path) -> Path:
    """The consumer repository on main with a bare origin: config, contract, data and workflows only."""
    repo = tmp_path / "consumer"
    repo.mkdir()
    for name in ("mlops.yaml", "schema.yaml", ".github"):
        source = FIXTURE / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, repo / name)
    runpy.run_path(str(FIXTURE / "cells.py"))["write"](repo)  # the consumer's own data
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Cells model")
    add_origin(repo, tmp_path)
    return repo


def test_the_consumer_has_no_makefile_or_code(consumer):
    """The fixture really is another repository: none of the suite's files."""
    files = set(git(consumer, "ls-files").split())
    assert not any(f.startswith(("src/", "actions/")) or f in ("Makefile", "requirements.txt") for f in files)
    assert all(name in files for name in ("mlops.yaml", "schema.yaml", "data/cells.csv"))


def test_pr_check_by_tag_trains_compares_with_the_base_model_and_comments(suite, consumer, act_world):
    """PR: setup, validate, train, compare and comment by tag; the champion is the base branch's model,
    trained by the suite (the consumer has no src/); the model's lineage names the suite and its ref."""
    def change(repo):
        config = yaml.safe_load((repo / "mlops.yaml").read_text())
        config["model"]["params"]["C"] = 0.5
        (repo / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    payload = open_pr(consumer, change, number=12, repository="acme/cells")
    result = run_workflow(consumer, ".github/workflows/pr.yml", event="pull_request", payload=payload,
                          world=act_world, env={"GITHUB_REPOSITORY": "acme/cells"}, repositories={SUITE_TAG: suite})
    assert result.returncode == 0, result.output[-5000:]
    suite_sha = git(suite, "rev-parse", "HEAD").strip()
    assert f"mlops 0.1.0 (commit {suite_sha[:12]}" in result.output  # setup printed what it installed
    assert "verdict=pass" in result.output

    argv, text = posted_comment(result)
    assert "--target=pr/12" in argv
    assert "the base branch's model, trained from" in text and "roc_auc" in text
    assert "`C`" in text or "C:" in text or "model.params.C" in text  # the config change is shown

    store = act_world.artifacts / "pr-model"
    (version,) = [p for p in (store / "models").iterdir() if (p / "metadata.json").is_file()]
    lineage = json.loads((version / "metadata.json").read_text())
    assert lineage["suite"]["commit"] == suite_sha and lineage["suite"]["version"] == "0.1.0"
    assert lineage["suite"]["ref"] == SUITE_TAG
    assert lineage["data"]["files"] == ["data/cells.csv"] and lineage["target"] == "diagnosis"
    compare = json.loads((store / "reports" / "compare.json").read_text())
    assert compare["champion_source"] == "base" and compare["base_sha"] == payload["pull_request"]["base"]["sha"]


def test_ops_by_tag_deploys_checks_and_opens_the_retrain_pr(suite, consumer, moto, act_world):
    """By hand: pipeline, deploy staging (on moto), deploy-check, drift (it drifted), retrain PR; all by tag."""
    with pytest.MonkeyPatch.context() as patch:  # the foundation stack, as `make bootstrap` creates it
        use_moto(patch, moto)
        bootstrap(load_config(consumer / "mlops.yaml"), "acme/cells")
    with FakeGitHub() as api:
        api.route("GET", "/repos/acme/cells/pulls", body=[])
        result = run_workflow(consumer, ".github/workflows/ops.yml", event="workflow_dispatch", payload={"inputs": {}},
                              world=act_world, variables=ROLE, secrets={"GITHUB_TOKEN": "test-token"},
                              env={"GITHUB_REPOSITORY": "acme/cells", "GITHUB_API_URL": api.url,
                                   "STANDIN_AWS_ENDPOINT_URL": moto, "AWS_EC2_METADATA_DISABLED": "true"},
                              repositories={SUITE_TAG: suite})
    assert result.returncode == 0, result.output[-5000:]
    assert "staging serves" in result.output
    creates = [c for c in result.cml_calls if c["argv"][:2] == ["pr", "create"]]
    assert len(creates) == 1 and "## Drift check: drift found" in creates[0]["argv"][creates[0]["argv"].index(
        "--body") + 1]
    branch = subprocess.run(["git", "--git-dir", str(consumer.parent / "origin.git"), "show",
                             "retrain/drift:mlops.yaml"], capture_output=True, text=True, check=True).stdout
    assert "manifest.json" in branch  # the retrain PR points data.source at the reviewable manifest


def test_a_consumer_without_mlops_yaml_fails_at_once_naming_the_file_and_folder(suite, consumer, act_world):
    """No mlops.yaml: the first stage fails with Error: naming the file and the working directory."""
    git(consumer, "rm", "-q", "mlops.yaml")
    git(consumer, "commit", "-qm", "Lose the config")
    payload = open_pr(consumer, lambda repo: (repo / "README.md").write_text("x\n"), number=13,
                      repository="acme/cells")
    result = run_workflow(consumer, ".github/workflows/pr.yml", event="pull_request", payload=payload,
                          world=act_world, env={"GITHUB_REPOSITORY": "acme/cells"}, repositories={SUITE_TAG: suite})
    assert result.returncode != 0
    assert "Error: config file mlops.yaml not found (working directory:" in result.output
    assert not result.cml_calls  # nothing was posted
