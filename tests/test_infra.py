"""The CloudFormation templates in infra/: cfn-lint clean, and the properties the deploy relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

INFRA = Path(__file__).resolve().parents[1] / "infra"


def _template(name: str) -> dict:
    template, problems = decode(str(INFRA / name))
    assert not problems, problems
    return template


def test_cfn_lint_passes_over_infra():
    """cfn-lint reports nothing for any template in infra/ (misspelled types and properties fail here)."""
    templates = sorted(str(p) for p in INFRA.glob("*.yml"))
    assert len(templates) == 2
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), *templates], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_stack_updates_blue_green_and_rolls_back_on_alarms():
    """The endpoint updates blue/green (canary with 2+ instances) and names both alarms for auto-rollback."""
    resources = _template("serving.yml")["Resources"]
    endpoint = resources["Endpoint"]["Properties"]
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    canary, all_at_once = policy["TrafficRoutingConfiguration"]["Fn::If"][1:]
    assert canary["Type"] == "CANARY" and canary["CanarySize"] == {"Type": "INSTANCE_COUNT", "Value": 1}
    assert all_at_once["Type"] == "ALL_AT_ONCE"
    auto_rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]
    rollback_alarms = [a["AlarmName"]["Fn::Sub"] for a in auto_rollback["Alarms"]]
    alarms = {r["Properties"]["MetricName"]: r["Properties"]["AlarmName"]["Fn::Sub"]
              for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"Invocation5XXErrors", "ModelLatency"}
    assert sorted(rollback_alarms) == sorted(alarms.values())
    assert set(resources["Endpoint"]["DependsOn"]) == {"Invocation5xxAlarm", "ModelLatencyAlarm"}
    for name in ("EndpointConfig", "Endpoint"):  # makes moto replace them on a version change
        assert {"Key": "model-version", "Value": {"Ref": "ModelVersion"}} in resources[name]["Properties"]["Tags"]
    assert resources["VersionParameter"]["Properties"]["Value"] == {"Ref": "ModelVersion"}
    environment = resources["Model"]["Properties"]["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"


def test_serving_outputs_never_read_resources_moto_skips():
    """No output reads an alarm (moto skips alarms, and a GetAtt on one fails the whole create)."""
    template = _template("serving.yml")
    alarms = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    text = repr(template["Outputs"])
    assert not any(name in text for name in alarms)
    assert set(template["Outputs"]) == {"EndpointName", "ModelVersion", "ModelName", "VersionParameterName"}


def test_foundation_bucket_is_private_and_roles_are_scoped():
    """The bucket is versioned, encrypted and private; each deploy role trusts only its GitHub environment."""
    resources = _template("foundation.yml")["Resources"]
    bucket = resources["ArtifactBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    subjects = {}
    for name in ("StagingDeployRole", "ProdDeployRole"):
        statement = resources[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert len(statement) == 1 and statement[0]["Action"] == "sts:AssumeRoleWithWebIdentity"
        condition = statement[0]["Condition"]["StringEquals"]
        assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        subjects[name] = condition["token.actions.githubusercontent.com:sub"]["Fn::Sub"]
    assert subjects == {"StagingDeployRole": "repo:${GitHubRepository}:environment:${StagingEnvironment}",
                        "ProdDeployRole": "repo:${GitHubRepository}:environment:${ProdEnvironment}"}
    for role in (r for r in resources.values() if r["Type"] == "AWS::IAM::Role"):
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
    assert not any(r["Type"] == "AWS::IAM::AccessKey" for r in resources.values())
    staging = repr(resources["StagingDeployRole"]["Properties"]["Policies"])
    prod = repr(resources["ProdDeployRole"]["Properties"]["Policies"])
    assert "-prod" not in staging and "/prod" not in staging and "${Project}-staging" in staging
    assert "-staging" not in prod and "/staging" not in prod and "${Project}-prod" in prod
    assert "s3:PutObject" not in repr(resources["ReadOnlyRole"]["Properties"]["Policies"])


@pytest.mark.parametrize("name", ["foundation.yml", "serving.yml"])
def test_templates_open_with_a_header_comment(name):
    """Each template starts with a comment saying what it creates and when it is deployed."""
    first = (INFRA / name).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and "stack" in first.lower()
