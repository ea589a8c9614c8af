"""SageMaker jobs for ``compute: sagemaker``: build a request, start the job, follow it, stop it, fetch its output.

Input: the config (``compute``, ``deploy.region``, ``registry.uri``) and AWS credentials from the
usual places (OIDC role in CI, ``AWS_PROFILE`` locally; ``AWS_ENDPOINT_URL`` for an emulator).
Output: checked sessions, names, tags, the job's code archive (this package with the config and
contract, :func:`code_archive`; inside the container :mod:`mlops.job_entry` runs it), and started
or stopped jobs; :mod:`mlops.job_watch` follows them. Every expected failure (no credentials, data
not on S3, an unknown instance type, a refused request) is a :class:`~mlops.errors.JobError` saying
what AWS answered and the likely fix.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import tarfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from mlops import s3
from mlops.config import Config
from mlops.console import say
from mlops.errors import JobError
from mlops.job_entry import IN_JOB
from mlops.lineage import SUITE_HOME

SHIM = "mlops_job.py"
SHIM_TEXT = '''"""SageMaker entry of the mlops suite: install its pins if the image lacks them, run mlops.job_entry."""
import importlib.util
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("polars") is None:  # processing jobs: the image has scikit-learn, not the suite's pins
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r",
                    os.path.join(HERE, "requirements.txt")], check=True)
sys.path.insert(0, HERE)
from mlops.job_entry import main  # noqa: E402  (after the install)

raise SystemExit(main(sys.argv[1:]))
'''
KINDS = {"training": "TrainingJob", "processing": "ProcessingJob"}
LOG_GROUPS = {"training": "/aws/sagemaker/TrainingJobs", "processing": "/aws/sagemaker/ProcessingJobs"}
TERMINAL = {"Completed", "Failed", "Stopped"}
PROCESSING_ROOT = "/opt/ml/processing"


def wanted(config: Config) -> bool:
    """True when the stages should run as SageMaker jobs (never inside a job itself)."""
    return config.compute.engine == "sagemaker" and not os.environ.get(IN_JOB)


def poll_seconds() -> float:
    """Seconds between two looks at a running job (``$MLOPS_JOB_POLL_SECONDS``, default 15)."""
    return float(os.environ.get("MLOPS_JOB_POLL_SECONDS", "15"))


@dataclass
class Aws:
    """A boto3 session with checked credentials, and the account it belongs to."""

    session: Any
    account: str
    clients: dict = field(default_factory=dict)

    def client(self, service: str):
        """One client per service (``AWS_ENDPOINT_URL`` is honoured by boto3 itself)."""
        if service not in self.clients:
            self.clients[service] = self.session.client(service)
        return self.clients[service]


def connect(config: Config) -> Aws:
    """A session for ``deploy.region`` whose credentials AWS accepts, or JobError saying how to get some."""
    import boto3  # pylint: disable=import-outside-toplevel  # boto only for compute: sagemaker
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel  # same

    advice = ("compute: sagemaker in mlops.yaml starts SageMaker jobs and needs AWS credentials: in GitHub Actions "
              "the repository variable AWS_ROLE_ARN_READ (the foundation stack's role, README 'Deploying'); locally "
              "AWS_PROFILE=<profile>. Or set compute: local to run on this machine")
    try:
        session = boto3.Session(region_name=config.deploy.region)
        if session.get_credentials() is None:
            raise JobError(f"no AWS credentials found. {advice}")
        account = session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise JobError(f"AWS rejected the credentials ({exc}). {advice}") from None
    return Aws(session, account)


def s3_source(uri: str, key: str) -> str:
    """``uri`` when it is an ``s3://`` prefix, else JobError: a job reads its data from S3."""
    if not s3.is_s3(uri) or uri.endswith(".json"):
        raise JobError(f"{key} is {uri!r}, which is not an s3:// prefix: compute: sagemaker jobs read their data "
                       "from S3. Upload the files (aws s3 sync data/ s3://<bucket>/<prefix>/) and point "
                       f"{key} there, or set compute: local")
    return uri


def check_instance_type(aws: Aws, kind: str, instance_type: str) -> None:
    """Refuse an instance type the SageMaker API does not know for this kind of job, with the nearest ones."""
    shape = {"training": "TrainingInstanceType", "processing": "ProcessingInstanceType"}[kind]
    known = aws.client("sagemaker").meta.service_model.shape_for(shape).enum
    if known and instance_type not in known:
        near = difflib.get_close_matches(instance_type, known, n=3, cutoff=0.6)
        raise JobError(f"compute.instance_type {instance_type!r} is not a SageMaker {kind} instance type"
                       + (f"; did you mean {', '.join(near)}?" if near else "")
                       + " (see https://aws.amazon.com/sagemaker/pricing/ for the list)")


