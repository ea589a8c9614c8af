"""`make bootstrap`: the foundation stack on moto, then the GitHub repository configured on a fake API."""

from __future__ import annotations

import pytest

from deploy_helpers import use_moto, write_project
from fake_github import FakeGitHub
from mlops.cli import main

pytestmark = pytest.mark.aws

REPO = "/repos/octo/loans"


class Repository:
    """A GitHub repository's settings as a stateful fake: variables, environments, branch policies, permissions."""

    def __init__(self, api: FakeGitHub, admin: bool = True):
        self.variables: dict[str, str] = {}
        self.environments: dict[str, dict] = {}
        self.policies: dict[str, list] = {}
        self.workflow = {"default_workflow_permissions": "write", "can_approve_pull_request_reviews": False}
        denied = (403, {"message": "Resource not accessible by personal access token"})
        api.route("GET", "/user", body={"login": "octocat", "id": 583231})
        api.route("GET", "/users/hubot", body={"login": "hubot", "id": 9})
        api.route("GET", rf"{REPO}/actions/variables/(\w+)",
                  status=lambda c: 200 if self._var(c) in self.variables else 404,
                  body=lambda c: {"name": self._var(c), "value": self.variables.get(self._var(c))})
        api.route("POST", rf"{REPO}/actions/variables", status=201, body=self._create_variable)
        api.route("PATCH", rf"{REPO}/actions/variables/(\w+)", status=204, body=self._create_variable)
        api.route("GET", rf"{REPO}/environments/([a-z]+)", status=lambda c: 200 if self._env(c) in self.environments
                  else 404, body=lambda c: self.environments.get(self._env(c), {"message": "Not Found"}))
        api.route("PUT", rf"{REPO}/environments/([a-z]+)", status=200 if admin else denied[0],
                  body=self._put_environment if admin else denied[1])
        api.route("GET", rf"{REPO}/environments/([a-z]+)/deployment-branch-policies",
                  body=lambda c: {"branch_policies": self.policies.get(self._env(c), [])})
        api.route("POST", rf"{REPO}/environments/([a-z]+)/deployment-branch-policies", body=self._add_policy)
        api.route("GET", rf"{REPO}/actions/permissions/workflow", body=lambda c: self.workflow)
        api.route("PUT", rf"{REPO}/actions/permissions/workflow", status=204 if admin else denied[0],
                  body=self._put_workflow if admin else denied[1])

    @staticmethod
    def _var(call) -> str:
        return call.route.rsplit("/", 1)[1]

    @staticmethod
    def _env(call) -> str:
        return call.route.split("/environments/")[1].split("/")[0]

    def _create_variable(self, call):
        self.variables[call.body["name"]] = call.body["value"]

    def _put_environment(self, call):
        body, name = call.body, self._env(call)
        rules = []
        if body.get("reviewers"):
            rules.append({"type": "required_reviewers", "prevent_self_review": body["prevent_self_review"],
                          "reviewers": [{"type": "User", "reviewer": {"id": r["id"]}} for r in body["reviewers"]]})
        self.environments[name] = {"name": name, "protection_rules": rules,
                                   "deployment_branch_policy": body["deployment_branch_policy"]}
        return self.environments[name]

    def _add_policy(self, call):
        self.policies.setdefault(self._env(call), []).append({"name": call.body["name"], "type": "branch"})
        return {"name": call.body["name"]}

    def _put_workflow(self, call):
        self.workflow = call.body


@pytest.fixture(name="project_on_aws")
def fixture_project_on_aws(moto, tmp_path, monkeypatch):
    """A project with AWS credentials pointing at moto, and a fake GitHub API."""
    use_moto(monkeypatch, moto)
    with FakeGitHub() as api:
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        yield write_project(tmp_path / "project"), api


def test_bootstrap_with_a_token_configures_the_repository_once(project_on_aws, monkeypatch, capsys):
    """Variables from the stack outputs, three main-only environments, prod reviewed (no self-review), PR permission."""
    path, api = project_on_aws
    repository = Repository(api)
    monkeypatch.setenv("GH_TOKEN", "admin-token")
    assert main(["--config", str(path), "bootstrap", "--repository", "octo/loans"]) == 0
    out = capsys.readouterr().out
    assert set(repository.variables) == {"AWS_ROLE_ARN_STAGING", "AWS_ROLE_ARN_PROD", "AWS_ROLE_ARN_READ", "AWS_REGION"}
    assert repository.variables["AWS_ROLE_ARN_PROD"].endswith(":role/test-project-github-deploy-prod")
    assert repository.variables["AWS_REGION"] == "us-east-1"
    assert set(repository.environments) == {"staging", "prod", "retrain"}
    assert all(policies == [{"name": "main", "type": "branch"}] for policies in repository.policies.values())
    (put_prod,) = api.made("PUT", rf"{REPO}/environments/prod")
    assert put_prod.body["reviewers"] == [{"type": "User", "id": 583231}] and put_prod.body["prevent_self_review"]
    assert repository.workflow == {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": True}
    assert out.count("[done") == 8 and "registry.uri" in out
    assert all(c.authorization == "Bearer admin-token" for c in api.calls)

    api.calls.clear()
    assert main(["--config", str(path), "bootstrap", "--repository", "octo/loans"]) == 0  # idempotent
    assert "[done" not in capsys.readouterr().out
    assert not [c for c in api.calls if c.method != "GET"]


def test_bootstrap_reviewers_can_be_named(project_on_aws, monkeypatch):
    """REVIEWERS=hubot requires that user on prod instead of the token's."""
    path, api = project_on_aws
    repository = Repository(api)
    monkeypatch.setenv("GH_TOKEN", "admin-token")
    assert main(["--config", str(path), "bootstrap", "--repository", "octo/loans", "--reviewers", "hubot"]) == 0
    rule = repository.environments["prod"]["protection_rules"][0]
    assert rule["reviewers"] == [{"type": "User", "reviewer": {"id": 9}}]


def test_a_token_without_admin_rights_lists_what_it_could_not_do(project_on_aws, monkeypatch, capsys):
    """Without Administration write: the environment and permission steps fail with the permission; none says done."""
    path, api = project_on_aws
    repository = Repository(api, admin=False)
    monkeypatch.setenv("GH_TOKEN", "variables-only")
    assert main(["--config", str(path), "bootstrap", "--repository", "octo/loans"]) == 1
    captured = capsys.readouterr()
    assert len(repository.variables) == 4 and not repository.environments
    for name in ("environment staging", "environment prod", "environment retrain", "workflow permissions"):
        line = next(line for line in captured.out.splitlines() if name in line)
        assert line.strip().startswith("[fail") and "HTTP 403" in line, line
    assert captured.out.count("Administration: read and write") == 4
    assert "Error: 4 GitHub step(s) failed" in captured.err and "foundation stack is in place" in captured.err


def test_without_a_token_bootstrap_prints_the_manual_steps(project_on_aws, monkeypatch, capsys):
    """No GH_TOKEN: the stack is made and the exact settings to make by hand are printed, with the role ARNs."""
    path, api = project_on_aws
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert main(["--config", str(path), "bootstrap", "--repository", "octo/loans"]) == 0
    out = capsys.readouterr().out
    assert "AWS_ROLE_ARN_PROD = arn:aws:iam::123456789012:role/test-project-github-deploy-prod" in out
    assert "Environments > New environment 'prod' with required reviewers and 'Prevent self-review'" in out
    assert "Allow GitHub Actions to create and approve pull requests" in out and not api.calls
