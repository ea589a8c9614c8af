"""The whole lifecycle, as a team using this template lives it, under act with a moto_server on 127.0.0.1.

One temporary git repository made from this template (with a bare ``origin`` the drift workflow
pushes to) and one moto_server holding the foundation stack, the S3 registry and the serving
stacks are carried through six steps:

1. a first PR, before anything is in production: pr.yml (with the read-only role) finds the S3
   registry empty, compares with the base branch's model, and the posted comment says so;
2. merging it: deploy.yml trains, deploys staging, smoke-tests, promotes to prod, checks prod;
3. a PR that improves the model passes against the prod champion read FROM THE REGISTRY; a PR
   that degrades it fails, and both comments say which champion they were compared with;
4. the drift workflow finds the drifted production batch and opens one retrain PR (drift summary
   as its body, the comparison with the prod champion as its comment);
5. merging the retrain PR deploys the retrained model to prod;
6. a manual rollback (workflow_dispatch of deploy.yml) restores the previous prod version.

Each step asserts on what a user sees: the posted comment, the retrain PR's body and comment, the
registry's prod pointer and the SSM parameter the serving stack writes, and which role each
run assumed. Inputs: the template's working tree and bundled data. Outputs: none outside pytest's
temporary folder, where each act run's log is kept as ``act-world/<n> <step>.log``; the per-step
act times are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from act_support import (ActResult, ActWorld, add_origin, cml_option, degrade_model, edit_config, git, open_pr,
                         posted_comment, run_workflow, workflow_run_payload)
from deploy_helpers import served, use_moto
from mlops.config import load_config
from mlops.stages.bootstrap import bootstrap
from mlops.registry import Registry

pytestmark = [pytest.mark.workflow, pytest.mark.aws]

REPOSITORY = "acme/loans"  # what act reports as github.repository (env GITHUB_REPOSITORY) and PRs come from
RETRAIN_PR = 101  # the number the recording cml gives the first PR it opens


@dataclass
class Story:
    """The repository, moto and act folders one lifecycle carries from step to step."""

    repo: Path
    moto: str
    world: ActWorld
    registry_uri: str
    variables: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def act(self, step: str, workflow: str, event: str, payload: dict, inputs: dict | None = None) -> ActResult:
        """Run ``workflow`` as GitHub would for ``event`` in this repository; remember its wall time."""
        result = run_workflow(self.repo, f".github/workflows/{workflow}", event=event, payload=payload,
                              world=self.world, variables=self.variables, inputs=inputs,
                              env={"STANDIN_AWS_ENDPOINT_URL": self.moto, "AWS_EC2_METADATA_DISABLED": "true",
                                   "GITHUB_REPOSITORY": REPOSITORY})
        self.seconds[step] = round(result.seconds, 1)
        (self.world.root / f"{len(self.seconds):02d} {step}.log").write_text(result.output, encoding="utf-8")
        return result

    def roles(self, result: ActResult) -> set[str]:
        """The repository variables naming the roles the run's credential steps assumed."""
        assumed = set(re.findall(r"::set-env:: AWS_STANDIN_ROLE=(\S+)", result.output))
        return {name for name, arn in self.variables.items() if arn in assumed}

    def comment(self, step: str, payload: dict, conclusion: str) -> tuple[list[str], str]:
        """pr-comment.yml after the `pr` run of the PR ``payload``: (cml argv, the Markdown it posted)."""
        pull = payload["pull_request"]
        result = self.act(step, "pr-comment.yml", "workflow_run", workflow_run_payload(
            conclusion, head_sha=pull["head"]["sha"], number=pull["number"], branch=pull["head"]["ref"],
            repository=REPOSITORY))
        assert result.returncode == 0, result.output[-4000:]
        return posted_comment(result)

    def report(self) -> dict:
        """compare.json of the latest `pr` run's pr-report artifact."""
        return json.loads((self.world.artifacts / "pr-report" / "compare.json").read_text(encoding="utf-8"))

    def merge(self, ref: str, title: str) -> str:
        """Merge ``ref`` into main as the merge button would, push main to origin; return the merge SHA."""
        git(self.repo, "checkout", "-q", "main")
        git(self.repo, "merge", "-q", "--no-ff", "-m", title, ref)
        git(self.repo, "push", "-q", "origin", "main")
        return git(self.repo, "rev-parse", "HEAD").strip()

    def deploy_push(self, step: str, sha: str) -> ActResult:
        """deploy.yml for the push to main of ``sha``; fails the test unless all four jobs succeeded."""
        result = self.act(step, "deploy.yml", "push", {"ref": "refs/heads/main", "after": sha,
                                                      "repository": {"full_name": REPOSITORY}})
        assert result.returncode == 0, result.output[-4000:]
        assert len(result.jobs) == 4 and set(result.jobs.values()) == {"succeeded"}, result.jobs
        return result


