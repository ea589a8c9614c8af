"""The stages' SageMaker side (``compute: sagemaker``): train as a Training job, validate and drift as Processing jobs.

Input: the config, the data on S3 (``data.source``, ``--data``; drift: the champion's training
files and ``drift.current``). Output, the same files the local stages write:

- :func:`train_job`: ``models/<version>/`` from the job's ``model.tar.gz`` with the lineage record the
  container's own train stage wrote (data source and files named as a local run on the same S3
  data names them, the runner's suite record) plus ``job``: name, ARN, instance type, billable and
  training seconds, spot savings; then ``models/LATEST``;
- :func:`validate_job`: the ``validation.json`` record, merged from each instance's shard
  (:mod:`mlops.shards`), plus ``job``;
- :func:`drift_job`: the ``drift.json`` record for the column and target decisions, merged from the
  shards; the model checks (prediction and performance drift) and evidently's HTML report need the
  rows on the runner and are left out (``model_checks`` says so);
- :func:`compare_job`: ``make compare``'s result when the held-out rows exceed
  ``compute.compare_above_rows``: one instance validates the data and scores both models on it
  (:mod:`mlops.comparison`, the same code as on the runner; the split needs every row on one
  machine), the runner adds what needs git (the ``mlops.yaml`` diff) and renders.

A data manifest (``data/manifest.json``, a retrain's staged one) is staged for the job
(:mod:`mlops.job_inputs`), so retrains run as jobs too.

Nothing is written unless the job completed (:func:`mlops.job_watch.check_finished`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from mlops import git, job_inputs, job_watch, jobs, s3
from mlops.config import Config
from mlops.errors import JobError
from mlops.io import atomic_dir, atomic_write_json, atomic_write_text, read_json
from mlops.job_requests import check_image_python, processing_request, training_request
from mlops.lineage import MODEL_FILE, read_metadata, suite_info


def _launch(config: Config, kind: str, stage: str, spec: dict, build, *, data: tuple[str, str] | None = None,
            extra=None) -> tuple[jobs.Aws, dict, float, job_inputs.JobData | None]:
    """Stage the inputs, upload the code, start the job, follow it to the end.

    ``data`` is (source, the key naming it) for :func:`mlops.job_inputs.prepare`; ``extra(aws, name)`` adds
    inputs of its own. ``build(name=, code_uri=, role=, sha=, inputs=)`` makes the request. Returns the
    session, the completed job's description, its seconds and the staged data.
    """
    check_image_python(config)
    if data:
        job_inputs.check(config, *data)
    aws = jobs.connect(config)
    jobs.check_instance_type(aws, kind, config.compute.instance_type)
    sha, name = git.head_sha(config.root), jobs.job_name(config, stage)
    staged = job_inputs.prepare(aws, config, data[0], name) if data else None
    inputs = {**(staged.inputs if staged else {}), **(extra(aws, name) if extra else {})}
    code_uri = jobs.upload(aws, f"{jobs.output_prefix(config)}/code/{name}/sourcedir.tar.gz",
                           jobs.code_archive(config, spec))
    started = time.perf_counter()
    request = build(name=name, code_uri=code_uri, role=jobs.execution_role(config, aws.account), sha=sha,
                    inputs=inputs)
    with job_watch.stopped_on_signal(aws, kind, name):  # from before the create call: no job left running
        jobs.start(aws, kind, request)
        job, lines = job_watch.follow(aws, kind, name)
    job_watch.check_finished(kind, name, job, lines)
    # a description repeats the request; the emulator's leaves parts out (the resources)
    return aws, {**request, **job}, time.perf_counter() - started, staged


def _data(data: str | None, config: Config) -> tuple[str, str]:
    """(source, the key naming it): ``--data`` (a composition's step) or ``data.source``."""
    return (data, "--data") if data else (config.data.source, "data.source")


def _job_record(kind: str, job: dict, seconds: float) -> dict:
    key = jobs.KINDS[kind]
    resources = job.get("ResourceConfig") or job.get("ProcessingResources", {}).get("ClusterConfig", {})
    record = {"kind": kind, "name": job[f"{key}Name"], "arn": job[f"{key}Arn"],
              "instance_type": resources.get("InstanceType"), "instance_count": resources.get("InstanceCount"),
              "wall_seconds": round(seconds, 1)}
    if kind == "training":
        record.update(billable_seconds=job.get("BillableTimeInSeconds"),
                      training_seconds=job.get("TrainingTimeInSeconds"),
                      spot=bool(job.get("EnableManagedSpotTraining")))
    return record


def train_job(config: Config, data: str | None, label: str) -> tuple[str, Path]:
    """Train as a SageMaker Training job; import its model into ``models/<version>/``; (version, folder)."""
    aws, job, seconds, staged = _launch(config, "training", "train", {"task": "train"},
                                        lambda **kw: training_request(config, **kw), data=_data(data, config))
    with tempfile.TemporaryDirectory(prefix="mlops-job-") as workdir:
        bucket_key = job["ModelArtifacts"]["S3ModelArtifacts"]
        archive = Path(workdir) / "model.tar.gz"
        bucket, key = bucket_key.removeprefix("s3://").split("/", 1)
        with jobs.refused(f"downloading the model {bucket_key}"):
            aws.client("s3").download_file(bucket, key, str(archive))
        extracted = Path(workdir) / "model"
        job_watch.safe_extract(archive, extracted)
        return import_model(config, extracted, staged.files, label, _job_record("training", job, seconds))


def import_model(config: Config, extracted: Path, files: list[str], label: str, job: dict) -> tuple[str, Path]:
    """Move the job's ``<version>/`` into ``models/``, its lineage completed as a local run's plus ``job``."""
    latest = extracted / "LATEST"
    if not latest.is_file():
        held = sorted(p.name for p in extracted.iterdir()) if extracted.is_dir() else []
        raise JobError(f"the job's model.tar.gz has no LATEST file (it holds {held}); the container's train stage "
                       "did not finish")
    version = latest.read_text(encoding="utf-8").strip()
    folder = extracted / version
    if not (folder / MODEL_FILE).is_file() or not (folder / "metadata.json").is_file():
        raise JobError(f"the job's model.tar.gz lacks {version}/{MODEL_FILE} or metadata.json")
    metadata = read_json(folder / "metadata.json")
    metadata["data"].update(source=label, files=files)  # what a local run on the same data records
    runner = suite_info()
    if metadata.get("suite", {}).get("code_sha256") != runner["code_sha256"]:
        job["code_sha256"] = metadata.get("suite", {}).get("code_sha256")  # never expected: the same archive
    metadata["suite"] = runner
    metadata["job"] = job
    with atomic_dir(config.models_dir / version) as target:
        for path in folder.iterdir():
            if path.is_file():
                shutil.copy2(path, target / path.name)
            else:
                shutil.copytree(path, target / path.name)
        atomic_write_json(target / "metadata.json", metadata)
    atomic_write_text(config.models_dir / "LATEST", version + "\n")
    return version, config.models_dir / version


def shards_of(aws: jobs.Aws, job: dict) -> list[dict]:
    """Every instance's shard statistics from the job's output prefix."""
    from mlops.shards import read_shard  # pylint: disable=import-outside-toplevel  # pandera is slow to import

    uri = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    with tempfile.TemporaryDirectory(prefix="mlops-shards-") as workdir:
        files = job_watch.download_prefix(aws, uri, Path(workdir))
        folders = sorted({f.parent for f in files if f.name == "shard.json"})
        if not folders:
            raise JobError(f"SageMaker processing job {job['ProcessingJobName']} completed but wrote no shard "
                           f"statistics under {uri}")
        return [read_shard(folder) for folder in folders]


def validate_job(config: Config, data: str | None, label: str) -> dict:
    """The ``validation.json`` record of the data, computed by a Processing job sharded across instances."""
    from mlops.contract import load_contract  # pylint: disable=import-outside-toplevel  # pandera is slow to import
    from mlops.shards import merge_validation  # pylint: disable=import-outside-toplevel  # same

    contract = load_contract(config)
    aws, job, seconds, _ = _launch(
        config, "processing", "validate", {"task": "validate"}, data=_data(data, config),
        build=lambda **kw: processing_request(config, task="shard validate", sharded=("data",), **kw))
    rows, columns, failures = merge_validation(shards_of(aws, job), contract)
    return {"passed": not failures, "source": label, "schema_file": contract.source, "rows": rows,
            "columns": len(columns), "failures": failures, "seconds": round(seconds, 4),
            "job": _job_record("processing", job, seconds)}


def drift_job(config: Config, current: str | None, threshold: float | None) -> dict:  # pylint: disable=too-many-locals  # one record, built in one place
    """The ``drift.json`` record (columns and target) from a Processing job over both sides' files."""
    # pylint: disable=import-outside-toplevel  # polars and the drift code only when drift runs
    from mlops.champion import for_reference, training_sources
    from mlops.drift_stats import dataset_drift, drift_options
    from mlops.scoring import features_of
    from mlops.shards import merge_drift

    settings = config.drift
    champion = for_reference(config)
    if not champion.metadata:
        raise JobError("compute: sagemaker drift compares with a trained champion (its lineage names the features); "
                       "train one first (make train)")
    references = [jobs.s3_source(s, "the champion's training data") for s in training_sources(config, champion)]
    current_source = current or settings.current
    if current_source.startswith("capture"):
        raise JobError("drift.current is captured traffic, which compute: sagemaker does not read: its statistics "
                       "need the capture decoded on the runner; use compute: local for captured traffic")
    current_uri = jobs.s3_source(current_source, "drift.current")
    features = features_of(champion.metadata)
    kinds = {**{n: "numeric" for n in features.numeric}, **{n: "categorical" for n in features.categorical}}
    target = {config.data.target: "numeric" if config.task == "regression" else "categorical"}
    inputs = {f"reference{i}": uri for i, uri in enumerate(references)} | {"current": current_uri}
    aws, job, seconds, _ = _launch(
        config, "processing", "drift", {"task": "drift", "columns": {**kinds, **target}},
        lambda **kw: processing_request(config, task="shard drift", sharded=tuple(inputs), **kw),
        extra=lambda *_: inputs)
    shards = shards_of(aws, job)
    options = drift_options(settings, threshold)
    columns = merge_drift(shards, kinds, **options)
    target_drift = merge_drift(shards, target, **options)[0]
    dataset = dataset_drift(columns, settings.drift_share, settings.correction)
    rows = {side: sum(s["rows"].get(side, 0) for s in shards) for side in ("reference", "current")}
    triggers, insufficient = ["dataset drift"] if dataset["drifted"] else [], None
    if rows["current"] < settings.min_rows:  # as the local check: too few rows decide nothing
        insufficient = (f"{rows['current']} current rows, fewer than drift.min_rows {settings.min_rows}: "
                        "nothing is decided and no retrain is proposed until more data arrives")
        triggers = []
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "drifted": bool(triggers), "triggers": triggers, "insufficient": insufficient,
        "reference": {"origin": {"registry": "registry prod pointer", "latest": "models/LATEST"}[champion.source],
                      "model_version": champion.version, "sources": references, "rows": rows["reference"],
                      "fingerprint": None},
        "current": {"source": current_source, "files": [current_uri], "rows": rows["current"], "fingerprint": None},
        "settings": {"numeric_method": settings.numeric_method, "categorical_method": settings.categorical_method,
                     "threshold": options["threshold"], "small_sample_rows": settings.small_sample_rows,
                     "p_value": settings.p_value, "correction": settings.correction,
                     "drift_share": settings.drift_share, "max_metric_drop": settings.max_metric_drop,
                     "min_rows": settings.min_rows, "max_invalid_share": settings.max_invalid_share},
        "capture": None,
        "dataset_drift": dataset,
        "columns": [c.to_dict() for c in columns],
        "target_drift": target_drift.to_dict() if target_drift.current_rows else None,
        "prediction_drift": None, "performance": None,
        "model_checks": "not run: compute: sagemaker computes the column and target statistics in the job; "
                        "prediction and performance drift need compute: local",
        "html_report": None, "html_error": None,
        "seconds": {"total": round(seconds, 3)},
        "job": _job_record("processing", job, seconds),
    }


