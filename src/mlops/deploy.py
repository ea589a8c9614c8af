"""Deploy a model version through CloudFormation (``make deploy``, ``make rollback``, ``make bootstrap``).

Input: the config (``deploy`` and ``registry`` sections), a trained model (``models/LATEST``) or a
registered version, the templates ``infra/foundation.yml`` and ``infra/serving.yml``, and AWS
credentials (an OIDC role in CI, a profile locally), or none for an ``emulator`` environment.
Output: the stack ``<project>-<env>`` serving the version, the registry's "passed" record and
environment pointer, and ``reports/deploy-<env>.json``.

Steps: package -> register -> create or update the stack (a no-op update is success) -> wait ->
check what serves -> smoke test -> record. A version whose smoke test fails is undone (the
previous parameters are applied again, or a new stack is deleted), so a failure leaves the
previous version serving and says what failed. Prod refuses a version that has not passed
staging. ``emulator`` environments (``local``) start a moto_server on 127.0.0.1 and never touch
AWS; staging and prod always mean real AWS and fail without credentials. When
``AWS_ENDPOINT_URL`` points at a local emulator, the smoke test runs the same package in a local
server instead of the (unrunnable) emulated endpoint, and says so.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from mlops.config import SKLEARN_IMAGE_PYTHON, Config, EnvironmentConfig
from mlops.errors import CredentialsError, DeployError
from mlops.io import atomic_write_json
from mlops.package import build, requirements
from mlops.registry import LocalStore, Registry, S3Store
from mlops.serve import running
from mlops.smoke import SmokeFailed, held_out_rows, http_invoker, sagemaker_invoker, smoke_test
from mlops.lineage import resolve_model_dir

log = logging.getLogger(__name__)

FOUNDATION = "foundation.yml"
SERVING = "serving.yml"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
NO_UPDATES = "No updates are to be performed"
# Terminal states that need a human: CloudFormation cannot continue on its own.
STUCK = {
    "UPDATE_ROLLBACK_FAILED": "run `aws cloudformation continue-update-rollback --stack-name {stack}`, "
                              "fix the resource it names, then deploy again",
    "ROLLBACK_FAILED": "delete the stack in the CloudFormation console (nothing serves from it), then deploy again",
    "DELETE_FAILED": "delete the stack in the CloudFormation console, then deploy again",
    "CREATE_FAILED": "delete the stack in the CloudFormation console, then deploy again",
    "UPDATE_FAILED": "check the stack events in the CloudFormation console, then deploy again",
}
_sleep = time.sleep  # replaced in tests


def _say(message: str) -> None:
    """A line for the person or the CI log (stdout; logged at debug level to avoid saying it twice)."""
    print(message, flush=True)
    log.debug(message)


def template_path(config: Config, name: str) -> Path:
    """``infra/<name>`` beside the config, else the one shipped with this repository."""
    for folder in (Path(config.root) / "infra", Path(__file__).resolve().parents[2] / "infra"):
        if (folder / name).is_file():
            return folder / name
    raise DeployError(f"CloudFormation template infra/{name} not found next to {config.path}; "
                      "restore it from the template repository")


# --- where to deploy ---------------------------------------------------------------------------


@dataclass
class Target:
    """An AWS account (or emulator) to deploy into, with a boto3 session for it."""

    environment: str
    settings: EnvironmentConfig
    session: Any  # boto3.Session
    endpoint_url: str | None = None
    emulator: bool = False  # our own moto_server (an `emulator: true` environment)
    emulated: bool = False  # AWS_ENDPOINT_URL points at an emulator on this machine
    account: str = "?"

    def client(self, service: str):
        """A boto3 client for ``service`` in the target's region."""
        from botocore.config import Config as BotoConfig  # pylint: disable=import-outside-toplevel  # boto only when deploying

        return self.session.client(service, endpoint_url=self.endpoint_url,
                                   config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}))

    @property
    def description(self) -> str:
        """Where this deploy goes, said plainly."""
        if self.emulator:
            return f"LOCAL AWS EMULATOR (moto_server at {self.endpoint_url}; nothing is deployed to AWS)"
        if self.emulated:
            return f"an AWS emulator at {os.environ.get('AWS_ENDPOINT_URL')} (AWS_ENDPOINT_URL), account {self.account}"
        return f"AWS account {self.account}, region {self.session.region_name}"