@pytest.fixture(name="story")
def fixture_story(template_repo, moto, act_world, tmp_path) -> Story:
    """The template after `make bootstrap` on moto: repository variables set from the foundation stack's
    outputs, a bare origin, and small settings so each training takes well under a second."""
    with pytest.MonkeyPatch.context() as patch:  # the one-time bootstrap a user runs with AWS credentials
        use_moto(patch, moto)
        outputs = bootstrap(load_config(template_repo / "mlops.yaml"), REPOSITORY)["outputs"]
    variables = {"AWS_ROLE_ARN_STAGING": outputs["StagingDeployRoleArn"],
                 "AWS_ROLE_ARN_PROD": outputs["ProdDeployRoleArn"],
                 "AWS_ROLE_ARN_READ": outputs["ReadOnlyRoleArn"],
                 "MLOPS_PR_SKIP_TESTS": "true"}  # lint and tests run in `make test` itself

    def small(config: dict) -> None:
        config["model"]["params"] = {"max_iter": 10, "learning_rate": 0.05}
        config["compare"]["bootstrap_resamples"] = 200
        config["drift"]["report_html"] = False
        config["retrain"]["cooldown_hours"] = 0
        config["deploy"]["smoke_rows"] = 10

    edit_config(template_repo, small)
    git(template_repo, "commit", "-qam", "Small settings for the test")
    add_origin(template_repo, tmp_path)
    return Story(template_repo, moto, act_world, outputs["RegistryUri"], variables)


def _first_pr_has_no_prod_champion(story: Story) -> None:
    """Step 1: the PR that points registry.uri at the foundation bucket; nothing is in prod yet."""
    uri = story.registry_uri
    payload = open_pr(story.repo, lambda repo: edit_config(repo, lambda c: c["registry"].update(uri=uri)),
                      number=1, branch="use-the-registry", repository=REPOSITORY)
    result = story.act("1 pr.yml (first PR)", "pr.yml", "pull_request", payload)
    assert result.returncode == 0, result.output[-4000:]
    assert story.roles(result) == {"AWS_ROLE_ARN_READ"}  # a same-repository PR gets the read-only role
    report = story.report()
    assert report["verdict"] == "pass" and report["champion_source"] == "base"
    # The read-only role reached the registry (no credentials would say "not readable") and found no prod model.
    assert f"registry {uri} has no prod model yet" in report["champion_description"]
    argv, text = story.comment("1 pr-comment.yml", payload, "success")
    assert "--target=pr/1" in argv and "--no-publish" in argv
    assert text.startswith("### ✅ Pass") and "no prod model yet" in text and "base branch's model" in text


def _merge_deploys_to_prod(story: Story) -> str:
    """Step 2: the merge deploys staging, smoke-tests it, promotes to prod; returns the prod version."""
    sha = story.merge("use-the-registry", "Merge pull request #1 from acme/use-the-registry")
    result = story.deploy_push("2 deploy.yml (merge of PR 1)", sha)
    assert story.roles(result) == {"AWS_ROLE_ARN_STAGING", "AWS_ROLE_ARN_PROD", "AWS_ROLE_ARN_READ"}
    pointer, parameter = served(story.repo, story.moto)
    first = pointer["current"]
    assert first.endswith(sha[:7]) and pointer["previous"] is None and parameter == first
    staging, staging_parameter = served(story.repo, story.moto, "staging")
    assert staging["current"] == first and staging_parameter == first  # prod took what staging passed
    # Smoke-tested in staging and again in prod (the emulator's endpoint cannot run a container: see deploy.py).
    assert len(re.findall(rf"smoke test of {first} against .* passed: 10 rows", result.output)) == 2
    assert f"prod serves {first} " in result.output  # the post-deploy check
    return first


def _prs_compare_with_the_registry_champion(story: Story, champion: str) -> None:
    """Step 3: a better model passes, a worse one fails, both against the prod model from the registry."""
    git(story.repo, "checkout", "-q", "main")
    payload = open_pr(story.repo, lambda repo: edit_config(repo, lambda c: c["model"]["params"].update(max_iter=40)),
                      number=2, branch="more-trees", repository=REPOSITORY)
    result = story.act("3 pr.yml (better model)", "pr.yml", "pull_request", payload)
    assert result.returncode == 0, result.output[-4000:]
    assert story.roles(result) == {"AWS_ROLE_ARN_READ"}
    report = story.report()
    assert report["verdict"] == "pass" and report["champion_source"] == "registry"
    assert report["champion_description"] == f"the prod model `{champion}` from the registry"
    primary = report["metrics"][0]
    assert primary["name"] == "roc_auc" and primary["delta"] > 0, primary
    _, text = story.comment("3 pr-comment.yml (better)", payload, "success")
    assert text.startswith("### ✅ Pass") and f"the prod model `{champion}` from the registry" in text

    git(story.repo, "checkout", "-q", "main")
    payload = open_pr(story.repo, degrade_model, number=3, branch="fewer-trees", repository=REPOSITORY)
    result = story.act("3 pr.yml (worse model)", "pr.yml", "pull_request", payload)
    assert result.returncode != 0 and "is below the gate 0.7 (gates.min_primary in mlops.yaml)" in result.output
    report = story.report()
    assert report["verdict"] == "fail" and report["champion_source"] == "registry"
    argv, text = story.comment("3 pr-comment.yml (worse)", payload, "failure")
    assert "--target=pr/3" in argv
    assert text.startswith("### ❌ Fail: roc_auc=") and f"the prod model `{champion}` from the registry" in text
    git(story.repo, "checkout", "-q", "main")


