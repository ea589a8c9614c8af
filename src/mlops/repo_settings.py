"""What the workflows expect of the GitHub repository, read (``make doctor``) and applied (``make bootstrap``).

Input: ``owner/name``, a token (``GH_TOKEN``), the foundation stack's outputs and the region.
Output, read: one :class:`Setting` per expectation with its state and the fix. Output, applied:
one :class:`Setting` per step (``done``, ``unchanged``, ``failed`` with the token permission it
needs, ``skipped``), each step idempotent: the repository variables the workflows read, the
environments ``staging``, ``prod`` and ``retrain`` limited to ``main`` (``prod`` with required
reviewers and "prevent self-review"), and the workflow permission that lets Actions open pull
requests (the retrain PR). Nothing that failed is reported as done.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops import github

# Repository variables the workflows read, and the foundation-stack output each should equal.
VARIABLES = {"AWS_ROLE_ARN_STAGING": "StagingDeployRoleArn", "AWS_ROLE_ARN_PROD": "ProdDeployRoleArn",
             "AWS_ROLE_ARN_READ": "ReadOnlyRoleArn", "AWS_REGION": None}
# GitHub environments (the names of deploy.environments, and the retrain job's), each limited to main.
ENVIRONMENTS = ("staging", "prod", "retrain")
REVIEWED = "prod"
BRANCH = "main"
ADMIN = "the token needs Administration: read and write on the repository (fine-grained) or the repo scope"
VARIABLES_RW = "the token needs Variables: read and write on the repository (fine-grained) or the repo scope"


@dataclass(frozen=True)
class Setting:
    """One expectation or step: its name, status (ok/done/unchanged/warn/fail/skip) and what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _try(name: str, need: str, call) -> Setting:
    try:
        return call()
    except github.ApiError as error:
        return Setting(name, "fail", f"GitHub refused: {error}", need)


def _variable(repository: str, token: str, name: str, value: str) -> Setting:
    try:
        current = github.api("GET", f"/repos/{repository}/actions/variables/{name}", token).get("value")
    except github.ApiError as error:
        if error.status != 404:
            raise
        github.api("POST", f"/repos/{repository}/actions/variables", token, {"name": name, "value": value})
        return Setting(f"var {name}", "done", f"set to {value}")
    if current == value:
        return Setting(f"var {name}", "unchanged", value)
    github.api("PATCH", f"/repos/{repository}/actions/variables/{name}", token, {"name": name, "value": value})
    return Setting(f"var {name}", "done", f"{current} -> {value}")


def _user_ids(token: str, reviewers: list[str] | None) -> list[int]:
    if not reviewers:
        return [github.api("GET", "/user", token)["id"]]
    return [github.api("GET", f"/users/{login}", token)["id"] for login in reviewers]