def environment_settings(config: Config, environment: str) -> EnvironmentConfig:
    """The ``deploy.environments.<environment>`` entry, or a clear error listing the known ones."""
    try:
        return config.deploy.environments[environment]
    except KeyError:
        known = ", ".join(config.deploy.environments)
        raise DeployError(
            f"unknown environment {environment!r}; deploy.environments in {config.path} defines: {known}. "
            "Use one of those (make deploy ENV=...) or add it there"
        ) from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def emulator(timeout: float = 30.0) -> Iterator[str]:
    """Start ``moto_server`` on 127.0.0.1 at a free port; yield its URL; stop it afterwards."""
    executable = Path(sys.executable).with_name("moto_server")
    command = str(executable) if executable.is_file() else shutil.which("moto_server")
    if not command:
        raise DeployError("moto_server not found: run `make install` (moto[server] is in requirements-dev.txt)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(port)],  # pylint: disable=consider-using-with  # stopped in finally
                                   stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # nosec: 127.0.0.1 only
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        output.seek(0)
                        raise DeployError(f"moto_server did not start on {url}: "
                                          f"{output.read().decode(errors='replace')[-500:]}") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _endpoint_is_local() -> bool:
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    return bool(url) and urlparse(url).hostname in LOCAL_HOSTS


def aws_session(config: Config, environment: str):
    """A boto3 session with working credentials, or CredentialsError; never an emulator fallback."""
    import boto3  # pylint: disable=import-outside-toplevel  # boto only when deploying
    advice = (
        f"{environment} deploys to real AWS and needs credentials: in GitHub Actions, "
        "aws-actions/configure-aws-credentials with role-to-assume (OIDC, see README 'Deploying'); locally, "
        "AWS_PROFILE=<profile> (after `aws sso login`). To try the flow without AWS, use `make deploy ENV=local`"
    )
    try:
        session = boto3.Session(region_name=config.deploy.region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise CredentialsError(f"cannot read AWS credentials ({exc}). {advice}") from None
    if credentials is None:
        raise CredentialsError(f"no AWS credentials found. {advice}")
    try:
        identity = session.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise CredentialsError(f"AWS rejected the credentials ({exc}). {advice}") from None
    return session, identity["Account"]


@contextmanager
def target_for(config: Config, environment: str) -> Iterator[Target]:
    """The deploy target of ``environment``: an emulator started here, or real AWS (credentials checked)."""
    settings = environment_settings(config, environment)
    if settings.emulator:
        import boto3  # pylint: disable=import-outside-toplevel  # boto only when deploying

        with emulator() as url:
            _say(f"EMULATOR: {environment} runs against a local AWS emulator (moto_server at {url}). "
                 "Nothing is deployed to AWS; the emulator's state is discarded when this command ends.")
            session = boto3.Session(aws_access_key_id="emulator", aws_secret_access_key="emulator",
                                    region_name=config.deploy.region)
            yield Target(environment, settings, session, url, emulator=True, account="123456789012")
        return
    session, account = aws_session(config, environment)
    target = Target(environment, settings, session, emulated=_endpoint_is_local(), account=account)
    if target.emulated:
        _say(f"NOTE: AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']} is an emulator on this machine, not AWS.")
    yield target


def registry_for(config: Config, target: Target) -> Registry:
    """The registry a target deploys from: S3 for AWS; a local folder for emulators (never real S3)."""
    uri = config.registry.uri
    if target.emulator:
        folder = config.resolve(".registry" if uri.startswith("s3://") else uri)
        return Registry(LocalStore(Path(folder)), config.project)
    if not uri.startswith("s3://"):
        raise DeployError(
            f"registry.uri in {config.path} is the local folder {uri!r}, but {target.environment} runs on AWS and "
            "SageMaker reads the model from S3. Set registry.uri to the RegistryUri output of the foundation "
            "stack (`make bootstrap` prints it), e.g. s3://<project>-artifacts-<account>-<region>/registry"
        )
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return Registry(S3Store(bucket, prefix, client=target.client("s3")), config.project)


# --- CloudFormation ------------------------------------------------------------------------------


def describe_stack(cf, name: str) -> dict | None:
    """The stack's description, or None when it does not exist."""
    try:
        return cf.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise DeployError(f"cannot describe stack {name}: {exc}") from None


def stack_outputs(stack: dict | None) -> dict:
    """A stack's outputs as a dict."""
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}


def _failure_reasons(cf, name: str, limit: int = 5) -> str:
    try:
        events = cf.describe_stack_events(StackName=name)["StackEvents"]
    except Exception:  # pylint: disable=broad-exception-caught  # reasons are a courtesy; the failure is already known
        return "(stack events unavailable)"
    reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', e['ResourceStatus'])}"
               for e in events if e["ResourceStatus"].endswith("FAILED")][:limit]
    return "; ".join(reasons) or "(no failed resource events)"


