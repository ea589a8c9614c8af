"""compute: sagemaker end to end against a real moto_server: the requests sent, the model and reports brought back."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import tarfile
import time
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml

from conftest import BASE_CONFIG
from deploy_helpers import use_moto
from job_helpers import StandIn
from mlops import job_watch, jobs
from mlops.config import load_config
from mlops.data import load
from mlops.errors import ConfigError, JobError
from mlops.io import read_json, sha256_file
from mlops.manifest import FORMAT
from mlops.registry import Registry
from mlops.stages.datagen import generate

pytestmark = [pytest.mark.aws]

BUCKET = "test-bucket"
ROLE = "arn:aws:iam::123456789012:role/test-project-sagemaker-jobs"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"


def configure(project, **compute) -> None:
    """The project reading s3://test-bucket/data/ with compute: sagemaker (and ``compute`` overrides)."""
    config = copy.deepcopy(BASE_CONFIG)
    config["data"]["source"] = f"s3://{BUCKET}/data/"
    config["drift"] = {"current": f"s3://{BUCKET}/production/"}
    config["compute"] = {"engine": "sagemaker", "output_prefix": f"s3://{BUCKET}/jobs", "instance_type": "ml.m5.xlarge",
                         **compute}
    project.write_config(config)


def upload(frame: pd.DataFrame, prefix: str, parts: int) -> None:
    """``frame`` as ``parts`` CSV objects under s3://test-bucket/<prefix>/."""
    s3 = boto3.client("s3")
    size = -(-len(frame) // parts)
    for index in range(parts):
        body = frame.iloc[index * size:(index + 1) * size].to_csv(index=False).encode()
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/part-{index:04d}.csv", Body=body)


def on_moto(project, moto, monkeypatch, parts: int) -> None:
    """boto3 on moto, jobs polled at once, the project's training data in ``parts`` objects, compute: sagemaker."""
    use_moto(monkeypatch, moto)
    monkeypatch.setenv("MLOPS_JOB_POLL_SECONDS", "0")
    monkeypatch.setenv("MLOPS_GIT_SHA", "abc1234def")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    upload(pd.read_csv(project.root / "data" / "train.csv"), "data", parts)
    configure(project)


@pytest.fixture(name="world")
def _world(project, moto, monkeypatch, tmp_path):
    """moto with the project's data on S3, the SageMaker stand-in hooked on the launcher's session."""
    on_moto(project, moto, monkeypatch, 3)
    stand_ins = []
    connect = jobs.connect

    def connect_with_stand_in(config):
        aws = connect(config)
        stand_ins.append(StandIn(tmp_path / "sagemaker", aws.session))
        return aws

    monkeypatch.setattr(jobs, "connect", connect_with_stand_in)
    return stand_ins


def test_make_train_starts_a_training_job_and_brings_its_model_back(project, world):
    """The request names image, role, instance, channel, output, stopping condition and tags; the model comes home."""
    code, out, err = project.run("train")
    assert code == 0, out + err
    request = world[0].requests["CreateTrainingJob"]
    name = request["TrainingJobName"]
    assert name.startswith("test-project-train-")
    assert request["AlgorithmSpecification"] == {"TrainingImage": IMAGE, "TrainingInputMode": "File"}
    assert request["RoleArn"] == ROLE
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert request["InputDataConfig"] == [{"ChannelName": "train", "InputMode": "File", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/", "S3DataDistributionType": "FullyReplicated"}}}]
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/jobs/training"}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert "EnableManagedSpotTraining" not in request and "CheckpointConfig" not in request
    assert {"Key": "project", "Value": "test-project"} in request["Tags"]
    assert {"Key": "git-sha", "Value": "abc1234def"} in request["Tags"]
    hps = request["HyperParameters"]
    assert hps["sagemaker_program"] == "mlops_job.py" and hps["mlops_task"] == "train"
    assert hps["sagemaker_submit_directory"] == f"s3://{BUCKET}/jobs/code/{name}/sourcedir.tar.gz"
    assert request["Environment"]["MLOPS_IN_JOB"] == "1"

    latest = (project.root / "models" / "LATEST").read_text().strip()
    metadata = read_json(project.root / "models" / latest / "metadata.json")
    assert metadata["job"]["name"] == name and metadata["job"]["arn"].endswith(f"training-job/{name}")
    assert metadata["job"]["instance_type"] == "ml.m5.xlarge" and "billable_seconds" in metadata["job"]
    assert metadata["data"]["source"] == f"s3://{BUCKET}/data/" and metadata["data"]["rows"] == 800
    assert "Started SageMaker training job" in out and f"training job {name} Completed" in out
    assert f"[algo-1-1700000000] Trained {latest}" in out  # the container's log lines, streamed from CloudWatch
    assert project.run("compare", "--champion", "none")[0] == 0
    assert "CreateProcessingJob" not in world[0].requests  # 200 held-out rows: below compute.compare_above_rows


def test_spot_training_asks_for_spot_capacity_a_wait_limit_and_a_checkpoint(project, world):
    """spot: true adds EnableManagedSpotTraining, MaxWaitTimeInSeconds and a per-job checkpoint prefix."""
    configure(project, spot=True, max_runtime_minutes=30, checkpoint_prefix=f"s3://{BUCKET}/ckpt/")
    assert project.run("train")[0] == 0
    request = world[0].requests["CreateTrainingJob"]
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert request["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/ckpt/{request['TrainingJobName']}",
                                           "LocalPath": "/opt/ml/checkpoints"}


def _canonical(failures: list[dict]) -> list[tuple]:
    return sorted((str(f["column"]), f["problem"], f["rows"]) for f in failures)


def test_make_validate_shards_the_files_across_instances_and_merges_to_the_local_result(project, world):
    """Three files on two instances: validation.json counts the same failures as a local run over the same data."""
    frame = pd.read_csv(project.root / "data" / "train.csv")
    frame.loc[frame.index[::7], "credit_score"] = -5.0  # below the minimum in every shard
    frame.loc[frame.index[::11], "grade"] = "Z"  # an unseen category
    frame.loc[frame.index[::13], "age"] = None  # nulls in a non-nullable column
    frame.loc[700, "loan_id"] = frame.loc[10, "loan_id"]  # a duplicate across two shards
    upload(frame, "data", 3)
    configure(project, instance_count=2)
    code, out, err = project.run("validate")
    assert code == 1, out + err  # the contract is broken
    remote = read_json(project.root / "reports" / "validation.json")
    request = world[0].requests["CreateProcessingJob"]
    assert request["ProcessingResources"]["ClusterConfig"] == {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge",
                                                               "VolumeSizeInGB": 30}
    data_input = next(i["S3Input"] for i in request["ProcessingInputs"] if i["InputName"] == "data")
    assert data_input["S3DataDistributionType"] == "ShardedByS3Key" and data_input["S3Uri"] == f"s3://{BUCKET}/data/"
    assert request["AppSpecification"]["ImageUri"] == IMAGE and request["RoleArn"] == ROLE
    assert remote["job"]["instance_count"] == 2 and len(world[0].outputs) == 2

    configure(project, engine="local")
    assert project.run("validate")[0] == 1
    local = read_json(project.root / "reports" / "validation.json")
    assert (remote["rows"], remote["columns"]) == (local["rows"], local["columns"]) == (800, 25)
    assert _canonical(remote["failures"]) == _canonical(local["failures"])
    assert {f["column"] for f in remote["failures"]} == {"credit_score", "grade", "age", "loan_id"}


def test_make_drift_merges_shards_to_the_decisions_of_a_local_run(project, world):
    """drift.json's column and target decisions from a 2-instance job equal a local run's on the same files."""
    upload(generate(900, seed=5, drift=True), "production", 2)
    configure(project, engine="local")
    assert project.run("train")[0] == 0
    assert project.run("drift", "--no-html", "--exit-zero")[0] == 0
    local = read_json(project.root / "reports" / "drift.json")
    configure(project, instance_count=2)
    code, out, err = project.run("drift", "--exit-zero")
    assert code == 0, out + err
    remote = read_json(project.root / "reports" / "drift.json")
    assert remote["columns"] == local["columns"] and remote["dataset_drift"] == local["dataset_drift"]
    assert remote["target_drift"] == local["target_drift"] and remote["drifted"] == local["drifted"]
    assert remote["reference"]["rows"] == 800 and remote["current"]["rows"] == 900
    names = {i["InputName"] for i in world[0].requests["CreateProcessingJob"]["ProcessingInputs"]}
    assert names == {"code", "reference0", "current"}


def test_compute_config_shorthand_defaults_and_errors(tmp_path):
    """compute: sagemaker is {engine: sagemaker}; local is the default; a misspelt key names compute.<key>."""
    path = tmp_path / "mlops.yaml"
    base = copy.deepcopy(BASE_CONFIG)
    for value, engine in ((None, "local"), ("sagemaker", "sagemaker"), ({"engine": "local"}, "local")):
        path.write_text(yaml.safe_dump({**base, **({"compute": value} if value else {})}))
        assert load_config(path).compute.engine == engine
    for value, message in (({"instance_typ": "ml.m5.xlarge"}, "unknown key 'compute.instance_typ'"),
                           ({"engine": "batch"}, "compute.engine"),
                           ({"max_runtime_minutes": 60, "max_wait_minutes": 30}, "at least compute.max_runtime"),
                           ({"checkpoint_prefix": "/tmp/ckpt"}, "compute.checkpoint_prefix")):
        path.write_text(yaml.safe_dump({**base, "compute": value}))
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path)


def test_job_names_fit_sagemaker_and_the_code_archive_holds_the_package_and_project(project):
    """Names stay within 63 characters; the archive has the shim, mlops/, requirements.txt, config and contract."""
    configure(project)
    config = load_config(project.config_path)
    name = jobs.job_name(config.model_copy(update={"project": "p" * 31}), "validate")
    assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)
    with tarfile.open(fileobj=io.BytesIO(jobs.code_archive(config, {"task": "train"}))) as archive:
        names = set(archive.getnames())
    assert {"mlops_job.py", "mlops/job_entry.py", "mlops/templates/drift.md.j2", "requirements.txt",
            "project/mlops.yaml", "project/schema.yaml", "project/job.json"} <= names
    assert not any("__pycache__" in n for n in names)


def test_a_model_archive_with_a_path_outside_its_folder_is_refused(tmp_path):
    """model.tar.gz entries with '..' or links are refused before anything is extracted."""
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(JobError, match="unexpected entry"):
        job_watch.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def _champion_on_runner(project) -> None:
    """Trained on the runner (compute: local) and set as the local registry's prod version."""
    configure(project, engine="local")
    assert project.run("train")[0] == 0
    config = load_config(project.config_path)
    registry = Registry.from_config(config)
    latest = config.models_dir / (config.models_dir / "LATEST").read_text().strip()
    registry.set_pointer("prod", registry.register(latest))


def _two_models(project) -> None:
    """Trained on the runner: a champion in the local registry's prod pointer, then a challenger in LATEST."""
    _champion_on_runner(project)
    time.sleep(1.1)  # versions are named by the second
    config_data = yaml.safe_load(project.config_path.read_text())
    config_data["model"]["params"] = {"max_iter": 300, "C": 0.05}
    project.write_config(config_data)
    assert project.run("train")[0] == 0


def test_make_compare_above_compare_above_rows_scores_in_a_processing_job_as_the_runner_does(project, world):
    """One instance gets the data and both models; compare.json's numbers equal a run on the runner's."""
    _two_models(project)
    assert project.run("compare", "--champion", "registry")[0] in (0, 1)
    local = read_json(project.root / "reports" / "compare.json")
    params = yaml.safe_load(project.config_path.read_text())["model"]["params"]
    configure(project, compare_above_rows=100)  # the challenger holds out 200 rows
    config_data = yaml.safe_load(project.config_path.read_text())
    config_data["model"]["params"] = params
    project.write_config(config_data)
    (project.root / "reports" / "compare.json").unlink()
    code, out, err = project.run("compare", "--champion", "registry")
    assert code == (1 if local["failures"] else 0), out + err
    remote = read_json(project.root / "reports" / "compare.json")
    request = world[0].requests["CreateProcessingJob"]
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert request["AppSpecification"]["ContainerEntrypoint"][-1].endswith("mlops_job.py compare")
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert set(inputs) == {"code", "data", "models"}
    assert {i["S3DataDistributionType"] for i in inputs.values()} == {"FullyReplicated"}
    assert inputs["data"]["S3Uri"] == f"s3://{BUCKET}/data/"
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix=inputs["models"]["S3Uri"].removeprefix(f"s3://{BUCKET}/"))["Contents"]]
    assert any("/models/challenger/model.skops" in k for k in keys) and any("/models/champion/" in k for k in keys)
    assert remote["job"]["kind"] == "processing" and remote["job"]["instance_count"] == 1
    for key in ("test_rows", "metrics", "slices", "gates", "verdict", "headline", "champion_source", "curves",
                "data", "notes"):
        assert remote[key] == local[key], key
    assert remote["champion"]["version"] == local["champion"]["version"]
    assert remote["validation"]["passed"] and remote["validation"]["source"] == local["validation"]["source"]
    assert (project.root / "reports" / "compare.md").read_text().startswith(("### ✅", "### ❌"))


