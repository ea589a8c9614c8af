"""Deploy a model version to an environment (``make deploy ENV=...``).

Input: the config (``deploy`` and ``registry`` sections), a trained model (``models/LATEST``) or a
registered version (``--version``), the templates ``infra/foundation.yml`` and
``infra/serving.yml``, and AWS credentials (an OIDC role in CI, a profile locally), or none for an
``emulator`` environment. Output: the stack ``<project>-<env>`` serving the version, the
registry's "passed" record and environment pointer, ``reports/deploy-<env>.json``, the step
outputs ``version`` and ``endpoint``, and a job-summary table.

Steps: resolve the release (:mod:`mlops.release`: package and register ``models/LATEST``, or
promote what the required environment serves; prod refuses a version that has not passed
staging) -> roll it out (:mod:`mlops.rollout`: stack, check, smoke test, record).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlops import release
from mlops.aws import aws_errors, target_for
from mlops.config import Config
from mlops.context import Context, Result
from mlops.registry import Registry
from mlops.rollout import deploy_result, foundation_outputs, roll_out


def run(ctx: Context, env: str = "local", version: str | None = None) -> Result:
    """Deploy, then report what serves."""
    record = deploy(ctx.config, env, version)
    tested = "endpoint tested" if record["smoke"]["endpoint_tested"] else "local serve tested, not a real endpoint"
    return deploy_result(record, f"Deployed to {env}",
                         f"Deployed {record['version']} to {env} ({record['stack_action']}; {tested}); "
                         f"previous: {record['previous'] or 'none'}")


def deploy(config: Config, environment: str, version: str | None = None) -> dict:
    """Deploy ``version`` (default: see :func:`mlops.release.for_deploy`) to ``environment``; return the record."""
    with target_for(config, environment) as target, tempfile.TemporaryDirectory(prefix="mlops-deploy-") as workdir, \
            aws_errors(f"deploying to {environment}"):
        foundation = foundation_outputs(config, target)
        registry = Registry.for_target(config, target)
        chosen = release.for_deploy(config, target, registry, version, Path(workdir))
        return roll_out(config, target, registry, chosen, foundation=foundation)
