"""The PR workflows run under act: pr.yml checks and uploads the report, pr-comment.yml posts it with CML."""

from __future__ import annotations

import json

import pytest

from act_support import degrade_model, open_pr, posted_comment, run_workflow, workflow_run_payload
from fake_github import FakeGitHub

pytestmark = pytest.mark.workflow

PR_NUMBER = 7


def _run_pr(repo, world, payload):
    return run_workflow(repo, ".github/workflows/pr.yml", event="pull_request", payload=payload, world=world,
                        variables={"MLOPS_PR_SKIP_TESTS": "true"})


HEAD = "c0ffee" * 6 + "c0ff"  # a head SHA for runs whose PR is only simulated


def _run_comment(repo, world, conclusion: str, *, head_sha: str = HEAD, number: int | None = PR_NUMBER,
                 repository: str = "acme/models", api: str | None = None):
    env = {"GITHUB_REPOSITORY": "acme/models", **({"GITHUB_API_URL": api} if api else {})}
    return run_workflow(repo, ".github/workflows/pr-comment.yml", event="workflow_run", world=world, env=env,
                        payload=workflow_run_payload(conclusion, head_sha=head_sha, number=number,
                                                     repository=repository))


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

    comment = _run_comment(template_repo, act_world, "success", head_sha=payload["pull_request"]["head"]["sha"])
    assert comment.returncode == 0, comment.output[-4000:]
    argv, text = posted_comment(comment)
    assert f"--target=pr/{PR_NUMBER}" in argv and "--no-publish" in argv
    assert "--watermark-title=mlops-compare" in argv
    assert text == (report / "compare.md").read_text() and text.startswith("### ✅ Pass: the challenger's roc_auc")


def test_pr_that_makes_the_model_worse_fails_the_check_and_says_why(template_repo, act_world):
    """A PR that degrades the model fails pr.yml; its report is still uploaded and posted with the failing verdict."""
    payload = open_pr(template_repo, degrade_model, number=PR_NUMBER)
    result = _run_pr(template_repo, act_world, payload)
    assert result.returncode != 0 and result.jobs.get("Lint, test, validate, train, compare") == "failed", \
        result.output[-4000:]
    assert "is below the gate 0.7 (gates.min_primary in mlops.yaml)" in result.output
    verdict = json.loads((act_world.artifacts / "pr-report" / "compare.json").read_text())
    assert verdict["verdict"] == "fail"
    primary = verdict["metrics"][0]
    assert primary["name"] == "roc_auc" and primary["ci_high"] < 0  # worse, beyond the noise

    comment = _run_comment(template_repo, act_world, "failure", head_sha=payload["pull_request"]["head"]["sha"])
    assert comment.returncode == 0, comment.output[-4000:]
    assert posted_comment(comment)[1].startswith("### ❌ Fail: roc_auc=")


def _artifact(act_world, number: str, report: str | None = "### ✅ Pass: fine.\n", steps: dict | None = None):
    store = act_world.artifacts / "pr-report"
    store.mkdir(parents=True, exist_ok=True)
    (store / "pr-number.txt").write_text(number)
    if report is not None:
        (store / "compare.md").write_text(report)
    if steps is not None:
        (store / "pr-steps.json").write_text(json.dumps(steps))


def test_comment_goes_to_the_pr_of_the_run_not_the_one_the_artifact_names(template_repo, act_world):
    """An artifact naming another PR (or not a number) is refused: nothing is posted anywhere."""
    for claim in ("8\n", "7 --target=issue/1\n"):
        _artifact(act_world, claim, "### ✅ Pass: a fake verdict for someone else's PR.\n")
        result = _run_comment(template_repo, act_world, "success")
        assert result.returncode != 0
        assert "but this run was for PR #7" in result.output, result.output[-3000:]
        assert not [c for c in result.cml_calls if c["argv"][:1] == ["comment"]]


def test_fork_pr_is_found_through_the_api_and_mentions_are_inert(template_repo, act_world):
    """A fork PR (the event lists no pull_requests) is found by its head; its @-mentions cannot ping anyone."""
    _artifact(act_world, "7\n", "### ✅ Pass: fine, thanks @octocat and @acme/team.\n" + "x" * 70_000)
    with FakeGitHub() as api:
        api.route("GET", r"/repos/acme/models/pulls", body=[
            {"number": 6, "head": {"sha": "0" * 40, "repo": {"full_name": "mallory/models"}}},
            {"number": 7, "head": {"sha": HEAD, "repo": {"full_name": "mallory/models"}}}])
        result = _run_comment(template_repo, act_world, "success", number=None, repository="mallory/models",
                              api=api.url)
        assert result.returncode == 0, result.output[-3000:]
        (query,) = api.made("GET", r"/repos/acme/models/pulls")
        assert "head=mallory%3Apr" in query.path and "state=open" in query.path
    argv, text = posted_comment(result)
    assert "--target=pr/7" in argv
    assert "@octocat" not in text and "@\u200boctocat" in text and len(text) <= 65_000


def test_a_run_that_stopped_before_compare_replaces_the_verdict_with_a_note(template_repo, act_world):
    """No compare.md (lint failed): the sticky comment says where the run stopped and links it; no old Pass stays."""
    _artifact(act_world, "7\n", None, {"lint": {"outcome": "failure", "conclusion": "failure"},
                                         "validate": {"outcome": "skipped", "conclusion": "skipped"}})
    result = _run_comment(template_repo, act_world, "failure")
    assert result.returncode == 0, result.output[-3000:]
    argv, text = posted_comment(result)
    assert "--watermark-title=mlops-compare" in argv and "--target=pr/7" in argv
    assert text.startswith("### ⚠️ No comparison") and "`make lint`" in text
    assert "https://github.com/acme/models/actions/runs/4242" in text