def output_prefix(config: Config) -> str:
    """Where jobs write: ``compute.output_prefix``, else ``jobs/<project>/`` in the registry's bucket."""
    if config.compute.output_prefix:
        return config.compute.output_prefix.rstrip("/")
    if s3.is_s3(config.registry.uri):
        bucket, _ = s3.parse(config.registry.uri)
        return f"s3://{bucket}/jobs/{config.project}"
    raise JobError("compute: sagemaker needs an S3 place for the jobs' code and output: set compute.output_prefix, "
                   "or registry.uri to the foundation stack's bucket (make bootstrap prints it)")


def execution_role(config: Config, account: str) -> str:
    """``compute.role_arn``, else the foundation stack's job role (``<project>-sagemaker-jobs``)."""
    return config.compute.role_arn or f"arn:aws:iam::{account}:role/{config.project}-sagemaker-jobs"


def job_name(config: Config, stage: str, now: datetime | None = None) -> str:
    """``<project>-<stage>-<UTC time>``: unique per second, within SageMaker's 63 characters."""
    now = now or datetime.now(timezone.utc)
    return f"{config.project}-{stage}-{now:%Y%m%d-%H%M%S}"[:63].rstrip("-")


def tags(config: Config, stage: str, sha: str) -> list[dict]:
    """The tags every job carries: project, stage, the commit it runs."""
    return [{"Key": "project", "Value": config.project}, {"Key": "stage", "Value": stage},
            {"Key": "git-sha", "Value": sha[:40]}, {"Key": "created-by", "Value": "mlops"}]


def code_archive(config: Config, spec: dict) -> bytes:
    """``sourcedir.tar.gz``: this package, the entry shim, requirements.txt, and the project's config files."""
    package = Path(__file__).resolve().parent
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            archive.add(path, arcname=f"mlops/{path.relative_to(package).as_posix()}")
        requirements = SUITE_HOME / "requirements.txt"
        if requirements.is_file():
            archive.add(requirements, arcname="requirements.txt")
        archive.add(config.path, arcname="project/mlops.yaml")
        contract = Path(config.resolve(config.data.schema_file))
        if contract.is_file() and not os.path.isabs(config.data.schema_file):
            archive.add(contract, arcname=f"project/{config.data.schema_file}")
        for name, text in ((SHIM, SHIM_TEXT), ("project/job.json", json.dumps(spec, indent=2))):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(text.encode()), 0o644, int(time.time())
            archive.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def upload(aws: Aws, uri: str, body: bytes) -> str:
    """Put ``body`` at ``uri``; return ``uri``."""
    bucket, key = s3.parse(uri)
    with refused(f"uploading the job's code to {uri}"):
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return uri


@contextmanager
def refused(what: str, role: str | None = None) -> Iterator[None]:
    """An AWS call AWS refuses becomes a JobError naming the call, AWS's error, and the likely fix."""
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel  # boto

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", str(exc))
        hint = ""
        if "PassRole" in message and role:
            hint = (f" The role running this needs iam:PassRole on {role} (infra/foundation.yml, policy "
                    "run-jobs; update the foundation with make bootstrap) or compute.role_arn names another role")
        elif code.startswith("AccessDenied"):
            hint = " The role running this lacks the permission above (infra/foundation.yml, policy run-jobs)"
        raise JobError(f"{what} failed: {code}: {message}.{hint}") from None
    except BotoCoreError as exc:
        raise JobError(f"{what} failed: {exc}") from None


def start(aws: Aws, kind: str, request: dict) -> str:
    """Create the job; return its ARN."""
    name = request[f"{KINDS[kind]}Name"]
    with refused(f"starting SageMaker {kind} job {name}", role=request.get("RoleArn")):
        response = getattr(aws.client("sagemaker"), f"create_{kind}_job")(**request)
    arn = response[f"{KINDS[kind]}Arn"]
    say(f"Started SageMaker {kind} job {name} ({arn})")
    return arn


def describe(aws: Aws, kind: str, name: str) -> dict:
    """The job's description."""
    with refused(f"describing SageMaker {kind} job {name}"):
        return getattr(aws.client("sagemaker"), f"describe_{kind}_job")(**{f"{KINDS[kind]}Name": name})


def stop(aws: Aws, kind: str, name: str) -> None:
    """Ask SageMaker to stop the job (a job already finished is left alone)."""
    from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel  # boto

    try:
        getattr(aws.client("sagemaker"), f"stop_{kind}_job")(**{f"{KINDS[kind]}Name": name})
        say(f"Stopping SageMaker {kind} job {name}")
    except ClientError as exc:
        say(f"Could not stop SageMaker {kind} job {name}: {exc}")
