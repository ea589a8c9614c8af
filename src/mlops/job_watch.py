"""Follow a SageMaker job to its end, stop it when the command is cancelled, fetch what it wrote.

Input: a session (:class:`mlops.jobs.Aws`), the job's kind and name. Output: the job's status
transitions, CloudWatch log lines and elapsed time printed as it runs; its final description and
last log lines; its output files. SIGTERM or SIGINT (a cancelled workflow, Ctrl-C) stops the job
before the command exits (:class:`Cancelled`, exit 130). A job that failed or was stopped is a
:class:`~mlops.errors.JobError` naming it, its FailureReason (or ExitMessage) and last log lines.
"""

from __future__ import annotations

import re
import signal
import tarfile
import threading
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mlops import s3
from mlops.console import say
from mlops.errors import JobError
from mlops.jobs import KINDS, LOG_GROUPS, TERMINAL, Aws, describe, poll_seconds, refused, stop


class Cancelled(JobError):
    """The command was cancelled (SIGTERM/SIGINT) and its job stopped."""

    exit_code = 130


class LogTail:
    """The job's CloudWatch log lines since the last look, printed, the last 20 kept for error messages."""

    def __init__(self, aws: Aws, kind: str, name: str):
        self.aws, self.group, self.prefix = aws, LOG_GROUPS[kind], f"{name}/"
        self.tokens: dict[str, str] = {}
        self.lines: deque[str] = deque(maxlen=20)

    def poll(self) -> None:
        """Print new log lines of every stream of the job (none yet is not an error)."""
        from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel  # boto

        logs = self.aws.client("logs")
        try:
            streams = logs.describe_log_streams(logGroupName=self.group, logStreamNamePrefix=self.prefix)["logStreams"]
            for stream in streams:
                name = stream["logStreamName"]
                kwargs = {"logGroupName": self.group, "logStreamName": name, "startFromHead": True}
                if name in self.tokens:
                    kwargs["nextToken"] = self.tokens[name]
                response = logs.get_log_events(**kwargs)
                host = name[len(self.prefix):].split("/")[0]
                for event in response.get("events", []):
                    line = event["message"].rstrip()
                    self.lines.append(line)
                    print(f"  [{host}] {line}", flush=True)
                self.tokens[name] = response.get("nextForwardToken", kwargs.get("nextToken", ""))
        except ClientError:  # the log group or stream does not exist before the container starts
            pass


@contextmanager
def stopped_on_signal(aws: Aws, kind: str, name: str) -> Iterator[None]:
    """While starting and following a job, SIGTERM/SIGINT (a cancelled workflow, Ctrl-C) stops it; raises Cancelled."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum, _frame):
        received.append(signum)
        raise KeyboardInterrupt  # unwinds out of sleep or an HTTP call to the except below

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except KeyboardInterrupt:
        stop(aws, kind, name)
        which = signal.Signals(received[0]).name if received else "SIGINT"
        raise Cancelled(f"{which} received (cancelled workflow or Ctrl-C): SageMaker {kind} job {name} was asked "
                        "to stop; nothing was written") from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def follow(aws: Aws, kind: str, name: str) -> tuple[dict, list[str]]:
    """Wait for the job to finish, printing status changes, log lines and elapsed time; (description, last lines).

    Run it inside :func:`stopped_on_signal` so a cancelled command stops the job.
    """
    started, seen, status = time.monotonic(), 0, None
    tail = LogTail(aws, kind, name)
    while True:
        job = describe(aws, kind, name)
        elapsed = f"{time.monotonic() - started:6.0f}s"
        transitions = job.get("SecondaryStatusTransitions", [])
        for transition in transitions[seen:]:
            say(f"{elapsed} {transition['Status']}: {transition.get('StatusMessage', '')}".rstrip(": "))
            if transition["Status"] == "Interrupted":
                say(f"{elapsed} spot capacity was reclaimed; SageMaker restarts the job and it resumes from "
                    "its checkpoint (compute.checkpoint_prefix)")
        seen = len(transitions)
        current = job[f"{KINDS[kind]}Status"]
        if current != status and not transitions:
            say(f"{elapsed} {current}")
        status = current
        tail.poll()
        if current in TERMINAL:
            billable = f", billable {job['BillableTimeInSeconds']}s" if job.get("BillableTimeInSeconds") else ""
            say(f"{elapsed} SageMaker {kind} job {name} {current}{billable}")
            return job, list(tail.lines)
        time.sleep(poll_seconds())


def check_finished(kind: str, name: str, job: dict, lines: list[str]) -> None:
    """JobError unless the job completed: its status, FailureReason (or ExitMessage) and last log lines."""
    status = job[f"{KINDS[kind]}Status"]
    if status == "Completed":
        return
    transitions = job.get("SecondaryStatusTransitions") or [{}]
    last_step = ": ".join(filter(None, (transitions[-1].get("Status"), transitions[-1].get("StatusMessage"))))
    reason = job.get("FailureReason") or job.get("ExitMessage") or last_step or "no reason given"
    last = "\n".join(f"  {line}" for line in lines[-10:]) or "  (no log lines: see CloudWatch " \
                                                            f"{LOG_GROUPS[kind]}/{name})"
    verb = "was stopped" if status == "Stopped" else "failed"
    raise JobError(f"SageMaker {kind} job {name} {verb}: {reason}\nLast log lines:\n{last}\n"
                   "Nothing was written: no model registered, no report replaced")


def download_prefix(aws: Aws, uri: str, dest: Path) -> list[Path]:
    """Every object under ``uri`` into ``dest`` (keys relative to the prefix); the files written."""
    bucket, prefix = s3.parse(uri.rstrip("/") + "/")
    client, written = aws.client("s3"), []
    with refused(f"reading the job's output at {uri}"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix):]
                if not relative or ".." in Path(relative).parts:
                    continue
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
                written.append(target)
    return written


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar.gz, refusing members that would land outside ``dest`` or are links."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.issym() or member.islnk() or not re.fullmatch(r"[A-Za-z0-9_.\-/]+", member.name) \
                    or ".." in Path(member.name).parts or member.name.startswith("/"):
                raise JobError(f"{archive.name} holds an unexpected entry {member.name!r}; refusing it")
        tar.extractall(dest, filter="data")
