"""Roll a release out to an environment: the serving stack, what serves, the smoke test, the record.

Input: the config, a :class:`~mlops.aws.Target`, the registry, a :class:`~mlops.release.Release`
and the foundation stack's outputs. Steps: create or update the stack ``<project>-<env>``
(``infra/serving.yml``; a no-op update is success) -> wait -> check that the endpoint, its model
and the SSM parameter name this version -> smoke test -> record that the version passed and
move the environment's pointer. A failed smoke test is undone (the previous parameters are
applied again, or a new stack is deleted), so a failure leaves the previous version serving
and says what failed. Output: the deploy record, also written to ``reports/deploy-<env>.json``.
When the target is an emulator, the smoke test runs the same package in a local server instead
of the (unrunnable) emulated endpoint, and says so.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError
from threadpoolctl import threadpool_limits

from mlops.aws import Target
from mlops.canary import read_out, summary_rows
from mlops.capture import Writer
from mlops.cloudformation import (FOUNDATION, SERVING, apply_stack, delete_stack, describe_stack, parameters_of,
                                  stack_outputs, template_body)
from mlops.config import Config
from mlops.console import say
from mlops.context import Result
from mlops.errors import DeployError
from mlops.images import serving_image
from mlops.io import atomic_write_json
from mlops.registry import Registry
from mlops.release import Release
from mlops.server import running
from mlops.smoke import SmokeFailed, held_out_rows, http_invoker, sagemaker_invoker, smoke_test
from mlops.traffic import destination


def foundation_outputs(config: Config, target: Target) -> dict:
    """The foundation stack's outputs (an emulator gets its foundation stack created here first)."""
    cf = target.client("cloudformation")
    name = f"{config.project}-foundation"
    if target.emulator:
        apply_stack(cf, name, template_body(config, FOUNDATION),
                    {"Project": config.project, "GitHubRepository": "local/emulator"},
                    config.deploy.stack_timeout_minutes, ("CAPABILITY_NAMED_IAM",))
    outputs = stack_outputs(describe_stack(cf, name))
    if "SageMakerExecutionRoleArn" not in outputs:
        raise DeployError(f"foundation stack {name} not found (or incomplete) in {target.description}; "
                          "run `make bootstrap` once for this account (README 'Deploying')")
    return outputs


def _model_data_url(config: Config, target: Target, registry: Registry, release: Release, foundation: dict) -> str:
    """The environment's own copy of the verified package (``releases/<env>/``), which its endpoint serves."""
    if not target.emulator:
        return registry.publish_release(target.environment, release.version, release.tarball)
    key = f"registry/{config.project}/releases/{target.environment}/{release.version}/model.tar.gz"
    target.client("s3").upload_file(str(release.tarball), foundation["ArtifactBucket"], key)
    return f"s3://{foundation['ArtifactBucket']}/{key}"


def check_serving(target: Target, outputs: dict, version: str) -> str:
    """What AWS says serves: endpoint InService on this version's model, SSM parameter = version."""
    sagemaker = target.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    problems = []
    if endpoint["EndpointStatus"] != "InService":
        problems.append(f"endpoint {outputs['EndpointName']} is {endpoint['EndpointStatus']}, not InService")
    config_name = endpoint["EndpointConfigName"]
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    models = [v["ModelName"] for v in variants]
    if models != [outputs["ModelName"]]:
        problems.append(f"endpoint config {config_name} serves {models}, not {outputs['ModelName']}")
    parameter = target.client("ssm").get_parameter(Name=outputs["VersionParameterName"])["Parameter"]["Value"]
    if parameter != version or outputs.get("ModelVersion") != version:
        problems.append(f"SSM {outputs['VersionParameterName']}={parameter} and stack ModelVersion="
                        f"{outputs.get('ModelVersion')}, expected {version}")
    if problems:
        raise SmokeFailed("the stack does not serve what was deployed: " + "; ".join(problems))
    return outputs["EndpointName"]


def _capture_stand_in(target: Target, endpoint: str) -> Writer | None:
    """What SageMaker's data capture would write, written by the local stand-in (moto writes nothing).

    The destination and share are read back from the endpoint config the stack created, as
    SageMaker reads them.
    """
    sagemaker = target.client("sagemaker")
    name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    capture = sagemaker.describe_endpoint_config(EndpointConfigName=name).get("DataCaptureConfig") or {}
    if not capture.get("EnableCapture", True) or not capture.get("DestinationS3Uri"):
        return None
    return Writer(capture["DestinationS3Uri"], endpoint, sampling=capture.get("InitialSamplingPercentage", 100) / 100,
                  s3_client=target.client("s3"))