def compare_remotely(config: Config, challenger_dir: Path) -> bool:
    """True when the challenger's held-out rows (its lineage counts them) exceed ``compute.compare_above_rows``."""
    rows = (read_metadata(challenger_dir).get("data") or {}).get("test_rows")
    return rows is not None and rows > config.compute.compare_above_rows


def _upload_folder(aws: jobs.Aws, folder: Path, uri: str) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        bucket, key = s3.parse(f"{uri}/{path.relative_to(folder).as_posix()}")
        with jobs.refused(f"uploading the model {folder} to {uri}"):
            aws.client("s3").upload_file(str(path), bucket, key)


def compare_job(config: Config, data: str | None, label: str, champion, challenger_dir: Path,
                schema_diff: dict | None) -> dict:
    """``make compare``'s result, scored by a Processing job on one instance (module docstring)."""
    from mlops.comparison import config_diff  # pylint: disable=import-outside-toplevel  # polars, sklearn

    spec = {"task": "compare", "label": label, "schema_diff": schema_diff,
            "champion": {"source": champion.source, "description": champion.description, "note": champion.note}}

    def models(aws: jobs.Aws, name: str) -> dict[str, str]:
        uri = f"{jobs.output_prefix(config)}/code/{name}/models"
        _upload_folder(aws, challenger_dir, f"{uri}/challenger")
        if champion.model_dir is not None:
            _upload_folder(aws, champion.model_dir, f"{uri}/champion")
        return {"models": f"{uri}/"}

    aws, job, seconds, _ = _launch(config, "processing", "compare", spec, data=_data(data, config), extra=models,
                                   build=lambda **kw: processing_request(config, task="compare", instances=1, **kw))
    uri = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    with tempfile.TemporaryDirectory(prefix="mlops-compare-") as workdir:
        found = [f for f in job_watch.download_prefix(aws, uri, Path(workdir)) if f.name == "compare.json"]
        if len(found) != 1:
            raise JobError(f"SageMaker processing job {job['ProcessingJobName']} completed but wrote "
                           f"{len(found)} compare.json files under {uri} (expected one)")
        result = read_json(found[0])
    # What needs the repository: the champion's base commit and the mlops.yaml diff against it.
    result.update(base_sha=champion.base_sha, config_diff=config_diff(config, champion.base_sha),
                  artifact=os.environ.get("MLOPS_REPORT_ARTIFACT") or None, job=_job_record("processing", job, seconds))
    return result