def wait_for(cf, name: str, timeout_minutes: int) -> str:
    """Poll until the stack leaves every *_IN_PROGRESS state; return the final status."""
    deadline = time.monotonic() + timeout_minutes * 60
    delay = 2.0
    while True:
        stack = describe_stack(cf, name)
        if stack is None:
            return "DELETE_COMPLETE"
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise DeployError(
                f"stack {name} is still {status} after {timeout_minutes} minutes; CloudFormation carries on. "
                "Watch it in the console; raise deploy.stack_timeout_minutes if endpoints take longer"
            )
        _sleep(delay)
        delay = min(delay * 1.5, 30.0)


def delete_stack(cf, name: str, timeout_minutes: int) -> None:
    """Delete a stack and wait; a failed delete is an error with the fix."""
    cf.delete_stack(StackName=name)
    status = wait_for(cf, name, timeout_minutes)
    if status not in ("DELETE_COMPLETE",):
        raise DeployError(f"deleting stack {name} ended in {status}: {_failure_reasons(cf, name)}. "
                          + STUCK["DELETE_FAILED"])


def apply_stack(cf, name: str, template: str, parameters: dict, timeout_minutes: int,
                capabilities: tuple[str, ...] = ()) -> str:
    """Create or update a stack and wait: 'created', 'updated' or 'unchanged'; DeployError otherwise."""
    params = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()]
    stack = describe_stack(cf, name)
    status = stack["StackStatus"] if stack else None
    if status and status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {name} is {status}: another deploy or rollback is running. Wait for it to "
                          "finish (the workflows never run two deploys of one environment at once), then retry")
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED"):
        _say(f"Stack {name} is {status} from an earlier failed create (it serves nothing); deleting it first")
        delete_stack(cf, name, timeout_minutes)
        stack = status = None
    if status in STUCK:
        raise DeployError(f"stack {name} is {status}, which CloudFormation cannot leave on its own; "
                          + STUCK[status].format(stack=name))
    kwargs = {"StackName": name, "TemplateBody": template, "Parameters": params, "Capabilities": list(capabilities),
              "Tags": [{"Key": "managed-by", "Value": "mlops-template"}]}
    try:
        if stack is None:
            cf.create_stack(**kwargs, OnFailure="ROLLBACK")
            action = "created"
        else:
            cf.update_stack(**kwargs)
            action = "updated"
    except ClientError as exc:
        if NO_UPDATES in str(exc):
            _say(f"Stack {name} already matches: no updates to perform")
            return "unchanged"
        raise DeployError(f"CloudFormation refused the {'create' if stack is None else 'update'} of {name}: "
                          f"{exc}. Nothing was changed") from None
    final = wait_for(cf, name, timeout_minutes)
    if final in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        return action
    reasons = _failure_reasons(cf, name)
    if final == "UPDATE_ROLLBACK_COMPLETE":
        raise DeployError(f"updating stack {name} failed and CloudFormation rolled it back, so the previous "
                          f"version is still serving. Failed: {reasons}")
    if final == "ROLLBACK_COMPLETE":
        delete_stack(cf, name, timeout_minutes)
        raise DeployError(f"creating stack {name} failed ({reasons}); CloudFormation rolled it back and the empty "
                          "stack was deleted. Nothing was serving before, nothing serves now")
    fix = STUCK.get(final, "check the stack events in the CloudFormation console").format(stack=name)
    raise DeployError(f"stack {name} ended in {final}: {reasons}. {fix}")


