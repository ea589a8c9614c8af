"""Where a deploy goes: a local AWS emulator started here, or a real AWS account with checked credentials.

Input: the config (``deploy.region``, ``deploy.environments``) and the environment's name; AWS
credentials from the usual places (OIDC role in CI, ``AWS_PROFILE`` locally). Output: a
:class:`Target` with a boto3 session and a plain description ("LOCAL AWS EMULATOR ..." or "AWS
account N, region R"). ``emulator`` environments start ``moto_server`` on 127.0.0.1 and never
touch AWS; others fail with :class:`~mlops.errors.CredentialsError` without credentials and
never fall back to the emulator.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from mlops.config import Config, EnvironmentConfig
from mlops.console import say
from mlops.errors import CredentialsError, DeployError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The account moto_server reports.
EMULATOR_ACCOUNT = "123456789012"


@dataclass
class Target:
    """An AWS account (or emulator) to deploy into, with a boto3 session for it."""

    environment: str
    settings: EnvironmentConfig
    session: Any  # boto3.Session
    endpoint_url: str | None = None
    emulator: bool = False  # our own moto_server (an `emulator: true` environment)
    emulated: bool = False  # AWS_ENDPOINT_URL points at an emulator on this machine
    account: str = "?"

    def client(self, service: str):
        """A boto3 client for ``service`` in the target's region."""
        from botocore.config import Config as BotoConfig  # pylint: disable=import-outside-toplevel  # boto only when deploying

        return self.session.client(service, endpoint_url=self.endpoint_url,
                                   config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}))

    @property
    def description(self) -> str:
        """Where this deploy goes, said plainly."""
        if self.emulator:
            return f"LOCAL AWS EMULATOR (moto_server at {self.endpoint_url}; nothing is deployed to AWS)"
        if self.emulated:
            return f"an AWS emulator at {os.environ.get('AWS_ENDPOINT_URL')} (AWS_ENDPOINT_URL), account {self.account}"
        return f"AWS account {self.account}, region {self.session.region_name}"


def environment_settings(config: Config, environment: str) -> EnvironmentConfig:
    """The ``deploy.environments.<environment>`` entry, or a clear error listing the known ones."""
    try:
        return config.deploy.environments[environment]
    except KeyError:
        known = ", ".join(config.deploy.environments)
        raise DeployError(
            f"unknown environment {environment!r}; deploy.environments in {config.path} defines: {known}. "
            "Use one of those (make deploy ENV=...) or add it there"
        ) from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def emulator(timeout: float = 30.0) -> Iterator[str]:
    """Start ``moto_server`` on 127.0.0.1 at a free port; yield its URL; stop it afterwards."""
    executable = Path(sys.executable).with_name("moto_server")
    command = str(executable) if executable.is_file() else shutil.which("moto_server")
    if not command:
        raise DeployError("moto_server not found: run `make install` (moto[server] is in requirements-dev.txt)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(port)],  # pylint: disable=consider-using-with  # stopped in finally
                                   stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # nosec: 127.0.0.1 only
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        output.seek(0)
                        raise DeployError(f"moto_server did not start on {url}: "
                                          f"{output.read().decode(errors='replace')[-500:]}") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def endpoint_is_local() -> bool:
    """True when ``AWS_ENDPOINT_URL`` points at an emulator on this machine."""
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    return bool(url) and urlparse(url).hostname in LOCAL_HOSTS


def aws_session(config: Config, environment: str):
    """A boto3 session with working credentials, or CredentialsError; never an emulator fallback."""
    import boto3  # pylint: disable=import-outside-toplevel  # boto only when deploying
    advice = (
        f"{environment} deploys to real AWS and needs credentials: in GitHub Actions, "
        "aws-actions/configure-aws-credentials with role-to-assume (OIDC, see README 'Deploying'); locally, "
        "AWS_PROFILE=<profile> (after `aws sso login`). To try the flow without AWS, use `make deploy ENV=local`"
    )
    try:
        session = boto3.Session(region_name=config.deploy.region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise CredentialsError(f"cannot read AWS credentials ({exc}). {advice}") from None
    if credentials is None:
        raise CredentialsError(f"no AWS credentials found. {advice}")
    try:
        identity = session.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise CredentialsError(f"AWS rejected the credentials ({exc}). {advice}") from None
    return session, identity["Account"]


@contextmanager
def target_for(config: Config, environment: str) -> Iterator[Target]:
    """The deploy target of ``environment``: an emulator started here, or real AWS (credentials checked)."""
    settings = environment_settings(config, environment)
    if settings.emulator:
        import boto3  # pylint: disable=import-outside-toplevel  # boto only when deploying

        with emulator() as url:
            say(f"EMULATOR: {environment} runs against a local AWS emulator (moto_server at {url}). "
                 "Nothing is deployed to AWS; the emulator's state is discarded when this command ends.")
            session = boto3.Session(aws_access_key_id="emulator", aws_secret_access_key="emulator",
                                    region_name=config.deploy.region)
            yield Target(environment, settings, session, url, emulator=True, account=EMULATOR_ACCOUNT)
        return
    session, account = aws_session(config, environment)
    target = Target(environment, settings, session, emulated=endpoint_is_local(), account=account)
    if target.emulated:
        say(f"NOTE: AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']} is an emulator on this machine, not AWS.")
    yield target




@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """An AWS call that fails unexpectedly becomes a DeployError saying what was being done."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"{what} failed: {exc}. What served before still serves unless a line above says "
                          "otherwise; fix the cause (permissions, region, bucket) and run the command again") from None
