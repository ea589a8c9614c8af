"""Run a GitHub Actions workflow offline with act (host mode) and collect what it did.

Every pinned third-party action is mapped to a stand-in under tests/act/standins/ (see its
README); `cml` on PATH is the recording stand-in in tests/act/bin/. The result carries act's
log, the recorded cml calls, the uploaded artifacts and the job summaries.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
STANDINS = HERE / "act" / "standins"
CML_BIN = HERE / "act" / "bin"
ACT = Path(sys.executable).parent / "act"

# Pinned action -> stand-in folder. Keep in step with the pins in .github/workflows and actions/.
PINS = {
    "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97": "setup-python",
    "actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae": "cache",
    "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f": "upload-artifact",
    "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c": "download-artifact",
    "iterative/setup-cml@f12ea7685438c1fc438d50f77519b3860cf5fa98": "setup-cml",
    "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c": "configure-aws-credentials",
    "actions/create-github-app-token@1b10c78c7865c340bc4f6099eb2f838309f1e8c3": "create-github-app-token",
}


@dataclass
class ActResult:
    """What one act run did."""

    returncode: int
    output: str
    cml_calls: list[dict]
    artifacts: Path
    seconds: float
    summary: str = ""
    jobs: dict[str, str] = field(default_factory=dict)

    def job_succeeded(self, job: str) -> bool:
        """True when act reported the job as succeeded."""
        return self.jobs.get(job) == "succeeded"


@dataclass
class ActWorld:
    """Folders shared by the runs of one test: artifacts, cml recordings, caches."""

    root: Path

    @property
    def artifacts(self) -> Path:
        """Where the artifact stand-ins keep uploads (shared across runs, like a repository's artifacts)."""
        return self.root / "artifacts"

    @property
    def cml(self) -> Path:
        """Where the recording cml writes calls.jsonl and prs.json."""
        return self.root / "cml"

    def cml_calls(self) -> list[dict]:
        """Every recorded cml call so far."""
        path = self.cml / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _job_results(output: str) -> dict[str, str]:
    jobs = {}
    for match in re.finditer(r"^\[[^/\]]+/([^\]]+)\]\s+🏁\s+Job (succeeded|failed)", output, re.MULTILINE):
        jobs[match.group(1).strip()] = match.group(2)
    return jobs


def run_workflow(  # pylint: disable=too-many-arguments,too-many-locals  # mirrors act's own options
    repo: Path,
    workflow: str,
    *,
    event: str,
    payload: dict | None = None,
    world: ActWorld | None = None,
    env: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    inputs: dict[str, str] | None = None,
    job: str | None = None,
    timeout: int = 600,
    repositories: dict[str, Path] | None = None,
) -> ActResult:
    """Run ``workflow`` of ``repo`` for ``event`` with act; never raises on workflow failure.

    ``repositories`` maps more ``owner/repo@ref`` to local folders, e.g. the suite for a consumer
    repository that uses ``acme/mlops/actions/<name>@v1``.
    """
    import time  # pylint: disable=import-outside-toplevel  # only timing here

    world = world or ActWorld(Path(tempfile.mkdtemp(prefix="act-world-")))
    for folder in (world.artifacts, world.cml, world.root / "cache", world.root / "act-cache"):
        folder.mkdir(parents=True, exist_ok=True)
    event_file = world.root / f"event-{event}.json"
    event_file.write_text(json.dumps(payload or {}))
    before = len(world.cml_calls())
    cmd = [
        str(ACT), event,
        "-P", "ubuntu-latest=-self-hosted",
        "-W", workflow,
        "-e", str(event_file),
        "--no-cache-server",
        "--artifact-server-addr", "127.0.0.1",
        "--action-cache-path", str(world.root / "act-cache"),
    ]
    for pin, folder in [*((p, STANDINS / f) for p, f in PINS.items()), *(repositories or {}).items()]:
        cmd += ["--local-repository", f"{pin}={folder}"]
    for flag, values in (("--env", env), ("--secret", secrets), ("--var", variables), ("--input", inputs)):
        for key, value in (values or {}).items():
            cmd += [flag, f"{key}={value}"]
    # Workflows run `make install`; point it at this test run's venv (its install stamp matches),
    # so each job does not rebuild 700 MB of packages. The workflow's own checkout still runs its
    # own code: the Makefile puts the checkout's src/ first on PYTHONPATH.
    cmd += ["--env", f"VENV={Path(sys.executable).parent.parent}"]
    if job:
        cmd += ["-j", job]
    process_env = {
        **os.environ,
        "ACT_DISABLE_VERSION_CHECK": "1",
        "PATH": f"{CML_BIN}{os.pathsep}{os.environ['PATH']}",
        "CML_RECORD_DIR": str(world.cml),
        "STANDIN_DIR": str(STANDINS),
        "STANDIN_ARTIFACTS_DIR": str(world.artifacts),
        "STANDIN_CACHE_DIR": str(world.root / "cache"),
    }
    # The host's own venv must not leak into the workflow's `make install`.
    process_env.pop("VIRTUAL_ENV", None)
    for key in ("MLOPS_CONFIG", "MLOPS_MODELS_DIR", "MLOPS_REPORTS_DIR", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        process_env.pop(key, None)
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=repo, env=process_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    summary = "\n".join(re.findall(r"⚙\s+Summary - (.*)", output))
    return ActResult(
        returncode=proc.returncode,
        output=output,
        cml_calls=world.cml_calls()[before:],
        artifacts=world.artifacts,
        seconds=seconds,
        summary=summary,
        jobs=_job_results(output),
    )


def make_template_repo(source: Path, dest: Path) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) into a fresh git repo on main."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source, capture_output=True, check=True
    ).stdout.decode().split("\0")
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, listed):
        src = source / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
            target.chmod(src.stat().st_mode)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "Template")
    return dest


