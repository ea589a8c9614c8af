"""A small CloudFormation engine: create or update a stack and wait, with the failure said plainly.

Input: a boto3 CloudFormation client, a stack name, a template body and parameters. Output:
``created``, ``updated`` or ``unchanged`` ("No updates are to be performed" is success), or a
:class:`~mlops.errors.DeployError` naming the failed resources and the fix. A stack left
``ROLLBACK_COMPLETE`` by a failed first create is deleted before a new create; a stack in
progress or stuck is not touched. Also: template lookup, outputs, deletes, waiting.
"""

from __future__ import annotations

import time
from pathlib import Path

from botocore.exceptions import ClientError

from mlops.config import Config
from mlops.console import say
from mlops.errors import DeployError

FOUNDATION = "foundation.yml"
SERVING = "serving.yml"
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


def template_path(config: Config, name: str) -> Path:
    """``infra/<name>`` beside the config, else the one shipped with this repository."""
    for folder in (Path(config.root) / "infra", Path(__file__).resolve().parents[2] / "infra"):
        if (folder / name).is_file():
            return folder / name
    raise DeployError(f"CloudFormation template infra/{name} not found next to {config.path}; "
                      "restore it from the template repository")


def template_body(config: Config, name: str) -> str:
    """The text of ``infra/<name>``."""
    return template_path(config, name).read_text(encoding="utf-8")


def parameters_of(stack: dict | None) -> dict:
    """A stack's parameters as a dict."""
    return {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters", [])}


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
        say(f"Stack {name} is {status} from an earlier failed create (it serves nothing); deleting it first")
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
            say(f"Stack {name} already matches: no updates to perform")
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
