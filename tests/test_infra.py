"""The CloudFormation templates in infra/: cfn-lint clean, and the properties the deploy relies on."""

from __future__ import annotations

import re
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
    assert environment["MLOPS_PACKAGE_DIGEST"] == {"Ref": "PackageDigest"}  # the container refuses other packages
    assert {"Key": "environment", "Value": {"Ref": "Environment"}} in resources["EndpointConfig"]["Properties"]["Tags"]


def test_serving_outputs_never_read_resources_moto_skips():
    """No output reads an alarm (moto skips alarms, and a GetAtt on one fails the whole create)."""
    template = _template("serving.yml")
    alarms = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    text = repr(template["Outputs"])
    assert not any(name in text for name in alarms)
    assert set(template["Outputs"]) == {"EndpointName", "ModelVersion", "ModelName", "VersionParameterName",
                                        "CaptureDestination"}


def test_every_endpoint_captures_input_and_output_as_text():
    """DataCaptureConfig: both modes, CSV and JSON stored as text, the share and destination from parameters."""
    template = _template("serving.yml")
    on, off = template["Resources"]["EndpointConfig"]["Properties"]["DataCaptureConfig"]["Fn::If"][1:]
    assert off == {"Ref": "AWS::NoValue"}
    assert on["EnableCapture"] is True and on["InitialSamplingPercentage"] == {"Ref": "CapturePercent"}
    assert on["DestinationS3Uri"] == {"Ref": "CaptureDestination"}
    assert sorted(o["CaptureMode"] for o in on["CaptureOptions"]) == ["Input", "Output"]
    assert on["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"],
                                              "JsonContentTypes": ["application/json", "application/jsonlines"]}
    destination = template["Parameters"]["CaptureDestination"]["AllowedPattern"]
    assert re.fullmatch(destination, "s3://b-1/capture/p/prod") and not re.fullmatch(destination, "s3://b-1/capture/")


def test_capture_permissions_are_exactly_what_the_loop_needs():
    """SageMaker writes capture/<project>/; each deploy role reads its own environment's; read-only reads all."""
    resources = _template("foundation.yml")["Resources"]
    execution = _statements(resources["SageMakerExecutionRole"], "Allow")
    writes = [r for st in execution if "s3:PutObject" in _actions(st) for r in _resources(st)]
    assert writes == ["arn:${AWS::Partition}:s3:::${ArtifactBucket}/capture/${Project}/*"]
    for name, prefix in (("StagingDeployRole", "capture/${Project}/staging/"),
                         ("ProdDeployRole", "capture/${Project}/prod/"), ("ReadOnlyRole", "capture/${Project}/")):
        statements = _statements(resources[name], "Allow")
        reads = [r for st in statements if "s3:GetObject" in _actions(st) for r in _resources(st) if "/capture/" in r]
        assert reads == [f"arn:${{AWS::Partition}}:s3:::${{ArtifactBucket}}/{prefix}*"], (name, reads)
        lists = [st["Condition"]["StringLike"]["s3:prefix"]["Fn::Sub"] for st in statements
                 if "s3:ListBucket" in _actions(st) and "capture" in repr(st)]
        assert lists == [f"{prefix}*"], (name, lists)
        assert not [st for st in statements if "s3:PutObject" in _actions(st) and "capture" in repr(st)]


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
    staging = repr(_statements(resources["StagingDeployRole"], "Allow"))
    prod = repr(_statements(resources["ProdDeployRole"], "Allow"))
    assert "-prod" not in staging and "/prod" not in staging and "${Project}-staging" in staging
    assert "-staging" not in prod and "/staging" not in prod and "${Project}-prod" in prod
    read_writes = [r for st in _statements(resources["ReadOnlyRole"], "Allow") if "s3:PutObject" in _actions(st)
                   for r in _resources(st)]
    assert read_writes == ["arn:${AWS::Partition}:s3:::${ArtifactBucket}/jobs/${Project}/code/*"]  # job code only


def _statements(role: dict, effect: str) -> list[dict]:
    return [st for policy in role["Properties"]["Policies"] for st in policy["PolicyDocument"]["Statement"]
            if st["Effect"] == effect]