# --- the deploy ----------------------------------------------------------------------------------


def _foundation(config: Config, target: Target) -> dict:
    cf = target.client("cloudformation")
    name = f"{config.project}-foundation"
    if target.emulator:
        template = template_path(config, FOUNDATION).read_text(encoding="utf-8")
        apply_stack(cf, name, template, {"Project": config.project, "GitHubRepository": "local/emulator"},
                    config.deploy.stack_timeout_minutes, ("CAPABILITY_NAMED_IAM",))
    outputs = stack_outputs(describe_stack(cf, name))
    if "SageMakerExecutionRoleArn" not in outputs:
        raise DeployError(f"foundation stack {name} not found (or incomplete) in {target.description}; "
                          "run `make bootstrap` once for this account (README 'Deploying')")
    return outputs


def _model_data_url(config: Config, target: Target, registry: Registry, version: str, tarball: Path,
                    foundation: dict) -> str:
    if not target.emulator:
        return registry.package_uri(version)
    key = f"registry/{config.project}/models/{version}/model.tar.gz"
    target.client("s3").upload_file(str(tarball), foundation["ArtifactBucket"], key)
    return f"s3://{foundation['ArtifactBucket']}/{key}"


def _resolve_version(config: Config, registry: Registry, environment: str, settings: EnvironmentConfig,
                     version: str | None, workdir: Path) -> str:
    """The version to deploy: the one named, the one serving in ``requires``, or models/LATEST packaged."""
    if version is None and settings.requires:
        current = (registry.pointer(settings.requires) or {}).get("current")
        if not current:
            raise DeployError(f"{environment} promotes what {settings.requires} serves, but nothing has been "
                              f"deployed to {settings.requires} yet: run `make deploy ENV={settings.requires}` first")
        _say(f"Promoting {current}, which {settings.requires} serves, to {environment}")
        return current
    local = config.models_dir / version if version else None
    if local is not None and (registry.has_package(version) or settings.requires or not local.is_dir()):
        registry.metadata(version)  # not registered: a clear error; registered without a package: fetch says so
        return version
    model_dir = resolve_model_dir(config, str(local) if local else None)
    package = build(config, model_dir, workdir)
    if registry.has_package(package.version):
        _say(f"{package.version} is already registered with its package")
    else:
        registry.register(model_dir, extra_files=(package.tarball, package.card))
        _say(f"Registered {package.version} at {registry.store.uri(registry.project + '/models/' + package.version)}")
    return package.version


def _check_serving(target: Target, outputs: dict, version: str) -> str:
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


