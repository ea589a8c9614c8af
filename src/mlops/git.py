"""Every git call the package makes: the commit being built, files at a commit, worktrees, remotes.

Input: a folder inside a git repository and git arguments. Output: git's stdout (stripped), or
'' / None where the caller asked not to fail; an unusable git raises
:class:`~mlops.errors.MlopsError` naming the command.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlops.errors import MlopsError


def run(root: str | Path, *args: str, check: bool = True, timeout: int = 120) -> str:
    """``git <args>`` in ``root``; its stdout, or '' when it failed and ``check`` is False."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False,
                             timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MlopsError(f"git {' '.join(args)} failed in {root}: {exc}") from None
    if out.returncode != 0:
        if check:
            raise MlopsError(f"git {' '.join(args)} failed in {root}: {out.stderr.strip() or out.returncode}")
        return ""
    return out.stdout.strip()


def completed(root: str | Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``git <args>`` in ``root`` as a CompletedProcess (the caller reads returncode and stderr)."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=timeout, check=False)


def head_sha(root: str | Path) -> str:
    """The commit being built: ``$MLOPS_GIT_SHA``, else ``git rev-parse HEAD``, else ``$GITHUB_SHA`` or 'unknown'."""
    if os.environ.get("MLOPS_GIT_SHA"):
        return os.environ["MLOPS_GIT_SHA"]
    try:
        sha = run(root, "rev-parse", "HEAD", check=False, timeout=10)
    except MlopsError:
        sha = ""
    return sha or os.environ.get("GITHUB_SHA", "unknown")


def resolve_commit(root: str | Path, ref: str) -> str | None:
    """The SHA ``ref`` names, or None."""
    return run(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False) or None


def toplevel(root: str | Path) -> Path | None:
    """The repository's top folder, or None outside a git repository."""
    top = run(root, "rev-parse", "--show-toplevel", check=False)
    return Path(top) if top else None


def show(root: str | Path, sha: str, path: Path) -> str | None:
    """A file's text at commit ``sha`` (``path`` a local path inside the repository), or None."""
    top = toplevel(root)
    if top is None:
        return None
    try:
        rel = path.resolve().relative_to(top.resolve())
    except ValueError:
        return None
    out = completed(top, "show", f"{sha}:{rel.as_posix()}", timeout=60)
    return out.stdout if out.returncode == 0 else None


def remote_url(root: str | Path, remote: str = "origin") -> str:
    """The URL of ``remote``, or '' when there is none."""
    try:
        return run(root, "remote", "get-url", remote, check=False, timeout=10)
    except MlopsError:
        return ""
