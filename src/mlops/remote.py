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
  rows on the runner and are left out (``model_checks`` says so).

Nothing is written unless the job completed (:func:`mlops.job_watch.check_finished`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from mlops import git, job_watch, jobs
from mlops.config import Config
from mlops.errors import JobError
from mlops.io import atomic_dir, atomic_write_json, atomic_write_text, read_json
from mlops.job_entry import IN_JOB
from mlops.lineage import MODEL_FILE, suite_info

IMAGE_ROOT = "/opt/ml"


def image(config: Config) -> str:
    """``compute.image_uri``, else the serving image: training and serving share one image and one set of pins."""
    from mlops.images import serving_image  # pylint: disable=import-outside-toplevel  # packaging only here

    return config.compute.image_uri or serving_image(config)


def _environment(sha: str) -> dict:
    return {"MLOPS_GIT_SHA": sha, IN_JOB: "1", "PYTHONUNBUFFERED": "1"}


def training_request(config: Config, *, name: str, source: str, code_uri: str, role: str, sha: str) -> dict:
    """The CreateTrainingJob request: script mode running this package's train stage on the ``train`` channel."""
    compute, out = config.compute, jobs.output_prefix(config)
    stopping = {"MaxRuntimeInSeconds": compute.max_runtime_minutes * 60}
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image(config), "TrainingInputMode": "File"},
        "RoleArn": role,
        "HyperParameters": {"sagemaker_program": jobs.SHIM, "sagemaker_submit_directory": code_uri,
                            "sagemaker_region": config.deploy.region, "sagemaker_container_log_level": "20",
                            "mlops_task": "train"},
        "InputDataConfig": [{"ChannelName": "train", "InputMode": "File", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": source, "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"{out}/training"},
        "ResourceConfig": {"InstanceType": compute.instance_type, "InstanceCount": 1,
                           "VolumeSizeInGB": compute.volume_gb},
        "StoppingCondition": stopping,
        "Environment": _environment(sha),
        "Tags": jobs.tags(config, "train", sha),
    }
    if compute.spot:
        request["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = (compute.max_wait_minutes or 2 * compute.max_runtime_minutes) * 60
        prefix = (compute.checkpoint_prefix or f"{out}/checkpoints").rstrip("/")
        request["CheckpointConfig"] = {"S3Uri": f"{prefix}/{name}", "LocalPath": f"{IMAGE_ROOT}/checkpoints"}
    return request


def processing_request(config: Config, *, name: str, task: str, inputs: dict[str, str], code_uri: str,
                       role: str, sha: str) -> dict:
    """The CreateProcessingJob request: each input's files sharded by S3 key across ``compute.instance_count``."""
    compute, out, root = config.compute, jobs.output_prefix(config), jobs.PROCESSING_ROOT

    def s3_input(input_name: str, uri: str, distribution: str) -> dict:
        return {"InputName": input_name, "S3Input": {
            "S3Uri": uri, "LocalPath": f"{root}/input/{input_name}", "S3DataType": "S3Prefix",
            "S3InputMode": "File", "S3DataDistributionType": distribution}}

    command = f"cd {root}/input/code && tar -xzf sourcedir.tar.gz && exec python3 {jobs.SHIM} shard {task}"
    return {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": compute.instance_count,
                                                  "InstanceType": compute.instance_type,
                                                  "VolumeSizeInGB": compute.volume_gb}},
        "StoppingCondition": {"MaxRuntimeInSeconds": compute.max_runtime_minutes * 60},
        "AppSpecification": {"ImageUri": image(config), "ContainerEntrypoint": ["/bin/sh", "-c", command]},
        "Environment": _environment(sha),
        "RoleArn": role,
        "ProcessingInputs": [s3_input("code", code_uri, "FullyReplicated")]
        + [s3_input(input_name, uri, "ShardedByS3Key") for input_name, uri in inputs.items()],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "shards", "S3Output": {
            "S3Uri": f"{out}/processing/{name}/shards", "LocalPath": f"{root}/output", "S3UploadMode": "EndOfJob"}}]},
        "Tags": jobs.tags(config, task, sha),
    }


