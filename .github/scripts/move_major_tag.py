"""Move the major tag (v1) to the commit of a new release tag (v1.2.3) via the GitHub REST API.

Run by .github/workflows/release.yml. Reads GITHUB_REF_NAME (the pushed tag), GITHUB_SHA,
GITHUB_REPOSITORY, GITHUB_API_URL and GH_TOKEN from the environment. Users pin the suite as
`uses: <owner>/<repo>/actions/<name>@v1`, so v1 must follow the newest v1.x.y.
"""

import json
import os
import re
import sys
import urllib.error
import urllib.request


def api(method: str, path: str, body: dict) -> int:
    """Send one JSON request; return the HTTP status (errors included)."""
    request = urllib.request.Request(
        f"{os.environ.get('GITHUB_API_URL', 'https://api.github.com')}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {os.environ['GH_TOKEN']}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> int:
    """Create or force-move refs/tags/vX to GITHUB_SHA."""
    tag = os.environ.get("GITHUB_REF_NAME", "")
    match = re.fullmatch(r"v(\d+)\.\d+\.\d+", tag)
    if not match:
        print(f"::error::{tag!r} is not a release tag vX.Y.Z; push tags like v1.2.3")
        return 1
    major, sha, repo = f"v{match.group(1)}", os.environ["GITHUB_SHA"], os.environ["GITHUB_REPOSITORY"]
    status = api("PATCH", f"/repos/{repo}/git/refs/tags/{major}", {"sha": sha, "force": True})
    if status in (404, 422):  # the major tag does not exist yet: create it
        status = api("POST", f"/repos/{repo}/git/refs", {"ref": f"refs/tags/{major}", "sha": sha})
    if status not in (200, 201):
        print(f"::error::moving {major} to {sha} failed with HTTP {status}; check the token's contents: write")
        return 1
    print(f"{major} -> {sha} ({tag})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
