"""Refresh the retrain pull request's body (``cml pr create`` leaves an open PR's body as it was).

Run by actions/retrain with python3 (stdlib only). Environment: GITHUB_REPOSITORY, GITHUB_API_URL,
GH_TOKEN, PR_URL (what cml printed), BODY_FILE (the latest drift summary). PATCHes the PR's body.
"""

import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path


def main() -> int:
    """PATCH /repos/{repository}/pulls/{number} with the new body."""
    match = re.search(r"/pull/(\d+)$", os.environ.get("PR_URL", "").strip())
    if not match:
        print(f"::error title=retrain::cannot tell the PR number from {os.environ.get('PR_URL', '')!r}")
        return 1
    number, repository = match.group(1), os.environ["GITHUB_REPOSITORY"]
    body = Path(os.environ["BODY_FILE"]).read_text(encoding="utf-8")[:65_000]
    request = urllib.request.Request(
        f"{os.environ.get('GITHUB_API_URL', 'https://api.github.com')}/repos/{repository}/pulls/{number}",
        data=json.dumps({"body": body}).encode(), method="PATCH",
        headers={"Authorization": f"Bearer {os.environ['GH_TOKEN']}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30):
            pass
    except (urllib.error.URLError, OSError) as error:
        print(f"::error title=retrain::could not refresh the body of PR #{number}: {error}")
        return 1
    print(f"refreshed the body of PR #{number}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