def _environment(repository: str, token: str, name: str, reviewers: list[int], prevent_self_review: bool) -> Setting:
    path = f"/repos/{repository}/environments/{name}"
    what = f"deployments from {BRANCH} only" + (
        f", {len(reviewers)} required reviewer(s), prevent self-review {'on' if prevent_self_review else 'off'}"
        if name == REVIEWED else "")
    before = _read_environment(repository, token, name)
    if before is not None and _matches(before, name, reviewers, prevent_self_review) \
            and BRANCH in _branch_policies(repository, token, name):
        return Setting(f"environment {name}", "unchanged", what)
    body: dict = {"deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}}
    if name == REVIEWED:
        body.update(reviewers=[{"type": "User", "id": i} for i in reviewers], prevent_self_review=prevent_self_review)
    github.api("PUT", path, token, body)
    if BRANCH not in _branch_policies(repository, token, name):
        github.api("POST", f"{path}/deployment-branch-policies", token, {"name": BRANCH, "type": "branch"})
    return Setting(f"environment {name}", "done", what)


def _branch_policies(repository: str, token: str, name: str) -> set[str]:
    listed = github.api("GET", f"/repos/{repository}/environments/{name}/deployment-branch-policies", token)
    return {p.get("name") for p in (listed or {}).get("branch_policies", [])}


def _matches(environment: dict, name: str, reviewers: list[int], prevent_self_review: bool) -> bool:
    if not (environment.get("deployment_branch_policy") or {}).get("custom_branch_policies"):
        return False
    if name != REVIEWED:
        return True
    rules = [r for r in environment.get("protection_rules", []) if r.get("type") == "required_reviewers"]
    ids = {r.get("reviewer", {}).get("id") for rule in rules for r in rule.get("reviewers", [])}
    return bool(rules) and ids == set(reviewers) and bool(rules[0].get("prevent_self_review")) == prevent_self_review


def _read_environment(repository: str, token: str, name: str) -> dict | None:
    try:
        return github.api("GET", f"/repos/{repository}/environments/{name}", token)
    except github.ApiError as error:
        if error.status == 404:
            return None
        raise


def _workflow_permission(repository: str, token: str) -> Setting:
    path = f"/repos/{repository}/actions/permissions/workflow"
    current = github.api("GET", path, token)
    if current.get("can_approve_pull_request_reviews") and current.get("default_workflow_permissions") == "read":
        return Setting("workflow permissions", "unchanged", "read by default; Actions may open pull requests")
    github.api("PUT", path, token, {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": True})
    return Setting("workflow permissions", "done", "read by default; Actions may open pull requests (retrain PR)")


def apply(repository: str, token: str, outputs: dict, region: str, *, reviewers: list[str] | None = None,
          prevent_self_review: bool = True) -> list[Setting]:
    """Configure the repository; one result per step, in order."""
    steps = []
    for name, output in VARIABLES.items():
        value = outputs.get(output) if output else region
        if not value:
            steps.append(Setting(f"var {name}", "skip", f"the foundation stack has no {output} output"))
            continue
        steps.append(_try(f"var {name}", VARIABLES_RW, lambda n=name, v=value: _variable(repository, token, n, v)))
    ids: list[int] = []
    try:
        ids = _user_ids(token, reviewers)
    except github.ApiError as error:
        steps.append(Setting("reviewers", "fail", f"cannot look up the reviewers: {error}",
                             "pass REVIEWERS=login1,login2 with existing GitHub logins"))
    for name in ENVIRONMENTS:
        if name == REVIEWED and not ids:
            steps.append(Setting(f"environment {name}", "skip", "no reviewer to require", "see the reviewers step"))
            continue
        steps.append(_try(f"environment {name}", ADMIN,
                          lambda n=name: _environment(repository, token, n, ids, prevent_self_review)))
    steps.append(_try("workflow permissions", ADMIN, lambda: _workflow_permission(repository, token)))
    return steps


def manual_steps(repository: str, outputs: dict, region: str) -> str:
    """The same settings as a list of things to do by hand (no token)."""
    lines = [f"Repository {repository} (Settings):"]
    for name, output in VARIABLES.items():
        value = outputs.get(output) if output else region
        lines.append(f"  - Secrets and variables > Actions > Variables: {name} = {value}")
    for name in ENVIRONMENTS:
        extra = " with required reviewers and 'Prevent self-review'" if name == REVIEWED else ""
        lines.append(f"  - Environments > New environment '{name}'{extra}; Deployment branches: selected, '{BRANCH}'")
    lines.append("  - Actions > General > Workflow permissions: "
                 "'Allow GitHub Actions to create and approve pull requests'")
    lines.append("Or export GH_TOKEN (Administration and Variables: write) and run `make bootstrap` again.")
    return "\n".join(lines)


def inspect(repository: str, token: str, outputs: dict) -> list[Setting]:
    """The repository as it is, against what the workflows expect (``make doctor``)."""
    try:
        variables = {v["name"]: v["value"] for v in github.api(
            "GET", f"/repos/{repository}/actions/variables", token).get("variables", [])}
        environments = {e["name"]: e for e in github.api(
            "GET", f"/repos/{repository}/environments", token).get("environments", [])}
    except (github.ApiError, ValueError) as error:
        return [Setting("github", "fail", f"cannot read {repository}'s settings: {error}",
                        "use a token with repository administration: read")]
    found = []
    for name, output in VARIABLES.items():
        value = variables.get(name)
        if value is None:
            found.append(Setting(f"var {name}", "fail" if output else "warn", "not set",
                                 f"gh variable set {name} --body '<{output or 'region'}>'"
                                 + (f" (the {output} output of the foundation stack)" if output else "")
                                 + ", or run `make bootstrap` with GH_TOKEN"))
        elif output and outputs.get(output) and outputs[output] != value:
            found.append(Setting(f"var {name}", "fail", f"{value} but the foundation stack says {outputs[output]}",
                                 f"gh variable set {name} --body '{outputs[output]}'"))
        else:
            found.append(Setting(f"var {name}", "ok", value))
    for name in ENVIRONMENTS:
        found.append(_inspect_environment(name, environments.get(name)))
    return found


def _inspect_environment(name: str, environment: dict | None) -> Setting:
    fix = "run `make bootstrap` with GH_TOKEN, or Settings > Environments"
    if environment is None:
        return Setting(f"environment {name}", "fail" if name != "retrain" else "warn", "missing", fix)
    rules = environment.get("protection_rules", [])
    policy = environment.get("deployment_branch_policy") or {}
    problems = []
    if not policy or not (policy.get("custom_branch_policies") or policy.get("protected_branches")):
        problems.append(f"any branch may deploy (limit it to {BRANCH})")
    if name == REVIEWED:
        reviewed = [r for r in rules if r.get("type") == "required_reviewers"]
        if not reviewed:
            problems.append("no required reviewers: prod deploys without approval")
        elif not any(r.get("prevent_self_review") for r in reviewed):
            problems.append("prevent self-review is off: the person who merged may approve their own deploy")
    if problems:
        return Setting(f"environment {name}", "warn", "; ".join(problems), fix)
    return Setting(f"environment {name}", "ok", "deployments from selected branches"
                   + (", reviewers required, no self-review" if name == REVIEWED else ""))
