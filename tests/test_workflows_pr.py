"""The PR workflows run under act: pr.yml checks and uploads the report, pr-comment.yml posts it with CML."""

from __future__ import annotations

import json

import pytest

from act_support import degrade_model, open_pr, posted_comment, run_workflow, workflow_run_payload

pytestmark = pytest.mark.workflow

PR_NUMBER = 7


def _run_pr(repo, world, payload):
    return run_workflow(repo, ".github/workflows/pr.yml", event="pull_request", payload=payload, world=world,
                        variables={"MLOPS_PR_SKIP_TESTS": "true"})


def _run_comment(repo, world, conclusion: str):
    return run_workflow(repo, ".github/workflows/pr-comment.yml", event="workflow_run",
                        payload=workflow_run_payload(conclusion), world=world)


def test_pr_that_keeps_the_model_passes_and_gets_one_sticky_comment(template_repo, act_world):
    """A docs-only PR passes against the base-branch champion (cached by base SHA on the next push), uploads
    pr-report, and the comment workflow posts it."""
    payload = open_pr(template_repo, lambda repo: (repo / "NOTES.md").write_text("A docs-only change.\n"),
                      number=PR_NUMBER)
    result = _run_pr(template_repo, act_world, payload)
    assert result.returncode == 0, result.output[-4000:]
    report = act_world.artifacts / "pr-report"
    verdict = json.loads((report / "compare.json").read_text())
    assert verdict["verdict"] == "pass" and verdict["champion_source"] == "base"
    assert verdict["base_sha"] == payload["pull_request"]["base"]["sha"]
    assert (report / "pr-number.txt").read_text().strip() == str(PR_NUMBER)
    assert {"compare.md", "compare.html", "validation.json"} <= {p.name for p in report.iterdir()}
    assert "✅ Pass" in result.output  # the verdict printed by make compare

    again = _run_pr(template_repo, act_world, payload)  # a new push: the champion comes from actions/cache
    assert again.returncode == 0, again.output[-4000:]
    cached = json.loads((report / "compare.json").read_text())
    assert cached["champion_description"].endswith("(cached)") and cached["verdict"] == "pass"

    comment = _run_comment(template_repo, act_world, "success")
    assert comment.returncode == 0, comment.output[-4000:]
    argv, text = posted_comment(comment)
    assert f"--target=pr/{PR_NUMBER}" in argv and "--no-publish" in argv
    assert "--watermark-title=mlops-compare" in argv
    assert text == (report / "compare.md").read_text() and text.startswith("### ✅ Pass: the challenger's roc_auc")


def test_pr_that_makes_the_model_worse_fails_the_check_and_says_why(template_repo, act_world):
    """A PR that degrades the model fails pr.yml; its report is still uploaded and posted with the failing verdict."""
    result = _run_pr(template_repo, act_world, open_pr(template_repo, degrade_model, number=PR_NUMBER))
    assert result.returncode != 0 and result.jobs.get("Lint, test, validate, train, compare") == "failed", \
        result.output[-4000:]
    assert "is below the gate 0.7 (gates.min_primary in mlops.yaml)" in result.output
    verdict = json.loads((act_world.artifacts / "pr-report" / "compare.json").read_text())
    assert verdict["verdict"] == "fail"
    primary = verdict["metrics"][0]
    assert primary["name"] == "roc_auc" and primary["ci_high"] < 0  # worse, beyond the noise

    comment = _run_comment(template_repo, act_world, "failure")
    assert comment.returncode == 0, comment.output[-4000:]
    assert posted_comment(comment)[1].startswith("### ❌ Fail: roc_auc=")


def test_comment_workflow_rejects_a_pr_number_that_is_not_digits(template_repo, act_world):
    """The comment workflow treats the artifact as untrusted: a non-numeric PR number posts nothing."""
    store = act_world.artifacts / "pr-report"
    store.mkdir(parents=True)
    (store / "compare.md").write_text("### ✅ Pass: fine.\n")
    (store / "pr-number.txt").write_text("7 --target=issue/1\n")
    result = _run_comment(template_repo, act_world, "success")
    assert result.returncode != 0
    assert "must hold a PR number (digits only)" in result.output
    assert not [c for c in result.cml_calls if c["argv"][:1] == ["comment"]]


def test_comment_workflow_posts_nothing_when_the_pr_run_stopped_before_compare(template_repo, act_world):
    """A pr run that failed before `make compare` (only the PR number in the artifact) posts no comment."""
    store = act_world.artifacts / "pr-report"
    store.mkdir(parents=True)
    (store / "pr-number.txt").write_text("7\n")
    result = _run_comment(template_repo, act_world, "failure")
    assert result.returncode == 0, result.output[-3000:]
    assert "produced no comparison report" in result.output and not result.cml_calls