def check_image_python(config: Config) -> None:
    """Refuse to start a job whose image's Python cannot install the suite's pins (the container installs them)."""
    from mlops.images import image_python, python_conflicts  # pylint: disable=import-outside-toplevel  # see image()
    from mlops.lineage import LIBRARIES, library_versions  # pylint: disable=import-outside-toplevel  # same

    if config.compute.image_uri:
        return  # a custom image: its Python is not known here
    python = image_python(config)
    installed = library_versions()
    conflicts = python_conflicts({n: installed[n] for n in LIBRARIES if installed.get(n) != "not installed"}, python)
    if conflicts:
        raise JobError(f"the job image runs Python {python}, which cannot install {', '.join(conflicts)}; pin lower "
                       "versions in requirements.in, or set compute.image_uri to an image with a newer Python")


def _launch(config: Config, kind: str, stage: str, spec: dict, build) -> tuple[jobs.Aws, dict, float]:
    """Upload the code, start the job, follow it to the end; (session, description, seconds) of a completed job."""
    check_image_python(config)
    aws = jobs.connect(config)
    jobs.check_instance_type(aws, kind, config.compute.instance_type)
    sha, name = git.head_sha(config.root), jobs.job_name(config, stage)
    code_uri = jobs.upload(aws, f"{jobs.output_prefix(config)}/code/{name}/sourcedir.tar.gz",
                           jobs.code_archive(config, spec))
    started = time.perf_counter()
    request = build(name=name, code_uri=code_uri, role=jobs.execution_role(config, aws.account), sha=sha)
    with job_watch.stopped_on_signal(aws, kind, name):  # from before the create call: no job left running
        jobs.start(aws, kind, request)
        job, lines = job_watch.follow(aws, kind, name)
    job_watch.check_finished(kind, name, job, lines)
    # a description repeats the request; the emulator's leaves parts out (the resources)
    return aws, {**request, **job}, time.perf_counter() - started


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
    source = jobs.s3_source(data or config.data.source, "--data" if data else "data.source")  # URIs need no resolve
    aws, job, seconds = _launch(config, "training", "train", {"task": "train"},
                                lambda **kw: training_request(config, source=source, **kw))
    with tempfile.TemporaryDirectory(prefix="mlops-job-") as workdir:
        bucket_key = job["ModelArtifacts"]["S3ModelArtifacts"]
        archive = Path(workdir) / "model.tar.gz"
        bucket, key = bucket_key.removeprefix("s3://").split("/", 1)
        with jobs.refused(f"downloading the model {bucket_key}"):
            aws.client("s3").download_file(bucket, key, str(archive))
        extracted = Path(workdir) / "model"
        job_watch.safe_extract(archive, extracted)
        return import_model(config, extracted, source, label, _job_record("training", job, seconds))


def import_model(config: Config, extracted: Path, source: str, label: str, job: dict) -> tuple[str, Path]:
    """Move the job's ``<version>/`` into ``models/``, its lineage completed as a local run's plus ``job``."""
    latest = extracted / "LATEST"
    if not latest.is_file():
        held = sorted(p.name for p in extracted.iterdir())
        raise JobError(f"the job's model.tar.gz has no LATEST file (it holds {held}); the container's train stage "
                       "did not finish")
    version = latest.read_text(encoding="utf-8").strip()
    folder = extracted / version
    if not (folder / MODEL_FILE).is_file() or not (folder / "metadata.json").is_file():
        raise JobError(f"the job's model.tar.gz lacks {version}/{MODEL_FILE} or metadata.json")
    metadata = read_json(folder / "metadata.json")
    metadata["data"].update(source=label, files=[source])  # what a local run on the same S3 data records
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

    source = jobs.s3_source(data or config.data.source, "--data" if data else "data.source")  # URIs need no resolve
    contract = load_contract(config)
    aws, job, seconds = _launch(config, "processing", "validate", {"task": "validate"},
                                lambda **kw: processing_request(config, task="validate", inputs={"data": source}, **kw))
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
    aws, job, seconds = _launch(config, "processing", "drift", {"task": "drift", "columns": {**kinds, **target}},
                                lambda **kw: processing_request(config, task="drift", inputs=inputs, **kw))
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
