"""Deploys against a real moto_server on 127.0.0.1, and botocore's Stubber for states moto cannot reach."""

from __future__ import annotations

import hashlib
import json
import shutil

import boto3
import pandas as pd
import pytest
import yaml
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from deploy_helpers import no_aws, train_version, use_moto, write_project
from mlops import aws as aws_module
from mlops import cloudformation, images
from mlops import release as release_module
from mlops.cli import main
from mlops.config import load_config
from mlops.cloudformation import apply_stack
from mlops.stages.bootstrap import bootstrap
from mlops.stages.deploy import deploy
from mlops.stages.rollback import rollback
from mlops.errors import ConfigError, CredentialsError, DeployError, ModelError
from mlops.package import build
from mlops.registry import Registry
from mlops.stages.doctor import check_registry

pytestmark = pytest.mark.aws

BUCKET = "test-project-artifacts-123456789012-us-east-1"


@pytest.fixture(name="aws")
def _aws(moto, tmp_path, monkeypatch):
    """A project whose staging/prod point (via AWS_ENDPOINT_URL) at moto, with the foundation stack bootstrapped."""
    use_moto(monkeypatch, moto)
    monkeypatch.delenv("MLOPS_MODELS_DIR", raising=False)
    monkeypatch.delenv("MLOPS_REPORTS_DIR", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    config = load_config(write_project(tmp_path / "project", registry_uri=f"s3://{BUCKET}/registry"))
    result = bootstrap(config, "octo/loans")
    assert result["outputs"]["RegistryUri"] == f"s3://{BUCKET}/registry"
    return config


def _serving(config, environment):
    """(stack ModelVersion output, SSM parameter, endpoint's model) as the emulator reports them."""
    cf = boto3.client("cloudformation")
    stack = cf.describe_stacks(StackName=f"{config.project}-{environment}")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    parameter = boto3.client("ssm").get_parameter(Name=outputs["VersionParameterName"])["Parameter"]["Value"]
    sagemaker = boto3.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return outputs["ModelVersion"], parameter, variants["ProductionVariants"][0]["ModelName"] == outputs["ModelName"]


def test_staging_then_prod_then_update_then_rollback(aws, monkeypatch, capsys):
    """A version goes staging -> prod; a newer one replaces it; rollback puts the first back everywhere it counts."""
    v1 = train_version(aws, "1111111", monkeypatch)
    staged = deploy(aws, "staging")
    assert staged["version"] == v1 and staged["stack_action"] == "created" and staged["emulated"]
    assert staged["smoke"]["endpoint_tested"] is False and staged["smoke"]["bad_row_status"] == 400
    out = capsys.readouterr().out
    assert "No real endpoint was tested" in out and "is an emulator on this machine, not AWS" in out
    promoted = deploy(aws, "prod")
    assert promoted["version"] == v1 and _serving(aws, "prod") == (v1, v1, True)

    v2 = train_version(aws, "2222222", monkeypatch)
    assert deploy(aws, "staging")["stack_action"] == "updated"
    updated = deploy(aws, "prod")
    assert updated["version"] == v2 and updated["serving_before"] == v1 and _serving(aws, "prod") == (v2, v2, True)
    registry = Registry.from_config(aws)
    assert registry.pointer("prod")["current"] == v2 and registry.pointer("prod")["previous"] == v1
    assert registry.passed(v2, "staging")["rows"] == 10 and registry.passed(v2, "prod")["version"] == v2

    again = deploy(aws, "prod")  # idempotent: the same version again changes nothing
    assert again["stack_action"] in ("unchanged", "updated") and registry.pointer("prod")["current"] == v2

    rolled = rollback(aws, "prod")
    assert rolled["version"] == v1 and rolled["rollback_of"] == v2 and _serving(aws, "prod") == (v1, v1, True)
    pointer = registry.pointer("prod")
    assert pointer["current"] == v1 and pointer["rolled_back"] == [v2]
    with pytest.raises(DeployError, match="no earlier version to roll back to"):
        rollback(aws, "prod")
    record = json.loads((aws.reports_dir / "deploy-prod.json").read_text())
    assert record["version"] == v1 and record["rollback_of"] == v2
    assert _serving(aws, "staging") == (v2, v2, True)  # rolling prod back leaves staging alone


def test_prod_refuses_a_version_that_has_not_passed_staging(aws, monkeypatch):
    """A registered version that never passed staging is refused by prod, and prod is left untouched."""
    v1 = train_version(aws, "1111111", monkeypatch)
    deploy(aws, "staging")
    deploy(aws, "prod")
    v2 = train_version(aws, "3333333", monkeypatch)
    registry = Registry.from_config(aws)
    package = build(aws, aws.models_dir / v2, aws.models_dir / "package")
    registry.register(aws.models_dir / v2, extra_files=(package.tarball, package.card))
    with pytest.raises(DeployError, match=f"prod refuses {v2}: it has not passed staging") as error:
        deploy(aws, "prod", v2)
    assert f"make deploy ENV=staging VERSION={v2}" in str(error.value)
    assert _serving(aws, "prod") == (v1, v1, True) and registry.pointer("prod")["current"] == v1


def test_missing_artifacts_fail_clearly(aws, monkeypatch):
    """Unregistered versions, a version without its package, and a missing foundation stack each say what to do."""
    with pytest.raises(ModelError, match="no trained model"):
        deploy(aws, "staging")
    with pytest.raises(ModelError, match="20990101T000000Z-missing is not registered"):
        deploy(aws, "prod", "20990101T000000Z-missing")
    v1 = train_version(aws, "4444444", monkeypatch)
    Registry.from_config(aws).register(aws.models_dir / v1)  # registered by hand, without model.tar.gz
    shutil.rmtree(aws.models_dir / v1)  # ...and not in this checkout, so it cannot be packaged here
    with pytest.raises(DeployError, match=f"version {v1} has no model.tar.gz"):
        deploy(aws, "staging", v1)
    train_version(aws, "4444445", monkeypatch)
    boto3.client("cloudformation").delete_stack(StackName="test-project-foundation")
    with pytest.raises(DeployError, match="run `make bootstrap` once"):
        deploy(aws, "staging")
    assert not boto3.client("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]
    assert Registry.from_config(aws).versions() == [v1]  # nothing was registered before the check failed


def test_failed_smoke_test_leaves_the_previous_version_serving(aws, monkeypatch, tmp_path):
    """A version that deploys but fails its smoke test is undone: the previous version serves, pointers unchanged."""
    v1 = train_version(aws, "5555555", monkeypatch)
    deploy(aws, "staging")
    v2 = train_version(aws, "6666666", monkeypatch)
    strict = load_config(write_project(tmp_path / "project", registry_uri=f"s3://{BUCKET}/registry",
                                       smoke_max_latency_ms=0.001))
    with pytest.raises(DeployError) as error:
        deploy(strict, "staging")
    message = str(error.value)
    assert f"smoke test of {v2}" in message and "over deploy.smoke_max_latency_ms" in message
    assert f"Rolled test-project-staging back to {v1}, which serves again." in message
    assert _serving(aws, "staging") == (v1, v1, True)
    registry = Registry.from_config(aws)
    assert registry.pointer("staging")["current"] == v1 and registry.passed(v2, "staging") is None
    failed_only = registry.failed_only()  # marked, so make doctor can list it for pruning
    assert len(failed_only) == 1
    failed = failed_only[0]
    assert failed["version"] == v2 and failed["environment"] == "staging" and "latency" in failed["reason"]
    checks = {c.name: c for c in check_registry(aws)}
    assert checks["failed versions"].status == "warn" and v2 in checks["failed versions"].detail


def test_unknown_environment_is_an_error_naming_the_known_ones(aws, capsys):
    """`make deploy ENV=qa` fails before touching anything, listing the configured environments."""
    with pytest.raises(DeployError, match="unknown environment 'qa'.*local, staging, prod"):
        deploy(aws, "qa")
    code = main(["--config", aws.path, "deploy", "--env", "qa"])
    assert code == 1 and capsys.readouterr().err.startswith("Error: unknown environment 'qa'")


def test_real_aws_targets_without_credentials_fail_and_never_use_the_emulator(tmp_path, monkeypatch, capsys):
    """staging/prod with no credentials raise CredentialsError with the fix; no emulator is started instead."""
    no_aws(monkeypatch, tmp_path)
    config = load_config(write_project(tmp_path / "project", registry_uri="s3://some-bucket/registry"))
    started = []
    monkeypatch.setattr(aws_module, "emulator", lambda *a, **k: started.append(1))
    for environment in ("staging", "prod"):
        with pytest.raises(CredentialsError, match="no AWS credentials found") as error:
            deploy(config, environment)
        assert "configure-aws-credentials" in str(error.value) and "make deploy ENV=local" in str(error.value)
    code = main(["--config", config.path, "rollback", "--env", "prod"])
    assert code == 1 and "Error: no AWS credentials found" in capsys.readouterr().err
    assert not started and not (tmp_path / "project" / "reports" / "deploy-staging.json").exists()


def test_local_environment_runs_the_whole_flow_on_its_own_emulator(tmp_path, monkeypatch, capsys):
    """ENV=local starts moto_server itself, says so, deploys the real templates and smoke-tests locally."""
    no_aws(monkeypatch, tmp_path)
    monkeypatch.delenv("MLOPS_MODELS_DIR", raising=False)
    monkeypatch.delenv("MLOPS_REPORTS_DIR", raising=False)
    config = load_config(write_project(tmp_path / "project"))
    version = train_version(config, "7777777", monkeypatch)
    code = main(["--config", config.path, "deploy"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err
    assert "EMULATOR: local runs against a local AWS emulator (moto_server at http://127.0.0.1:" in out
    assert f"Deployed {version} to local (created; local serve tested, not a real endpoint)" in out
    record = json.loads((tmp_path / "project" / "reports" / "deploy-local.json").read_text())
    assert record["emulator"] and record["smoke"]["rows"] == 10 and record["stack"] == "test-project-local"
    assert Registry.from_config(config).pointer("local")["current"] == version
    # The stand-in captured the smoke test's traffic where the endpoint config says (the warm-up, five timed
    # requests, the contract-breaking row), and the canary read it back: no previous version to compare with.
    canary = record["canary"]
    assert canary["location"].startswith("s3://test-project-artifacts-") and "/capture/test-project/local/" in \
        canary["location"]
    assert canary["versions"] == {version: {"requests": 7, "errors": 1, "error_rate": round(1 / 7, 4), "rows": 60,
                                            "distinct_rows": 10, "predictions": canary["versions"][version]
                                            ["predictions"]}}
    assert canary["note"] == "no captured traffic of a previous version to compare with" and canary["passed"]


def test_config_rejects_environments_that_cannot_work(tmp_path):
    """`requires` must name another environment, and a real environment cannot depend on an emulator."""
    path = write_project(tmp_path / "project")
    config = yaml.safe_load(path.read_text())
    config["deploy"]["environments"] = {"staging": {"requires": "qa"}}
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="requires is 'qa'; it must name another environment"):
        load_config(path)
    config["deploy"]["environments"] = {"local": {"emulator": True}, "prod": {"requires": "local"}}
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="a version must pass a real environment before a real one"):
        load_config(path)


# --- paths moto cannot produce: botocore Stubber -------------------------------------------------


def _stubbed():
    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="http://127.0.0.1:9")
    return client, Stubber(client)


def _stack(status: str, version: str = "20240101T000000Z-aaaaaaa") -> dict:
    return {"Stacks": [{"StackName": "p-prod", "StackStatus": status, "CreationTime": "2024-01-01T00:00:00Z",
                        "Parameters": [{"ParameterKey": "ModelVersion", "ParameterValue": version}]}]}


def test_no_op_update_counts_as_success():
    """CloudFormation's 'No updates are to be performed' means the stack already matches: success, no wait."""
    client, stub = _stubbed()
    stub.add_response("describe_stacks", _stack("UPDATE_COMPLETE"))
    stub.add_client_error("update_stack", "ValidationError", "No updates are to be performed.")
    with stub:
        assert apply_stack(client, "p-prod", "{}", {"ModelVersion": "20240101T000000Z-aaaaaaa"}, 5) == "unchanged"
    stub.assert_no_pending_responses()


def test_update_rolled_back_by_cloudformation_reports_the_failure(monkeypatch):
    """UPDATE_ROLLBACK_COMPLETE (e.g. an alarm fired) is a failure that says the previous version still serves."""
    monkeypatch.setattr(cloudformation, "_sleep", lambda seconds: None)
    client, stub = _stubbed()
    stub.add_response("describe_stacks", _stack("UPDATE_COMPLETE"))
    stub.add_response("update_stack", {"StackId": "arn:aws:cloudformation:us-east-1:1:stack/p-prod/1"})
    stub.add_response("describe_stacks", _stack("UPDATE_IN_PROGRESS"))
    stub.add_response("describe_stacks", _stack("UPDATE_ROLLBACK_IN_PROGRESS"))
    stub.add_response("describe_stacks", _stack("UPDATE_ROLLBACK_COMPLETE"))
    stub.add_response("describe_stack_events", {"StackEvents": [
        {"StackId": "s", "EventId": "1", "StackName": "p-prod", "LogicalResourceId": "Endpoint",
         "ResourceStatus": "UPDATE_FAILED", "Timestamp": "2024-01-01T00:00:00Z",
         "ResourceStatusReason": "Alarm p-prod-invocation-5xx fired; rolled back"}]})
    with stub, pytest.raises(DeployError) as error:
        apply_stack(client, "p-prod", "{}", {"ModelVersion": "20240102T000000Z-bbbbbbb"}, 5)
    assert "rolled it back, so the previous version is still serving" in str(error.value)
    assert "Endpoint: Alarm p-prod-invocation-5xx fired" in str(error.value)


def test_failed_first_create_is_deleted_and_created_again(monkeypatch):
    """A stack left in ROLLBACK_COMPLETE by a failed first create is deleted, then created afresh."""
    monkeypatch.setattr(cloudformation, "_sleep", lambda seconds: None)
    client, stub = _stubbed()
    stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"))
    stub.add_response("delete_stack", {})
    stub.add_client_error("describe_stacks", "ValidationError", "Stack with id p-prod does not exist")
    stub.add_response("create_stack", {"StackId": "arn:aws:cloudformation:us-east-1:1:stack/p-prod/2"})
    stub.add_response("describe_stacks", _stack("CREATE_IN_PROGRESS"))
    stub.add_response("describe_stacks", _stack("CREATE_COMPLETE"))
    with stub:
        assert apply_stack(client, "p-prod", "{}", {}, 5) == "created"
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(("status", "advice"), [
    ("UPDATE_ROLLBACK_FAILED", "continue-update-rollback --stack-name p-prod"),
    ("UPDATE_IN_PROGRESS", "another deploy or rollback is running"),
])
def test_stacks_that_need_a_human_are_not_touched(status, advice):
    """A stuck or busy stack is an error with the fix, and no create/update call is made."""
    client, stub = _stubbed()
    stub.add_response("describe_stacks", _stack(status))
    with stub, pytest.raises(DeployError, match=advice):
        apply_stack(client, "p-prod", "{}", {}, 5)
    stub.assert_no_pending_responses()


def test_the_default_image_serves_the_templates_pins_and_an_old_python_image_is_refused(aws, monkeypatch, tmp_path):
    """AWS's 1.9-0 image (Python 3.12) accepts a model trained here (it was refused); a user's image whose Python
    cannot install the pins is refused before any stack change, naming each library and its Requires-Python."""
    version = train_version(aws, "abcdef1", monkeypatch)
    metadata = json.loads((aws.models_dir / version / "metadata.json").read_text())
    assert images.serving_image(aws).endswith("/sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert images.image_python(aws) == "3.12"
    real = aws_module.Target("staging", aws.deploy.environments["staging"], session=None)
    release_module._check_serving_image(aws, real, version, metadata)  # pylint: disable=protected-access
    assert images.python_conflicts({"pandas": metadata["libraries"]["pandas"]}, "3.10") == [
        f"pandas {metadata['libraries']['pandas']} (Requires-Python >=3.11)"]
    old = load_config(write_project(tmp_path / "old-image", registry_uri=f"s3://{BUCKET}/registry",
                                    image_uri="123.dkr.ecr.us-east-1.amazonaws.com/mine:1", image_python="3.10"))
    shutil.copytree(aws.models_dir, old.models_dir)
    with pytest.raises(DeployError, match=r"cannot be served by 123\.dkr.*Python 3\.10 .*pandas .*Requires-Python "
                                          r">=3\.11.*Nothing was deployed"):
        deploy(old, "staging")
    with pytest.raises(ClientError):  # refused before the stack was touched
        boto3.client("cloudformation").describe_stacks(StackName=f"{old.project}-staging")


def test_a_custom_image_must_say_its_python(tmp_path):
    """deploy.image_uri without deploy.image_python is a config error naming the key."""
    with pytest.raises(ConfigError, match="deploy.image_python is not"):
        load_config(write_project(tmp_path / "p", image_uri="123.dkr.ecr.us-east-1.amazonaws.com/mine:1"))


def _stack_parameters(config, environment) -> dict:
    stack = boto3.client("cloudformation").describe_stacks(StackName=f"{config.project}-{environment}")["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def test_prod_serves_exactly_the_bytes_staging_tested(aws, monkeypatch):
    """Staging's pass record pins the package (sha256, S3 version, content digest); prod serves its own copy of it."""
    # The foundation template enables versioning; moto ignores that property, so it is switched on here.
    boto3.client("s3").put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    version = train_version(aws, "4444444", monkeypatch)
    deploy(aws, "staging")
    record = Registry.from_config(aws).passed(version, "staging")
    key = f"registry/{aws.project}/models/{version}/model.tar.gz"
    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)
    assert record["package_sha256"] == hashlib.sha256(stored["Body"].read()).hexdigest()
    assert record["package_version_id"] == stored["VersionId"] and len(record["content_digest"]) == 64
    deploy(aws, "prod")
    parameters = _stack_parameters(aws, "prod")
    assert parameters["ModelDataUrl"] == f"s3://{BUCKET}/registry/{aws.project}/releases/prod/{version}/model.tar.gz"
    assert parameters["PackageDigest"] == record["content_digest"]
    copy = boto3.client("s3").get_object(Bucket=BUCKET,
                                         Key=f"registry/{aws.project}/releases/prod/{version}/model.tar.gz")
    assert hashlib.sha256(copy["Body"].read()).hexdigest() == record["package_sha256"]


def test_prod_refuses_a_package_swapped_after_staging_passed(aws, monkeypatch, tmp_path):
    """Bytes written over a passed version's package are refused by prod, naming both digests; prod is untouched."""
    version = train_version(aws, "5555555", monkeypatch)
    deploy(aws, "staging")
    tested = Registry.from_config(aws).passed(version, "staging")["package_sha256"]
    other = train_version(aws, "6666666", monkeypatch)
    swapped = build(aws, aws.models_dir / other, tmp_path / "swap").tarball.read_bytes()
    # A writer with the old, too-wide staging permissions (moto enforces neither IAM nor bucket policies).
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"registry/{aws.project}/models/{version}/model.tar.gz",
                                  Body=swapped)
    with pytest.raises(DeployError, match=f"prod refuses {version}: the registry's package is not the one "
                                          "staging tested") as error:
        deploy(aws, "prod", version)
    assert tested in str(error.value) and hashlib.sha256(swapped).hexdigest() in str(error.value)
    with pytest.raises(ClientError):  # no prod stack was created
        boto3.client("cloudformation").describe_stacks(StackName=f"{aws.project}-prod")


def test_registered_versions_and_pass_records_are_create_once(aws, monkeypatch):
    """Re-registering identical bytes is a no-op; other bytes are refused; the first pass record stays."""
    version = train_version(aws, "7777777", monkeypatch)
    registry = Registry.from_config(aws)
    registry.register(aws.models_dir / version)
    registry.register(aws.models_dir / version)  # identical bytes: fine
    key = f"{aws.project}/models/{version}/metadata.json"
    with pytest.raises(DeployError, match="registered versions are immutable"):
        registry.store.create(key, b'{"version": "forged"}')
    first = registry.record_pass(version, "staging", {"rows": 1})
    assert registry.record_pass(version, "staging", {"rows": 2}) == first == registry.passed(version, "staging")


def test_canary_read_out_fails_a_shifted_version_and_rolls_back(aws, monkeypatch):
    """A new version whose predictions moved (labels flipped in training) fails the canary gate and is undone."""
    v1 = train_version(aws, "8888888", monkeypatch)
    deploy(aws, "staging")
    data = aws.resolve(aws.data.source)
    frame = pd.read_csv(data)
    frame["default"] = 1 - frame["default"]  # the world "changed": what was a default is not
    frame.to_csv(data, index=False)
    v2 = train_version(aws, "9999999", monkeypatch)
    with pytest.raises(DeployError) as error:
        deploy(aws, "staging")
    message = str(error.value)
    assert f"canary read-out: the predictions of {v2} moved from those of {v1}" in message
    assert "over deploy.canary_max_shift 0.2" in message and f"back to {v1}, which serves again" in message
    assert _serving(aws, "staging") == (v1, v1, True)
    registry = Registry.from_config(aws)
    assert registry.pointer("staging")["current"] == v1 and registry.passed(v2, "staging") is None
    assert "canary" in registry.failed_only()[0]["reason"]
    # The capture under the staging prefix holds both versions' smoke traffic, as SageMaker would write it.
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="capture/")["Contents"]]
    assert keys and all(k.startswith("capture/test-project/staging/") and "/AllTraffic/" in k for k in keys)