def _smoke(config: Config, target: Target, outputs: dict, release: Release) -> dict:
    endpoint = check_serving(target, outputs, release.version)
    tarball = release.tarball
    rows = held_out_rows(config, release.metadata, config.deploy.smoke_rows)
    limit = config.deploy.smoke_max_latency_ms
    if target.emulator or target.emulated:
        say(f"Smoke test: the emulator's endpoint {endpoint} cannot run a SageMaker container, so the test calls "
             "a local server running the same model.tar.gz (make serve's routes), which also captures the traffic "
             "as the endpoint's DataCaptureConfig says. No real endpoint was tested.")
        capture = _capture_stand_in(target, endpoint)
        try:  # math-library threads pinned: OpenMP threads in a threaded server fight a 2-core runner
            with threadpool_limits(1), running(tarball, expected_digest=release.content_digest,
                                               capture=capture) as server:
                evidence = smoke_test(http_invoker(server.url),
                                      f"local serve at {server.url} (stand-in for {endpoint})", tarball, rows, limit)
        except RuntimeError as refused:  # the package's PackageMismatch: it is not the recorded package
            raise SmokeFailed(str(refused)) from None
        return {**evidence, "endpoint_tested": False}
    say(f"Smoke test: invoking SageMaker endpoint {endpoint} with {len(rows.records)} held-out rows")
    evidence = smoke_test(sagemaker_invoker(target.client("sagemaker-runtime"), endpoint),
                          f"SageMaker endpoint {endpoint}", tarball, rows, limit)
    return {**evidence, "endpoint_tested": True}


def _serving_parameters(config: Config, target: Target, registry: Registry, release: Release,
                        foundation: dict) -> dict:
    settings = target.settings
    return {
        "Project": config.project,
        "Environment": target.environment,
        "ModelVersion": release.version,
        "ModelDataUrl": _model_data_url(config, target, registry, release, foundation),
        "PackageDigest": release.content_digest,
        "VendoredWheels": "true" if release.vendored else "false",
        "StartupTimeoutSeconds": config.deploy.startup_timeout_seconds,
        "ImageUri": serving_image(config),
        "ExecutionRoleArn": foundation["SageMakerExecutionRoleArn"],
        "InstanceType": settings.instance_type,
        "InstanceCount": settings.instance_count,
        "LatencyAlarmMicroseconds": int(config.deploy.alarm_latency_ms * 1000),
        "CaptureDestination": destination(foundation["ArtifactBucket"], config.project, target.environment),
        "CapturePercent": settings.capture_percent if config.capture.enabled else 0,
    }


def _undo(cf, stack: str, action: str, before: dict | None, timeout: int, template: str) -> str:
    """Put back what served before a failed smoke test; say what was done."""
    if action == "unchanged":
        return "The version that was already serving failed its smoke test; nothing was changed by this deploy."
    if action == "created":
        delete_stack(cf, stack, timeout)
        return f"Deleted the new stack {stack}; nothing was serving before."
    previous = parameters_of(before)
    apply_stack(cf, stack, template, previous, timeout)
    return f"Rolled {stack} back to {previous.get('ModelVersion')}, which serves again."


def roll_out(config: Config, target: Target, registry: Registry, release: Release, *,
             foundation: dict, rollback_of: str | None = None) -> dict:
    """Apply the serving stack for ``release``, check what serves, smoke-test, record; undo on a failed test."""
    environment, version = target.environment, release.version
    cf = target.client("cloudformation")
    stack = f"{config.project}-{environment}"
    before = describe_stack(cf, stack)
    serving_before = stack_outputs(before).get("ModelVersion")
    say(f"Deploying {version} to {environment}: stack {stack} in {target.description}; "
         f"serving before: {serving_before or 'nothing'}")
    template = template_body(config, SERVING)
    parameters = _serving_parameters(config, target, registry, release, foundation)
    timeout = config.deploy.stack_timeout_minutes
    started, started_at = time.perf_counter(), datetime.now(timezone.utc)
    action = apply_stack(cf, stack, template, parameters, timeout)
    say(f"Stack {stack} {action} in {time.perf_counter() - started:.1f}s")
    outputs = stack_outputs(describe_stack(cf, stack))
    try:
        evidence = _smoke(config, target, outputs, release)
        canary = read_out(config, target, outputs, release, serving_before, started_at, gate=rollback_of is None)
    except (SmokeFailed, ClientError, BotoCoreError) as failure:
        undone = _undo(cf, stack, action, before, timeout, template)
        registry.record_failure(version, environment, str(failure))
        raise DeployError(f"{failure}\n{undone}\nMarked {version} as failed in {environment} in the registry "
                          "(make doctor lists such versions).") from None
    if rollback_of is None:
        registry.record_pass(version, environment, {**evidence, **release.integrity})
    pointer = registry.set_pointer(environment, version, rollback_of=rollback_of)
    record = {
        "environment": environment, "version": version, "previous": pointer.get("previous"),
        "serving_before": serving_before, "stack": stack, "stack_action": action,
        "endpoint": outputs.get("EndpointName"), "target": target.description, "emulator": target.emulator,
        "emulated": target.emulated, "rollback_of": rollback_of, "smoke": evidence, "canary": canary,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(config.reports_dir / f"deploy-{environment}.json", record)
    return record


def deploy_result(record: dict, title: str, message: str) -> Result:
    """A deploy-like stage's result: outputs ``version`` and ``endpoint``, and a job-summary table."""
    rows = [(k, record[k]) for k in ("environment", "version", "previous", "stack", "stack_action", "endpoint",
                                     "target") if record.get(k) is not None]
    smoke = record.get("smoke")
    if smoke:
        rows.append(("smoke test", f"{smoke['checks']} against {smoke['target']} "
                                   f"({smoke['rows']} rows, {smoke['latency_ms']} ms)"))
    summary = f"\n### {title}\n\n| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows) \
        + summary_rows(record.get("canary") or {})
    return Result(message=message, outputs={"version": record.get("version", ""),
                                            "endpoint": record.get("endpoint", "")}, summary=summary)
