"""`make doctor`: local checks, the foundation stack on moto, and GitHub settings on a fake API."""

from __future__ import annotations

import pytest

from deploy_helpers import no_aws, use_moto, write_project
from fake_github import FakeGitHub
from mlops.config import load_config
from mlops.stages.bootstrap import bootstrap
from mlops.stages.doctor import check_github, format_checks, run_checks

BUCKET = "test-project-artifacts-123456789012-us-east-1"


def _by_name(checks):
    return {check.name: check for check in checks}


@pytest.fixture(autouse=True)
def _offline_uv(monkeypatch):
    """The serving-pins check asks uv; in tests it may use uv's cache only, never the network."""
    monkeypatch.setenv("UV_OFFLINE", "1")


def test_local_setup_passes_and_cloud_checks_are_skipped_without_credentials(tmp_path, monkeypatch):
    """Without AWS credentials or a GitHub token the doctor checks the machine and repo, and says what it skipped."""
    no_aws(monkeypatch, tmp_path)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    path = write_project(tmp_path / "project")
    checks = _by_name(run_checks(str(path)))
    for name in ("python", "packages", "config", "contract", "data", "act", "moto_server"):
        assert checks[name].status == "ok", format_checks(list(checks.values()))
    assert checks["aws"].status == "skip" and "local emulator" in checks["aws"].detail
    assert checks["github"].status == "skip" and "GH_TOKEN" in checks["github"].fix


def test_broken_config_is_one_failed_check_with_the_fix(tmp_path, monkeypatch):
    """A config with an unknown key fails the config check instead of crashing the doctor."""
    no_aws(monkeypatch, tmp_path)
    path = tmp_path / "mlops.yaml"
    path.write_text("project: demo-x\ntask: binary\ndata: {source: a.csv, target: y}\ntypo: 1\n")
    checks = _by_name(run_checks(str(path)))
    assert checks["config"].status == "fail" and "Config reference" in checks["config"].fix


@pytest.mark.aws
def test_missing_foundation_stack_says_run_bootstrap(moto, tmp_path, monkeypatch):
    """With credentials but no foundation stack, the doctor says to run `make bootstrap`."""
    use_moto(monkeypatch, moto)
    checks = _by_name(run_checks(str(write_project(tmp_path / "project"))))
    assert checks["aws"].status == "ok" and "123456789012" in checks["aws"].detail
    assert checks["foundation"].status == "fail" and "make bootstrap" in checks["foundation"].fix


@pytest.mark.aws
def test_foundation_stack_outputs_and_registry_uri(moto, tmp_path, monkeypatch):
    """After bootstrap the foundation check passes; a registry.uri other than the stack's is flagged with the fix."""
    use_moto(monkeypatch, moto)
    path = write_project(tmp_path / "project")
    bootstrap(load_config(path), "octo/loans")
    checks = _by_name(run_checks(str(path)))
    assert checks["foundation"].status == "ok", checks["foundation"].detail
    assert checks["registry"].status == "warn" and f"s3://{BUCKET}/registry" in checks["registry"].fix


@pytest.fixture(name="api")
def fixture_api(monkeypatch):
    """A fake GitHub REST API on 127.0.0.1 (GITHUB_API_URL) and a token."""
    with FakeGitHub() as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GH_TOKEN", "test-token")
        yield fake


MAIN_ONLY = {"protected_branches": False, "custom_branch_policies": True}


def test_github_variables_and_environments(api):
    """Missing variables, a variable that disagrees with the stack, and weak environments are each reported."""
    api.route("GET", r"/repos/octo/loans/actions/variables", body={"variables": [
        {"name": "AWS_ROLE_ARN_STAGING", "value": "arn:aws:iam::1:role/staging"},
        {"name": "AWS_ROLE_ARN_PROD", "value": "arn:aws:iam::1:role/old-prod"}]})
    api.route("GET", r"/repos/octo/loans/environments", body={"environments": [
        {"name": "staging", "protection_rules": [], "deployment_branch_policy": MAIN_ONLY},
        {"name": "prod", "protection_rules": [{"type": "required_reviewers", "prevent_self_review": False}],
         "deployment_branch_policy": None},
        {"name": "retrain", "protection_rules": [], "deployment_branch_policy": MAIN_ONLY}]})
    outputs = {"StagingDeployRoleArn": "arn:aws:iam::1:role/staging", "ProdDeployRoleArn": "arn:aws:iam::1:role/prod"}
    checks = _by_name(check_github("octo/loans", outputs))
    assert checks["var AWS_ROLE_ARN_STAGING"].status == "ok"
    assert checks["var AWS_ROLE_ARN_PROD"].status == "fail" and "role/prod" in checks["var AWS_ROLE_ARN_PROD"].fix
    assert checks["var AWS_ROLE_ARN_READ"].status == "fail" and "gh variable set" in checks["var AWS_ROLE_ARN_READ"].fix
    assert checks["environment staging"].status == "ok" and checks["environment retrain"].status == "ok"
    prod = checks["environment prod"]
    assert prod.status == "warn" and "any branch may deploy" in prod.detail
    assert "prevent self-review is off" in prod.detail


def test_github_missing_environment_and_unreadable_settings(api):
    """A missing environment is a failure naming how to create it; an unreadable repository is one failure."""
    api.route("GET", r"/repos/octo/loans/actions/variables", body={"variables": []})
    api.route("GET", r"/repos/octo/loans/environments", body={"environments": [
        {"name": "prod", "deployment_branch_policy": MAIN_ONLY,
         "protection_rules": [{"type": "required_reviewers", "prevent_self_review": True}]}]})
    checks = _by_name(check_github("octo/loans", {}))
    staging = checks["environment staging"]
    assert staging.status == "fail" and "make bootstrap" in staging.fix and "Settings > Environments" in staging.fix
    assert checks["environment prod"].status == "ok"
    (only,) = check_github("octo/missing", {})
    assert only.status == "fail" and "cannot read octo/missing" in only.detail


def test_doctor_names_the_serving_image_and_refuses_an_old_python(tmp_path, monkeypatch):
    """The doctor says which image and Python a deploy uses; an image Python that cannot take the pins fails."""
    no_aws(monkeypatch, tmp_path)
    checks = _by_name(run_checks(str(write_project(tmp_path / "default"))))
    assert checks["serving image"].status == "ok" and "sagemaker-scikit-learn:1.9-0-cpu-py3 (Python 3.12)" in \
        checks["serving image"].detail
    assert checks["serving pins"].status in ("ok", "skip")  # ok with uv's cache, skip without it (offline)
    old = write_project(tmp_path / "old", image_uri="123.dkr.ecr.us-east-1.amazonaws.com/mine:1", image_python="3.10")
    pins = _by_name(run_checks(str(old)))["serving pins"]
    assert pins.status == "fail" and "Requires-Python >=3.11" in pins.detail