def _smoke(config: Config, target: Target, outputs: dict, tarball: Path, metadata: dict) -> dict:
    endpoint = _check_serving(target, outputs, metadata["version"])
    rows = held_out_rows(config, metadata, config.deploy.smoke_rows)
    limit = config.deploy.smoke_max_latency_ms
    if target.emulator or target.emulated:
        _say(f"Smoke test: the emulator's endpoint {endpoint} cannot run a SageMaker container, so the test calls "
             "a local server running the same model.tar.gz (make serve's routes). No real endpoint was tested.")
        with running(tarball) as server:
            evidence = smoke_test(http_invoker(server.url), f"local serve at {server.url} (stand-in for {endpoint})",
                                  tarball, rows, limit)
        return {**evidence, "endpoint_tested": False}
    _say(f"Smoke test: invoking SageMaker endpoint {endpoint} with {len(rows.records)} held-out rows")
    evidence = smoke_test(sagemaker_invoker(target.client("sagemaker-runtime"), endpoint),
                          f"SageMaker endpoint {endpoint}", tarball, rows, limit)
    return {**evidence, "endpoint_tested": True}


def _serving_parameters(config: Config, target: Target, version: str, model_data_url: str, foundation: dict) -> dict:
    settings = target.settings
    return {
        "Project": config.project,
        "Environment": target.environment,
        "ModelVersion": version,
        "ModelDataUrl": model_data_url,
        "ImageUri": config.deploy.serving_image,
        "ExecutionRoleArn": foundation["SageMakerExecutionRoleArn"],
        "InstanceType": settings.instance_type,
        "InstanceCount": settings.instance_count,
        "LatencyAlarmMicroseconds": int(config.deploy.alarm_latency_ms * 1000),
    }


def _undo(cf, stack: str, action: str, before: dict | None, timeout: int, template: str) -> str:
    """Put back what served before a failed smoke test; say what was done."""
    if action == "unchanged":
        return "The version that was already serving failed its smoke test; nothing was changed by this deploy."
    if action == "created":
        delete_stack(cf, stack, timeout)
        return f"Deleted the new stack {stack}; nothing was serving before."
    previous = {p["ParameterKey"]: p["ParameterValue"] for p in before["Parameters"]}
    apply_stack(cf, stack, template, previous, timeout)
    return f"Rolled {stack} back to {previous.get('ModelVersion')}, which serves again."


def image_python_conflicts(libraries: dict[str, str], python: str = SKLEARN_IMAGE_PYTHON) -> list[str]:
    """Libraries (name -> version, as a model's metadata records them) whose Requires-Python excludes ``python``.

    Read from the installed distributions' metadata, for the libraries installed at the recorded version.
    """
    from importlib import metadata as importlib_metadata  # pylint: disable=import-outside-toplevel  # deploy only

    from packaging.specifiers import SpecifierSet  # pylint: disable=import-outside-toplevel  # same

    conflicts = []
    for name, version in libraries.items():
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            continue
        requires = dist.metadata.get("Requires-Python")
        if dist.version == version and requires and python not in SpecifierSet(requires):
            conflicts.append(f"{name} {version} (Requires-Python {requires})")
    return conflicts


def _check_serving_image(config: Config, target: Target, version: str, metadata: dict) -> None:
    """On real AWS with AWS's prebuilt image, refuse a model whose libraries cannot install on its Python."""
    if target.emulator or target.emulated or config.deploy.image_uri:
        return  # emulators serve locally; a custom image is checked by the staging smoke test
    conflicts = image_python_conflicts(requirements(metadata))
    if conflicts:
        raise DeployError(
            f"{version} cannot be served by the default image {config.deploy.serving_image}: it runs Python "
            f"{SKLEARN_IMAGE_PYTHON}, which cannot install {', '.join(conflicts)} that the model was trained with, "
            "so the endpoint would never become healthy. Set deploy.image_uri in mlops.yaml to a Python 3.11+ "
            "scikit-learn serving image, or pin versions the image can install (README: Serving image). "
            "Nothing was deployed."
        )


