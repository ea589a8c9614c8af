"""Check what an environment serves (``make deploy-check ENV=...``), read-only.

Input: the config, the environment, AWS credentials (the read-only role in CI), and optionally
the version it must serve (``--expect``). Output: the step outputs ``version`` (what the registry
pointer names and the stack serves) and ``endpoint``, and a job-summary table; an error when the
stack is not complete or serves another version.
"""

from __future__ import annotations

from mlops.aws import aws_errors, environment_settings, target_for
from mlops.cloudformation import describe_stack, stack_outputs
from mlops.config import Config
from mlops.context import Context, Result
from mlops.errors import DeployError
from mlops.registry import Registry
from mlops.rollout import check_serving, deploy_result


def run(ctx: Context, env: str = "prod", expect: str | None = None) -> Result:
    """Check, then report what serves; with ``expect``, fail unless that version serves."""
    record = check_environment(ctx.config, env)
    if expect and record["version"] != expect:
        raise DeployError(f"{env} serves {record['version']}, not {expect} (the version this workflow deployed): "
                          "another deploy or a rollback ran in between, or the deploy did not take effect")
    return deploy_result(record, f"Post-deploy check of {env}",
                         f"{env} serves {record['version']} on {record['endpoint']} (stack {record['status']})")


def check_environment(config: Config, environment: str) -> dict:
    """The stack is complete and serves the version the registry pointer names."""
    settings = environment_settings(config, environment)
    if settings.emulator:
        raise DeployError(f"{environment} is an emulator environment; its state ends with each `make deploy`, "
                          "so there is nothing to check afterwards")
    with target_for(config, environment) as target, aws_errors(f"checking {environment}"):
        registry = Registry.for_target(config, target)
        current = (registry.pointer(environment) or {}).get("current")
        if not current:
            raise DeployError(f"the registry has no {environment} pointer: nothing has been deployed there")
        stack = describe_stack(target.client("cloudformation"), f"{config.project}-{environment}")
        if stack is None or stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise DeployError(f"stack {config.project}-{environment} is "
                              f"{stack['StackStatus'] if stack else 'missing'}, expected CREATE/UPDATE_COMPLETE")
        endpoint = check_serving(target, stack_outputs(stack), current)
        return {"environment": environment, "version": current, "endpoint": endpoint, "stack": stack["StackName"],
                "status": stack["StackStatus"], "target": target.description}
