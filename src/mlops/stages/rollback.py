"""Roll an environment back (``make rollback ENV=...``): redeploy the version it served before.

Input: the config and the environment; the registry's pointer for it (``current``, ``history``,
``rolled_back``). Output: the environment serving the latest earlier version not rolled back
already (:meth:`mlops.registry.Registry.rollback_target`), smoke-tested like a deploy, the pointer
moved with ``rolled_back`` recorded, ``reports/deploy-<env>.json``, and the step outputs
``version`` and ``endpoint``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlops import release
from mlops.aws import aws_errors, environment_settings, target_for
from mlops.config import Config
from mlops.console import say
from mlops.context import Context, Result
from mlops.registry import Registry
from mlops.rollout import deploy_result, foundation_outputs, roll_out


def run(ctx: Context, env: str = "prod") -> Result:
    """Roll back, then report what serves."""
    record = rollback(ctx.config, env)
    return deploy_result(record, f"Rolled back {env}",
                         f"Rolled {env} back to {record['version']} (from {record['rollback_of']})")


def rollback(config: Config, environment: str) -> dict:
    """Redeploy the version ``environment`` served before the current one (skipping rolled-back ones)."""
    environment_settings(config, environment)
    with target_for(config, environment) as target, tempfile.TemporaryDirectory(prefix="mlops-rollback-") as workdir, \
            aws_errors(f"rolling back {environment}"):
        foundation = foundation_outputs(config, target)
        registry = Registry.for_target(config, target)
        current = (registry.pointer(environment) or {}).get("current")
        version = registry.rollback_target(environment)
        say(f"Rolling {environment} back from {current} to {version}")
        chosen = release.of_version(config, target, registry, version, Path(workdir),
                                    tested=registry.passed(version, environment) or None, tested_in=environment)
        return roll_out(config, target, registry, chosen, foundation=foundation, rollback_of=current)
