"""Bootstrap an AWS account for the template (``make bootstrap``): the foundation stack, once.

Input: the config (``project``, ``deploy.region``), admin AWS credentials, and the GitHub
repository allowed to deploy (``--repository owner/name``, else ``$GITHUB_REPOSITORY`` or the
``origin`` remote). Output: the CloudFormation stack ``<project>-foundation``
(``infra/foundation.yml``: the registry bucket, GitHub's OIDC provider unless the account has
one, the deploy and read-only roles, the SageMaker execution role) and the values to set next
(``registry.uri`` and the role ARNs), printed and as step outputs.
"""

from __future__ import annotations

from mlops import github
from mlops.aws import Target, aws_errors, aws_session, endpoint_is_local
from mlops.cloudformation import FOUNDATION, apply_stack, describe_stack, parameters_of, stack_outputs, template_body
from mlops.config import Config, EnvironmentConfig
from mlops.console import say
from mlops.context import Context, Result
from mlops.errors import DeployError


def run(ctx: Context, repository: str | None = None) -> Result:
    """Create or update the foundation stack; say what to set next."""
    config = ctx.config
    result = bootstrap(config, repository)
    out = result["outputs"]
    message = (f"Foundation stack {result['stack']} {result['action']}. Next steps (README 'Deploying'):\n"
               f"  1. in {config.path}: registry.uri: {out.get('RegistryUri')}\n"
               f"  2. repository variables: AWS_ROLE_ARN_STAGING={out.get('StagingDeployRoleArn')}\n"
               f"                           AWS_ROLE_ARN_PROD={out.get('ProdDeployRoleArn')}\n"
               f"                           AWS_ROLE_ARN_READ={out.get('ReadOnlyRoleArn')}\n"
               "  3. environments `staging` and `prod` (add required reviewers to prod)")
    return Result(message=message, outputs=out)


def bootstrap(config: Config, repository: str | None = None) -> dict:
    """Create or update the foundation stack ``<project>-foundation`` (real AWS only)."""
    repository = repository or github.repository(config.root)
    if not repository:
        raise DeployError("cannot tell the GitHub repository (no github.com origin remote); "
                          "pass it: make bootstrap REPOSITORY=owner/name")
    with aws_errors("bootstrapping the foundation stack"):
        return _foundation(config, repository)


def _foundation(config: Config, repository: str) -> dict:
    session, account = aws_session(config, "bootstrap")
    target = Target("bootstrap", EnvironmentConfig(), session, emulated=endpoint_is_local(), account=account)
    cf = target.client("cloudformation")
    name = f"{config.project}-foundation"
    existing = describe_stack(cf, name)
    if existing:  # keep the provider choice made at creation; flipping it would delete a shared provider
        create = parameters_of(existing).get("CreateOidcProvider", "true")
    else:
        providers = target.client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
        found = any(p["Arn"].endswith("/token.actions.githubusercontent.com") for p in providers)
        create = "false" if found else "true"
    say(f"Deploying foundation stack {name} for {repository} to {target.description} (new OIDC provider: {create})")
    action = apply_stack(cf, name, template_body(config, FOUNDATION),
                         {"Project": config.project, "GitHubRepository": repository, "CreateOidcProvider": create},
                         config.deploy.stack_timeout_minutes, ("CAPABILITY_NAMED_IAM",))
    outputs = stack_outputs(describe_stack(cf, name))
    return {"stack": name, "action": action, "repository": repository, "outputs": outputs}
