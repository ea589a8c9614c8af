"""A job's data as SageMaker hands it over: an ``s3://`` prefix as it is, a data manifest staged beside the job's code.

Input (runner, :func:`prepare`): a stage's data (``data.source``, ``--data``, a retrain's staged
manifest), the job's name and session. Output: :class:`JobData`, the job's S3 inputs (input or
channel name -> prefix) and the files the lineage names, as a local run on the same data names
them.

A data manifest (:mod:`mlops.manifest`) pins files that may be local or S3 objects at a version;
a job's channel is an S3 prefix. So each listed file is copied to
``<output>/code/<job>/data/<index>.<ext>`` (S3 objects server-side at their recorded version,
local files uploaded: the read role may write under ``code/`` only) and the manifest, naming those
copies and keeping every sha256 and the time window, to ``<output>/code/<job>/manifest/``.

Inside the job :func:`mlops.job_entry.data_source` hands the stage that manifest, so every file is
checked against its sha256 and the window's cutoff applies exactly as on the runner.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mlops import jobs, s3
from mlops.errors import JobError
from mlops.job_entry import MANIFEST


@dataclass(frozen=True)
class JobData:
    """A stage's data as job inputs: ``inputs`` (``data`` and, for a manifest, ``manifest``) and the lineage's files."""

    inputs: dict[str, str]
    files: list[str]


def is_manifest(source: str) -> bool:
    """True for a data manifest on this machine (``data/manifest.json``, a retrain's staged one)."""
    return source.endswith(".json") and not s3.is_s3(source)


def check(config, source: str, key: str) -> None:
    """Refuse, before any AWS call, data a job cannot get: not on S3 and not a data manifest on this machine."""
    if not is_manifest(source):
        jobs.s3_source(source, key)
    elif not Path(config.resolve(source)).is_file():
        raise JobError(f"{key} is the data manifest {source}, which does not exist")


def prepare(aws, config, source: str, name: str) -> JobData:
    """The job inputs of ``source`` (already :func:`check`-ed): an ``s3://`` prefix as it is; a manifest's files
    staged (module docstring)."""
    if not is_manifest(source):
        return JobData({"data": source}, [source])
    from mlops.manifest import listed_files  # pylint: disable=import-outside-toplevel  # polars: only for manifests

    path = Path(config.resolve(source))
    record = json.loads(path.read_text(encoding="utf-8"))
    base = f"{jobs.output_prefix(config)}/code/{name}"
    staged, files = [], []
    client = aws.client("s3")
    for index, entry in enumerate(listed_files(str(path))):
        uri = entry["uri"]
        target = f"{index:05d}{Path(uri).suffix}"
        bucket, object_key = s3.parse(f"{base}/data/{target}")
        if s3.is_s3(uri):
            source_bucket, source_key = s3.parse(uri)
            copy = {"Bucket": source_bucket, "Key": source_key}
            if entry.get("version_id"):
                copy["VersionId"] = entry["version_id"]
            with jobs.refused(f"copying {uri} (listed in {source}) to {base}/data/"):
                client.copy(copy, bucket, object_key)
            files.append(uri)
        else:
            if not Path(uri).is_file():
                raise JobError(f"{uri} (listed in the data manifest {source}) does not exist")
            with jobs.refused(f"uploading {uri} (listed in {source}) to {base}/data/"):
                client.upload_file(uri, bucket, object_key)
            files.append(os.path.relpath(uri, config.root))
        staged.append({**entry, "uri": target})
    body = json.dumps({**record, "files": staged}, indent=2).encode()
    jobs.upload(aws, f"{base}/manifest/{MANIFEST}", body)
    return JobData({"data": f"{base}/data/", "manifest": f"{base}/manifest/"}, files)