def _roll_out(config: Config, target: Target, registry: Registry, version: str, workdir: Path, *,
              foundation: dict, rollback_of: str | None = None) -> dict:
    environment = target.environment
    metadata = registry.metadata(version)
    _check_serving_image(config, target, version, metadata)
    tarball = registry.fetch_package(version, workdir / "deploy" / "model.tar.gz")
    cf = target.client("cloudformation")
    stack = f"{config.project}-{environment}"
    before = describe_stack(cf, stack)
    serving_before = stack_outputs(before).get("ModelVersion")
    _say(f"Deploying {version} to {environment}: stack {stack} in {target.description}; "
         f"serving before: {serving_before or 'nothing'}")
    template = template_path(config, SERVING).read_text(encoding="utf-8")
    parameters = _serving_parameters(config, target, version, _model_data_url(config, target, registry, version,
                                                                             tarball, foundation), foundation)
    timeout = config.deploy.stack_timeout_minutes
    started = time.perf_counter()
    action = apply_stack(cf, stack, template, parameters, timeout)
    _say(f"Stack {stack} {action} in {time.perf_counter() - started:.1f}s")
    outputs = stack_outputs(describe_stack(cf, stack))
    try:
        evidence = _smoke(config, target, outputs, tarball, metadata)
    except (SmokeFailed, ClientError, BotoCoreError) as failure:
        undone = _undo(cf, stack, action, before, timeout, template)
        raise DeployError(f"{failure}\n{undone}") from None
    if rollback_of is None:
        registry.record_pass(version, environment, evidence)
    pointer = registry.set_pointer(environment, version, rollback_of=rollback_of)
    record = {
        "environment": environment, "version": version, "previous": pointer.get("previous"),
        "serving_before": serving_before, "stack": stack, "stack_action": action,
        "endpoint": outputs.get("EndpointName"), "target": target.description, "emulator": target.emulator,
        "emulated": target.emulated, "rollback_of": rollback_of, "smoke": evidence,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(config.reports_dir / f"deploy-{environment}.json", record)
    return record


@contextmanager
def _aws_errors(what: str) -> Iterator[None]:
    """An AWS call that fails unexpectedly becomes a DeployError saying what was being done."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"{what} failed: {exc}. What served before still serves unless a line above says "
                          "otherwise; fix the cause (permissions, region, bucket) and run the command again") from None


def deploy(config: Config, environment: str, version: str | None = None) -> dict:
    """Deploy ``version`` (default: see :func:`_resolve_version`) to ``environment``; return the record."""
    settings = environment_settings(config, environment)
    with target_for(config, environment) as target, tempfile.TemporaryDirectory(prefix="mlops-deploy-") as workdir, \
            _aws_errors(f"deploying to {environment}"):
        foundation = _foundation(config, target)
        registry = registry_for(config, target)
        version = _resolve_version(config, registry, environment, settings, version, Path(workdir))
        if settings.requires and not registry.passed(version, settings.requires):
            record = registry.store.uri(f"{registry.project}/models/{version}/passed/{settings.requires}.json")
            raise DeployError(
                f"{environment} refuses {version}: it has not passed {settings.requires} (no record at {record}). "
                f"Deploy it to {settings.requires} first: make deploy ENV={settings.requires} VERSION={version}"
            )
        return _roll_out(config, target, registry, version, Path(workdir), foundation=foundation)


def rollback(config: Config, environment: str) -> dict:
    """Redeploy the version ``environment`` served before the current one (skipping rolled-back ones)."""
    environment_settings(config, environment)
    with target_for(config, environment) as target, tempfile.TemporaryDirectory(prefix="mlops-rollback-") as workdir, \
            _aws_errors(f"rolling back {environment}"):
        foundation = _foundation(config, target)
        registry = registry_for(config, target)
        current = (registry.pointer(environment) or {}).get("current")
        version = registry.rollback_target(environment)
        _say(f"Rolling {environment} back from {current} to {version}")
        return _roll_out(config, target, registry, version, Path(workdir), foundation=foundation,
                         rollback_of=current)


def check(config: Config, environment: str) -> dict:
    """Post-deploy check: the stack is complete and serves the version the registry pointer names."""
    settings = environment_settings(config, environment)
    if settings.emulator:
        raise DeployError(f"{environment} is an emulator environment; its state ends with each `make deploy`, "
                          "so there is nothing to check afterwards")
    with target_for(config, environment) as target, _aws_errors(f"checking {environment}"):
        registry = registry_for(config, target)
        current = (registry.pointer(environment) or {}).get("current")
        if not current:
            raise DeployError(f"the registry has no {environment} pointer: nothing has been deployed there")
        stack = describe_stack(target.client("cloudformation"), f"{config.project}-{environment}")
        if stack is None or stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise DeployError(f"stack {config.project}-{environment} is "
                              f"{stack['StackStatus'] if stack else 'missing'}, expected CREATE/UPDATE_COMPLETE")
        endpoint = _check_serving(target, stack_outputs(stack), current)
        return {"environment": environment, "version": current, "endpoint": endpoint, "stack": stack["StackName"],
                "status": stack["StackStatus"], "target": target.description}


def github_repository(config: Config) -> str:
    """owner/name: $GITHUB_REPOSITORY, else parsed from ``git remote get-url origin``."""
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"]
    try:
        url = subprocess.run(["git", "remote", "get-url", "origin"], cwd=config.root, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        url = ""
    match = re.search(r"github\.com[:/]([^/]+/[^/]+?)(\.git)?$", url)
    if not match:
        raise DeployError("cannot tell the GitHub repository (no github.com origin remote); "
                          "pass it: make bootstrap REPOSITORY=owner/name")
    return match.group(1)


def bootstrap(config: Config, repository: str | None = None) -> dict:
    """Create or update the foundation stack ``<project>-foundation`` (real AWS only)."""
    repository = repository or github_repository(config)
    with _aws_errors("bootstrapping the foundation stack"):
        return _bootstrap(config, repository)


def _bootstrap(config: Config, repository: str) -> dict:
    session, account = aws_session(config, "bootstrap")
    target = Target("bootstrap", EnvironmentConfig(), session, emulated=_endpoint_is_local(), account=account)
    cf = target.client("cloudformation")
    name = f"{config.project}-foundation"
    existing = describe_stack(cf, name)
    if existing:  # keep the provider choice made at creation; flipping it would delete a shared provider
        previous = {p["ParameterKey"]: p["ParameterValue"] for p in existing["Parameters"]}
        create = previous.get("CreateOidcProvider", "true")
    else:
        providers = target.client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
        github = any(p["Arn"].endswith("/token.actions.githubusercontent.com") for p in providers)
        create = "false" if github else "true"
    _say(f"Deploying foundation stack {name} for {repository} to {target.description} (new OIDC provider: {create})")
    action = apply_stack(cf, name, template_path(config, FOUNDATION).read_text(encoding="utf-8"),
                         {"Project": config.project, "GitHubRepository": repository, "CreateOidcProvider": create},
                         config.deploy.stack_timeout_minutes, ("CAPABILITY_NAMED_IAM",))
    outputs = stack_outputs(describe_stack(cf, name))
    return {"stack": name, "action": action, "repository": repository, "outputs": outputs}


def publish(record: dict, title: str) -> None:
    """Inside GitHub Actions: step outputs (version, endpoint) and a job-summary table."""
    output, summary = os.environ.get("GITHUB_OUTPUT"), os.environ.get("GITHUB_STEP_SUMMARY")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"version={record.get('version', '')}\nendpoint={record.get('endpoint', '')}\n")
    if summary:
        rows = [(k, record[k]) for k in ("environment", "version", "previous", "stack", "stack_action", "endpoint",
                                         "target") if record.get(k) is not None]
        smoke = record.get("smoke")
        if smoke:
            rows.append(("smoke test", f"{smoke['checks']} against {smoke['target']} "
                                       f"({smoke['rows']} rows, {smoke['latency_ms']} ms)"))
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(f"\n### {title}\n\n| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows))