def _drift_opens_the_retrain_pr(story: Story, champion: str) -> None:
    """Step 4: the scheduled drift check finds the bundled production batch drifted and opens one retrain PR."""
    result = story.act("4 drift.yml (schedule)", "drift.yml", "schedule", {"schedule": "17 6 * * *"})
    assert result.returncode == 0, result.output[-4000:]
    assert set(result.jobs.values()) == {"succeeded"} and len(result.jobs) == 2, result.jobs
    assert story.roles(result) == {"AWS_ROLE_ARN_READ"}
    (create,) = [c for c in result.cml_calls if c["argv"][:2] == ["pr", "create"]]
    assert create["pr"]["existing"] is False
    assert cml_option(create["argv"], "branch") == "retrain/drift"
    assert cml_option(create["argv"], "target-branch") == "main"
    body = cml_option(create["argv"], "body")
    assert body.startswith("## Drift check: drift found") and "`annual_income`" in body
    assert f"registry prod pointer `{champion}`" in body  # drift compared with what prod was trained on
    argv, text = posted_comment(result)
    assert f"--target=pr/{RETRAIN_PR}" in argv and "--watermark-title=retrain-comparison" in argv
    assert "## Retrain pull request" in text and f"Champion: the prod model `{champion}` from the registry" in text
    assert "| current | `production/2024-07.csv` | 3000 |" in text  # the new batch is in the training data


def _merging_the_retrain_pr_deploys_it(story: Story, champion: str) -> str:
    """Step 5: merging the retrain PR deploys the model trained on the manifest's data; returns its version."""
    git(story.repo, "fetch", "-q", "origin", "retrain/drift")
    sha = story.merge("FETCH_HEAD", f"Merge pull request #{RETRAIN_PR} from acme/retrain/drift")
    story.deploy_push("5 deploy.yml (merge of the retrain PR)", sha)
    pointer, parameter = served(story.repo, story.moto)
    retrained = pointer["current"]
    assert retrained != champion and retrained.endswith(sha[:7])
    assert pointer["previous"] == champion and parameter == retrained
    with pytest.MonkeyPatch.context() as patch:
        use_moto(patch, story.moto)
        lineage = Registry.from_config(load_config(story.repo / "mlops.yaml")).metadata(retrained)
    assert "data/manifest.json" in json.dumps(lineage["data"]), lineage["data"]
    return retrained


def _rollback_restores_the_champion(story: Story, champion: str, retrained: str) -> None:
    """Step 6: workflow_dispatch of deploy.yml with action rollback puts the previous version back in prod."""
    inputs = {"action": "rollback", "environment": "prod", "version": ""}
    result = story.act("6 deploy.yml (rollback)", "deploy.yml", "workflow_dispatch", {"inputs": inputs}, inputs)
    assert result.returncode == 0, result.output[-4000:]
    assert len(result.jobs) == 2 and set(result.jobs.values()) == {"succeeded"}, result.jobs
    assert story.roles(result) == {"AWS_ROLE_ARN_PROD", "AWS_ROLE_ARN_READ"}  # only prod is touched
    pointer, parameter = served(story.repo, story.moto)
    assert pointer["current"] == champion and pointer["previous"] == retrained
    assert pointer["rolled_back"] == [retrained] and parameter == champion


def test_first_pr_to_prod_then_drift_retrain_and_rollback(story):
    """A team's first PR, deploy, registry comparisons, drift retrain PR, its deploy and a rollback work end to end."""
    _first_pr_has_no_prod_champion(story)
    first = _merge_deploys_to_prod(story)
    _prs_compare_with_the_registry_champion(story, first)
    _drift_opens_the_retrain_pr(story, first)
    retrained = _merging_the_retrain_pr_deploys_it(story, first)
    _rollback_restores_the_champion(story, first, retrained)
    print("act wall time per step (s):", json.dumps(story.seconds, indent=1))
