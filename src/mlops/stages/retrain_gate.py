"""May the retrain PR be updated now? (``make retrain-gate``; the first step of ``actions/retrain``).

Input: the config (``retrain.branch``, ``retrain.base_branch``, ``retrain.cooldown_hours``), the
git remote holding the retrain branch, and the GitHub API (``GITHUB_REPOSITORY``, ``GH_TOKEN``):
which open PR carries the branch. Output: the step outputs ``proceed`` (true/false), ``branch``,
``base``, ``lease`` (the remote branch's SHA, empty when it does not exist, for
``git push --force-with-lease=<branch>:<lease>``), ``manifest`` and ``open-pr`` (its number, or
empty); a skip is explained in the job summary. The cooldown applies only while an open PR
carries the branch: a branch whose PR was never opened (PR creation refused) or was closed is
retried on the next run. ``--force`` ignores the cooldown.
"""

from __future__ import annotations

import os
import time
import urllib.parse

from mlops import git, github
from mlops.config import Config
from mlops.context import Context, Result
from mlops.errors import MlopsError


def run(ctx: Context, remote: str = "origin", force: bool = False) -> Result:
    """Decide, and hand the decision to the next steps as outputs."""
    state = gate(ctx.config, remote=remote, force=force)
    outputs = {key: state[key] for key in ("branch", "base", "lease", "manifest")}
    outputs["open-pr"] = state.get("open_pr") or ""
    outputs["proceed"] = state["proceed"]
    return Result(message=("Proceed: " if state["proceed"] else "Skip: ") + state["reason"], outputs=outputs,
                  summary="" if state["proceed"] else f"\n**Retrain skipped**: {state['reason']}\n")


def open_pull_request(config: Config, branch: str) -> int | None:
    """The number of the open PR whose head is ``branch`` (0: none), or None when the API cannot be asked."""
    repository, token = github.repository(config.root), github.token()
    if not repository or not token:
        return None
    owner = repository.split("/")[0]
    query = urllib.parse.urlencode({"state": "open", "head": f"{owner}:{branch}", "per_page": 10})
    try:
        pulls = github.api("GET", f"/repos/{repository}/pulls?{query}", token)
    except github.ApiError as error:
        raise MlopsError(f"cannot ask GitHub which pull request carries {branch}: {error}. The token needs "
                         "pull-requests: read") from None
    return pulls[0]["number"] if pulls else 0


def gate(config: Config, *, remote: str = "origin", force: bool = False, now: float | None = None) -> dict:
    """May the retrain PR be (re)pushed now? Reads the remote retrain branch's last commit time.

    Returns ``proceed``, ``reason``, ``branch``, ``base``, ``manifest`` and ``lease``.
    """
    settings = config.retrain
    branch = settings.branch
    listing = git.completed(config.root, "ls-remote", "--heads", remote, f"refs/heads/{branch}")
    if listing.returncode != 0:
        raise MlopsError(f"cannot list branches of the git remote '{remote}': {listing.stderr.strip()}")
    state = {"branch": branch, "base": settings.base_branch, "lease": "", "proceed": True,
             "manifest": os.path.relpath(config.resolve(settings.manifest), config.root)}
    if not listing.stdout.strip():
        return {**state, "reason": f"no {branch} branch yet: a retrain PR will be opened"}
    sha = listing.stdout.split()[0]
    fetched = git.completed(config.root, "fetch", "--no-tags", "--quiet", remote,
                            f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    if fetched.returncode != 0:
        raise MlopsError(f"cannot fetch {branch} from '{remote}': {fetched.stderr.strip()}")
    committed = int(git.run(config.root, "log", "-1", "--format=%ct", sha, check=False) or 0)
    age_hours = ((now if now is not None else time.time()) - committed) / 3600
    state["lease"] = sha
    open_pr = open_pull_request(config, branch)
    state["open_pr"] = open_pr
    if open_pr == 0:
        return {**state, "reason": (f"{branch} exists but no open pull request carries it (opening one failed, or "
                                    "it was closed): the retrain PR will be opened again")}
    if age_hours < settings.cooldown_hours and not force:
        return {**state, "proceed": False,
                "reason": (f"{branch} was updated {age_hours:.1f} h ago, within retrain.cooldown_hours "
                           f"({settings.cooldown_hours:g} h): not updating the retrain PR "
                           "(dispatch with force to override)")}
    return {**state, "reason": f"{branch} was last updated {age_hours:.1f} h ago: the retrain PR will be updated"}
