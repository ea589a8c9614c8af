"""Bootstrap an AWS account and a GitHub repository for the template (``make bootstrap``), once.

Input: the config (``project``, ``deploy.region``), admin AWS credentials, the GitHub repository
allowed to deploy (``--repository owner/name``, else ``$GITHUB_REPOSITORY`` or the ``origin``
remote) and, optionally, a token (``GH_TOKEN``) with Administration and Variables write on it.
Output: the CloudFormation stack ``<project>-foundation`` (``infra/foundation.yml``: the
registry bucket, GitHub's OIDC provider unless the account has one, the deploy and read-only
roles, the SageMaker execution role); with a token, the repository configured from its outputs
(:mod:`mlops.repo_settings`: variables, environments limited to main, prod's reviewers with
prevent self-review, the permission for Actions to open PRs), each step reported; without one,
the exact manual steps. What remains by hand is ``registry.uri`` in ``mlops.yaml``.
"""

from __future__ import annotations

from mlops import github, repo_settings
from mlops.aws import Target, aws_errors, aws_session, endpoint_is_local
from mlops.cloudformation import FOUNDATION, apply_stack, describe_stack, parameters_of, stack_outputs, template_body
from mlops.config import Config, EnvironmentConfig
from mlops.console import say
from mlops.context import Context, Result
from mlops.errors import DeployError


def run(ctx: Context, repository: str | None = None, reviewers: str | None = None,
        allow_self_review: bool = False) -> Result:
    """Create or update the foundation stack, configure the repository (with a token); say what is left."""
    config = ctx.config
    result = bootstrap(config, repository)
    out, repository = result["outputs"], result["repository"]
    lines = [f"Foundation stack {result['stack']} {result['action']}."]
    token = github.token()
    failed = []
    if token:
        steps = repo_settings.apply(repository, token, out, config.deploy.region,
                                    reviewers=[r.strip() for r in reviewers.split(",")] if reviewers else None,
                                    prevent_self_review=not allow_self_review)
        width = max(len(step.name) for step in steps)
        lines.append(f"GitHub repository {repository}:")
        for step in steps:
            lines.append(f"  [{step.status:9}] {step.name.ljust(width)}  {step.detail}"
                         + (f"\n  {' ' * 11} {' ' * width}  -> {step.fix}" if step.fix else ""))
        failed = [step.name for step in steps if step.status == "fail"]
    else:
        lines.append("No GH_TOKEN, so the repository was not configured; do this by hand:")
        lines.append(repo_settings.manual_steps(repository, out, config.deploy.region))
    lines.append(f"Left to you: in {config.path} set registry.uri: {out.get('RegistryUri')} (on a branch, "
                 "then open a pull request), as README 'Use this template' step 3 says.")
    error = None if not failed else (
        f"{len(failed)} GitHub step(s) failed: {', '.join(failed)}; each says the permission it needs "
        "(the foundation stack is in place; run `make bootstrap` again after fixing the token)")
    return Result(message="\n".join(lines), outputs=out, exit_code=1 if failed else 0, error=error)


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
