"""GitHub Actions plumbing and the GitHub REST API, in one place.

Input: the environment GitHub Actions sets (``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``,
``GITHUB_ACTIONS``, ``GITHUB_REPOSITORY``, ``GITHUB_API_URL``) and a token for API calls.
Output: step outputs (multi-line values in GitHub's ``name<<delimiter`` form), job-summary
Markdown, ``::error::`` annotations, the repository's ``owner/name``, and JSON from the REST API.
Outside Actions the writers do nothing, so stages call them unconditionally.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.error
import urllib.request
from pathlib import Path

from mlops import git

API_VERSION = "2022-11-28"


def in_actions() -> bool:
    """True inside a GitHub Actions job."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


def set_outputs(outputs: dict[str, object]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT`` (when set); booleans as true/false."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path or not outputs:
        return
    lines = []
    for name, value in outputs.items():
        text = ("true" if value else "false") if isinstance(value, bool) else ("" if value is None else str(value))
        if "\n" in text or "\r" in text:
            delimiter = f"EOF_{secrets.token_hex(8)}"
            lines.append(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")
        else:
            lines.append(f"{name}={text}\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))


def append_summary(markdown: str) -> None:
    """Append Markdown to the job summary (when ``$GITHUB_STEP_SUMMARY`` is set)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path and markdown:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown if markdown.endswith("\n") else markdown + "\n")


def annotate_error(message: str, title: str = "mlops") -> str:
    """The ``::error::`` workflow command for the first line of ``message`` (escaped)."""
    first = message.splitlines()[0] if message else ""
    escaped = first.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::error title={title}::{escaped}"


def repository(root: str | Path = ".") -> str | None:
    """``owner/name``: ``$GITHUB_REPOSITORY``, else parsed from the ``origin`` remote on github.com."""
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"]
    match = re.search(r"github\.com[:/]([^/]+/[^/]+?)(?:\.git)?$", git.remote_url(root))
    return match.group(1) if match else None


def token() -> str | None:
    """A GitHub token from ``GH_TOKEN`` or ``GITHUB_TOKEN``."""
    return os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")


class ApiError(Exception):
    """A GitHub API request failed: ``status`` (0 when unreachable) and GitHub's message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status, self.message = status, message


def api(method: str, path: str, api_token: str, body: dict | None = None, timeout: float = 20):
    """One REST call (``GITHUB_API_URL``, default https://api.github.com); the decoded JSON, or None for 204."""
    request = urllib.request.Request(
        f"{os.environ.get('GITHUB_API_URL', 'https://api.github.com')}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {api_token}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": API_VERSION, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            text = json.loads(text).get("message", text)
        except (ValueError, AttributeError):
            pass
        raise ApiError(error.code, text) from None
    except (urllib.error.URLError, OSError) as error:
        raise ApiError(0, f"cannot reach the GitHub API: {error}") from None
    return json.loads(raw) if raw else None
