"""Decide what pr-comment.yml posts, and where: the PR the `pr` run was for, never the artifact's word alone.

Run by .github/workflows/pr-comment.yml (stdlib only: it runs from the default branch, with no
install). Reads from the environment: RUN_PULL_REQUESTS (``toJSON`` of the workflow_run event's
``pull_requests``: filled for same-repository PRs, empty for forks), HEAD_SHA, HEAD_REPOSITORY,
HEAD_BRANCH, RUN_URL, CONCLUSION, REPORT_DIR (the downloaded artifact, untrusted), GITHUB_REPOSITORY,
GITHUB_API_URL, GH_TOKEN. Writes ``number`` and ``comment`` (a file it wrote) to $GITHUB_OUTPUT.

- The PR is found from the event: the ``pull_requests`` entry whose head SHA is the run's head
  SHA, else (fork PRs) the open PR whose head is HEAD_REPOSITORY:HEAD_BRANCH at HEAD_SHA, through
  the REST API. The artifact's ``pr-number.txt`` must name the same PR, or nothing is posted.
- The comment is the artifact's ``compare.md`` cut to 65,000 characters, with @-mentions made
  inert (a fork's artifact cannot ping people); without ``compare.md`` it is a short note saying
  which step the run stopped at (from ``pr-steps.json``) with a link to the run.
"""

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

LIMIT = 65_000
# The steps of pr.yml, in order, that can stop a run before its comparison.
STEPS = {"lint": "make lint", "test": "make test", "validate": "make validate", "train": "make train",
         "compare": "make compare"}


def fail(message: str) -> int:
    """An ::error:: annotation and a non-zero exit."""
    print(f"::error title=pr-comment::{message}")
    return 1


def api(path: str) -> list:
    """GET one REST path (JSON)."""
    request = urllib.request.Request(
        f"{os.environ.get('GITHUB_API_URL', 'https://api.github.com')}{path}",
        headers={"Authorization": f"Bearer {os.environ['GH_TOKEN']}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": "2022-11-28"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def pr_of_run() -> tuple[int | None, str]:
    """The number of the PR whose head is the run's head commit, or (None, why)."""
    head_sha = os.environ.get("HEAD_SHA", "")
    if not re.fullmatch(r"[0-9a-f]{40}", head_sha):
        return None, f"the event's head_sha {head_sha[:50]!r} is not a commit SHA"
    listed = json.loads(os.environ.get("RUN_PULL_REQUESTS") or "[]")
    found = {pr["number"] for pr in listed if pr.get("head", {}).get("sha") == head_sha}
    if not found:  # a fork PR: the event lists none, so ask which open PR has this head
        repository, owner = os.environ["GITHUB_REPOSITORY"], os.environ.get("HEAD_REPOSITORY", "").split("/")[0]
        query = urllib.parse.urlencode({"state": "open", "head": f"{owner}:{os.environ.get('HEAD_BRANCH', '')}",
                                        "per_page": 100})
        try:
            pulls = api(f"/repos/{repository}/pulls?{query}")
        except (urllib.error.URLError, OSError, ValueError) as error:
            return None, f"cannot list the open pull requests: {error}"
        found = {pr["number"] for pr in pulls if pr.get("head", {}).get("sha") == head_sha
                 and pr.get("head", {}).get("repo", {}).get("full_name") == os.environ.get("HEAD_REPOSITORY")}
    if len(found) != 1:
        return None, f"{len(found)} open pull requests have the run's head {head_sha[:12]}; expected exactly one"
    return found.pop(), ""


def stopped_at(report_dir: Path) -> str:
    """The first pr.yml step that failed, from pr-steps.json (untrusted: only known step ids count)."""
    try:
        steps = json.loads((report_dir / "pr-steps.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "a step before `make compare`"
    for step, label in STEPS.items():
        if isinstance(steps, dict) and isinstance(steps.get(step), dict) and steps[step].get("outcome") == "failure":
            return f"`{label}`"
    return "a step before `make compare`"


def comment_text(report_dir: Path) -> str:
    """What to post: the comparison (capped, mentions made inert), or the note that there is none."""
    report = report_dir / "compare.md"
    if report.is_file() and report.stat().st_size:
        text = report.read_text(encoding="utf-8", errors="replace")
        if len(text) > LIMIT:
            note = "\n\n> Report truncated to fit a GitHub comment; the full report is in the workflow artifact.\n"
            text = text[:LIMIT - len(note)].rsplit("\n", 1)[0] + note
        return re.sub(r"(?<![\w`])@(?=[A-Za-z0-9])", "@\u200b", text)
    return (f"### ⚠️ No comparison for this push\n\nThe `pr` run ({os.environ.get('CONCLUSION', 'failure')}) "
            f"stopped at {stopped_at(report_dir)}, before the model comparison, so there is no verdict to show. "
            f"The earlier verdict no longer applies. [See the run]({os.environ.get('RUN_URL', '')}).\n")


def main() -> int:
    """Resolve the PR, check the artifact's claim, write the comment file and the outputs."""
    report_dir = Path(os.environ["REPORT_DIR"])
    number, why = pr_of_run()
    if number is None:
        return fail(f"not posting: {why}")
    claimed_path = report_dir / "pr-number.txt"
    claimed = claimed_path.read_text(encoding="utf-8")[:32].strip() if claimed_path.is_file() else ""
    if claimed != str(number):
        return fail(f"not posting: the artifact says PR {claimed[:20]!r} but this run was for PR #{number}")
    out = Path(os.environ.get("RUNNER_TEMP", "/tmp")) / "pr-comment.md"
    out.write_text(comment_text(report_dir), encoding="utf-8")
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as handle:
        handle.write(f"number={number}\ncomment={out}\n")
    print(f"posting {out.stat().st_size} bytes to PR #{number}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
