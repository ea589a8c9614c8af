"""Refresh the retrain pull request's body (``cml pr create`` leaves an open PR's body as it was).

Run by actions/retrain with python3, through the suite's ``mlops.github`` (standard library only).
Environment: GITHUB_REPOSITORY, GITHUB_API_URL, GH_TOKEN, PR_URL (what cml printed), BODY_FILE
(the latest drift summary). PATCHes the PR's body.
"""

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))  # the suite's own package (stdlib-only part)

from mlops.github import ApiError, api  # noqa: E402  # pylint: disable=wrong-import-position


def main() -> int:
    """PATCH /repos/{repository}/pulls/{number} with the new body."""
    match = re.search(r"/pull/(\d+)$", os.environ.get("PR_URL", "").strip())
    if not match:
        print(f"::error title=retrain::cannot tell the PR number from {os.environ.get('PR_URL', '')!r}")
        return 1
    number, repository = match.group(1), os.environ["GITHUB_REPOSITORY"]
    body = Path(os.environ["BODY_FILE"]).read_text(encoding="utf-8")[:65_000]
    try:
        api("PATCH", f"/repos/{repository}/pulls/{number}", os.environ["GH_TOKEN"], {"body": body}, timeout=30)
    except ApiError as error:
        print(f"::error title=retrain::could not refresh the body of PR #{number}: {error}")
        return 1
    print(f"refreshed the body of PR #{number}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