def test_a_data_manifest_is_staged_for_train_and_validate_jobs_at_its_pinned_versions(project, world):
    """A manifest of an S3 object at a version (overwritten since) and a local file: the jobs train and validate
    on exactly those bytes, and the lineage names what a local run on the manifest names."""
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    frame = pd.read_csv(project.root / "data" / "train.csv")
    first = frame.iloc[:500].to_csv(index=False).encode()
    version = s3.put_object(Bucket=BUCKET, Key="data/old.csv", Body=first)["VersionId"]
    project.write_data(frame.iloc[500:], "data/new.csv")
    entries = [{"uri": f"s3://{BUCKET}/data/old.csv", "role": "reference", "rows": 500, "version_id": version,
                "sha256": hashlib.sha256(first).hexdigest(), "bytes": len(first)},
               {"uri": "new.csv", "role": "current", "sha256": sha256_file(project.root / "data" / "new.csv"),
                "bytes": 0, "rows": 300}]
    manifest = {"format": FORMAT, "created_by": "test", "window": {}, "rows": 800, "files": entries}
    manifest_path = str(project.root / "data" / "manifest.json")
    Path(manifest_path).write_text(json.dumps(manifest), encoding="utf-8")
    s3.put_object(Bucket=BUCKET, Key="data/old.csv", Body=b"changed,after\n1,2\n")  # the manifest pins the old bytes

    configure(project, engine="local")
    code, out, err = project.run("train", "--data", manifest_path)
    assert code == 0, out + err
    local = read_json(project.root / "models" / (project.root / "models" / "LATEST").read_text().strip()
                      / "metadata.json")
    assert project.run("validate", "--data", manifest_path)[0] == 0
    local_validation = read_json(project.root / "reports" / "validation.json")
    time.sleep(1.1)
    configure(project, instance_count=2)
    code, out, err = project.run("train", "--data", manifest_path)
    assert code == 0, out + err
    request = world[0].requests["CreateTrainingJob"]
    name = request["TrainingJobName"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels == {"train": f"s3://{BUCKET}/jobs/code/{name}/data/",
                        "manifest": f"s3://{BUCKET}/jobs/code/{name}/manifest/"}
    staged_key = f"jobs/code/{name}/manifest/mlops-manifest.json"
    staged = json.loads(s3.get_object(Bucket=BUCKET, Key=staged_key)["Body"].read())
    assert [f["uri"] for f in staged["files"]] == ["00000.csv", "00001.csv"]
    assert s3.get_object(Bucket=BUCKET, Key=f"jobs/code/{name}/data/00000.csv")["Body"].read() == first
    remote = read_json(project.root / "models" / (project.root / "models" / "LATEST").read_text().strip()
                       / "metadata.json")
    assert remote["job"]["name"] == name
    for key in ("source", "files", "fingerprint", "rows", "train_rows", "test_rows"):
        assert remote["data"][key] == local["data"][key], key
    assert remote["data"]["files"] == [f"s3://{BUCKET}/data/old.csv", "data/new.csv"]

    code, out, err = project.run("validate", "--data", manifest_path)
    assert code == 0, out + err
    validation = read_json(project.root / "reports" / "validation.json")
    assert (validation["rows"], validation["failures"]) == (local_validation["rows"], local_validation["failures"])
    assert len(world[1].outputs) == 2  # each instance got one staged file and checked its sha256


def test_a_manifest_whose_local_file_changed_fails_the_job_and_registers_nothing(project, world):
    """The container checks each staged file against the manifest's sha256: a changed file is the job's Error."""
    project.write_data(pd.read_csv(project.root / "data" / "train.csv"), "data/new.csv")
    entry = {"uri": "new.csv", "role": "current", "sha256": "0" * 64, "bytes": 0, "rows": 800}
    manifest_path = str(project.root / "data" / "manifest.json")
    Path(manifest_path).write_text(json.dumps(
        {"format": FORMAT, "created_by": "test", "window": {}, "rows": 800, "files": [entry]}), encoding="utf-8")
    code, out, err = project.run("train", "--data", manifest_path)
    # moto marks every job Completed (test_job_states covers Failed with its FailureReason): the container's own
    # Error line reaches the log, and the missing model is the runner's Error
    assert code == 1 and "changed since the manifest" in out and "no LATEST file" in err, out + err
    assert not (project.root / "models").exists() or not any((project.root / "models").iterdir())
    assert world[0].requests["CreateTrainingJob"]


def test_make_retrain_validates_and_trains_its_collected_manifest_as_jobs(project, world):
    """collect on the runner; validate and train as jobs on the staged manifest; the PR's manifest is what trained."""
    _champion_on_runner(project)
    upload(generate(600, seed=90, start="2024-07-01", days=31, drift=True), "production", 2)
    time.sleep(1.1)
    configure(project)
    code, out, err = project.run("retrain")
    assert code == 0, out + err
    requests = {k: v for stand_in in world for k, v in stand_in.requests.items()}  # one stand-in per job
    training, processing = requests["CreateTrainingJob"], requests["CreateProcessingJob"]
    assert {c["ChannelName"] for c in training["InputDataConfig"]} == {"train", "manifest"}
    assert {i["InputName"] for i in processing["ProcessingInputs"]} == {"code", "data", "manifest"}
    record = read_json(project.root / "reports" / "retrain" / "retrain.json")
    metadata = read_json(project.root / "models" / record["version"] / "metadata.json")
    manifest = read_json(project.root / "data" / "manifest.json")
    assert metadata["job"]["name"] == training["TrainingJobName"]
    assert metadata["data"]["source"] == "data/manifest.json"
    assert metadata["data"]["files"] == [f["uri"] for f in manifest["files"]]
    pinned = load(str(project.root / "data" / "manifest.json"))
    assert (metadata["data"]["fingerprint"], metadata["data"]["rows"]) == (pinned.fingerprint, pinned.rows) \
        and pinned.rows == 1400