def _resources(statement: dict) -> list[str]:
    listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [r["Fn::Sub"] if isinstance(r, dict) and "Fn::Sub" in r else repr(r) for r in listed]


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_registry_objects_are_create_once_and_staging_cannot_vouch_for_prod():
    """The bucket refuses registry writes without If-None-Match; staging is denied prod's record and release."""
    resources = _template("foundation.yml")["Resources"]
    (deny,) = [st for st in resources["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
               if st["Sid"] == "DenyOverwritingRegistryVersions"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:PutObject"
    assert deny["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    assert {r.rsplit("/", 2)[-2] for r in _resources(deny)} == {"models", "releases"}
    (never,) = _statements(resources["StagingDeployRole"], "Deny")
    denied = _resources(never)
    assert _actions(never) == ["s3:PutObject"]
    assert any(r.endswith("/models/*/passed/prod.json") for r in denied)
    assert any(r.endswith("/releases/prod/*") for r in denied)
    assert any(r.endswith("/environments/prod.json") for r in denied)
    prod_writes = [r for st in _statements(resources["ProdDeployRole"], "Allow") if "s3:PutObject" in _actions(st)
                   for r in _resources(st)]
    assert all(("/prod" in r or "prod.json" in r) for r in prod_writes), prod_writes
    execution = _statements(resources["SageMakerExecutionRole"], "Allow")
    reads = [r for st in execution if "s3:GetObject" in _actions(st) for r in _resources(st)]
    assert reads and all("/releases/" in r for r in reads)  # endpoints read released copies, not the registry


def test_deploy_roles_cannot_touch_the_foundation_or_the_other_environment():
    """Deploy roles only describe the foundation stack; SageMaker writes and deletes need the environment's tag."""
    resources = _template("foundation.yml")["Resources"]
    for name, env in (("StagingDeployRole", "staging"), ("ProdDeployRole", "prod")):
        for statement in _statements(resources[name], "Allow"):
            actions = _actions(statement)
            if any("${AWS::StackName}" in r for r in _resources(statement)):
                assert actions == ["cloudformation:DescribeStacks"], statement
            if any(a.startswith("sagemaker:") and not a.startswith(("sagemaker:Describe", "sagemaker:List",
                                                                     "sagemaker:Invoke")) for a in actions):
                tags = statement["Condition"]["StringEquals"]
                key = "aws:RequestTag/environment" if any("Create" in a for a in actions) else \
                    "aws:ResourceTag/environment"
                assert tags[key] == env, statement


def test_read_only_role_reads_this_project_only():
    """No read-only statement uses Resource "*": stacks, endpoints, alarms and parameters are this project's."""
    statements = _statements(_template("foundation.yml")["Resources"]["ReadOnlyRole"], "Allow")
    for statement in statements:
        scoped = "${Project}" in repr(statement.get("Condition")) or "aws:ResourceTag/project" in repr(statement)
        for resource in _resources(statement):
            if _actions(statement) == ["logs:DescribeLogStreams"]:  # stream names of SageMaker's two job log groups
                assert resource.endswith(("log-group:/aws/sagemaker/TrainingJobs:*",
                                          "log-group:/aws/sagemaker/ProcessingJobs:*")), statement
                continue
            assert resource != "'*'" and ("${Project}" in resource or scoped), statement
    (configs,) = [st for st in statements if "sagemaker:DescribeEndpointConfig" in _actions(st)]
    assert configs["Condition"] == {"StringEquals": {"aws:ResourceTag/project": {"Ref": "Project"}}}


@pytest.mark.parametrize("name", ["foundation.yml", "serving.yml"])
def test_templates_open_with_a_header_comment(name):
    """Each template starts with a comment saying what it creates and when it is deployed."""
    first = (INFRA / name).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and "stack" in first.lower()


def test_job_permissions_are_exactly_start_follow_stop_logs_and_pass_the_job_role():
    """compute: sagemaker: the read role may start, describe and stop this project's jobs, read their logs, pass the
    job role (and nothing else) and upload job code; the job role is not the endpoints' role."""
    resources = _template("foundation.yml")["Resources"]
    (policy,) = [p for p in resources["ReadOnlyRole"]["Properties"]["Policies"] if p["PolicyName"] == "run-jobs"]
    statements = {st["Sid"]: st for st in policy["PolicyDocument"]["Statement"]}
    sagemaker = sorted(a for st in statements.values() for a in _actions(st) if a.startswith("sagemaker:"))
    assert sagemaker == ["sagemaker:AddTags", "sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob",
                         "sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob",
                         "sagemaker:StopProcessingJob", "sagemaker:StopTrainingJob"]
    assert statements["StartThisProjectsJobs"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/project": {"Ref": "Project"}}}
    for sid in ("StartThisProjectsJobs", "FollowAndStopThisProjectsJobs"):
        assert all(r.endswith("-job/${Project}-*") for r in _resources(statements[sid]))
    passes = [st for p in resources["ReadOnlyRole"]["Properties"]["Policies"] for st in p["PolicyDocument"]["Statement"]
              if "iam:PassRole" in _actions(st)]
    assert passes == [statements["PassTheJobRole"]]
    assert _resources(passes[0]) == ["arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${Project}-sagemaker-jobs"]
    assert passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert resources["SageMakerJobRole"]["Properties"]["RoleName"] == {"Fn::Sub": "${Project}-sagemaker-jobs"}
    job_writes = [r for st in _statements(resources["SageMakerJobRole"], "Allow") if "s3:PutObject" in _actions(st)
                  for r in _resources(st)]
    assert job_writes == ["arn:${AWS::Partition}:s3:::${ArtifactBucket}/jobs/${Project}/*"]  # never the registry
    # the runner's own reads of the rows (compare, evaluate, collect, a manifest's copies): this project's data only
    data_reads = [(sorted(_actions(st)), r) for role in ("ReadOnlyRole", "SageMakerJobRole")
                  for st in _statements(resources[role], "Allow") for r in _resources(st) if "/data/" in r]
    assert data_reads == [(["s3:GetObject", "s3:GetObjectVersion"],
                           "arn:${AWS::Partition}:s3:::${ArtifactBucket}/data/${Project}/*"),
                          (["s3:GetObject"], "arn:${AWS::Partition}:s3:::${ArtifactBucket}/data/${Project}/*")]