def add_origin(repo: Path, folder: Path) -> Path:
    """Give ``repo`` a bare ``origin`` at ``folder``/origin.git (workflows push there) holding its main."""
    remote = folder / "origin.git"
    git(folder, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return remote


def open_pr(repo: Path, change, *, number: int = 7, branch: str = "pr", repository: str | None = None) -> dict:
    """Commit ``change(repo)`` on a new branch off the checked-out one; return the pull_request payload.

    ``repository`` (owner/name) fills ``head.repo.full_name``: give the name act sees as
    ``github.repository`` (``env={"GITHUB_REPOSITORY": ...}``) for a same-repository PR.
    """
    base = git(repo, "rev-parse", "HEAD").strip()
    base_ref = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", branch)
    change(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"PR #{number}")
    head = {"sha": git(repo, "rev-parse", "HEAD").strip(), "ref": branch}
    if repository:
        head["repo"] = {"full_name": repository}
    return {"number": number, "pull_request": {
        "number": number, "base": {"sha": base, "ref": base_ref}, "head": head}}


def edit_config(repo: Path, edit) -> None:
    """Load the repo's mlops.yaml, let ``edit(config_dict)`` change it in place, write it back."""
    path = repo / "mlops.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def degrade_model(repo: Path) -> None:
    """A PR change that makes the model clearly worse (a few shallow, slow-learning trees)."""
    edit_config(repo, lambda config: config["model"].update(
        params={"max_iter": 3, "max_depth": 1, "learning_rate": 0.01}))


def workflow_run_payload(conclusion: str, *, head_sha: str, number: int | None, branch: str = "pr",
                         repository: str = "acme/models", run_id: int = 4242) -> dict:
    """The workflow_run event pr-comment.yml gets when the `pr` run of ``branch`` completed with ``conclusion``.

    ``number`` fills ``pull_requests`` as GitHub does for a same-repository PR; None leaves it empty,
    as GitHub does for a fork PR (the workflow then asks the API which open PR has that head).
    """
    pulls = [] if number is None else [{"number": number, "head": {"sha": head_sha, "ref": branch}}]
    return {"workflow_run": {"id": run_id, "event": "pull_request", "conclusion": conclusion, "name": "pr",
                             "head_branch": branch, "head_sha": head_sha, "head_repository": {"full_name": repository},
                             "pull_requests": pulls,
                             "html_url": f"https://github.com/{repository}/actions/runs/{run_id}"}}


def posted_comment(result: ActResult) -> tuple[list[str], str]:
    """(argv, Markdown) of the run's one ``cml comment update``; fails unless there is exactly one."""
    (call,) = [c for c in result.cml_calls if c["argv"][:2] == ["comment", "update"]]
    (text,) = call["files"].values()
    return call["argv"], text


def cml_option(argv: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a recorded cml argv, else None."""
    for index, arg in enumerate(argv):
        if arg == f"--{name}" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; return stdout."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout
