"""The SageMaker job's entry point (mlops_job.py from the uploaded archive), run for real in a container-like folder."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from conftest import BASE_CONFIG
from mlops import jobs, remote
from mlops.config import load_config
from mlops.io import read_json
from mlops.shards import merge_drift, read_shard
from mlops.stages.train import train
from mlops.data import load_training

SOURCE = "s3://test-bucket/data/"


def sagemaker_project(project) -> None:
    """The project fixture switched to compute: sagemaker (the container must still train locally)."""
    config = {**BASE_CONFIG, "compute": {"engine": "sagemaker", "output_prefix": "s3://test-bucket/jobs"}}
    project.write_config(config)


def container(tmp_path: Path, config, spec: dict) -> Path:
    """A folder laid out as SageMaker lays out /opt/ml, with the real code archive unpacked in code/."""
    root = tmp_path / "opt-ml"
    code = root / "code"
    code.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(jobs.code_archive(config, spec)), mode="r:gz") as archive:
        archive.extractall(code, filter="data")
    for folder in ("model", "output", "input/config"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


def run_entry(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python mlops_job.py <args>`` from the archive, as SageMaker's toolkit starts it (cwd /opt/ml/code)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "SM_", "PYTHONPATH"))}
    clean.update({"MLOPS_SM_ROOT": str(root), "MLOPS_GIT_SHA": "abc1234def", "MLOPS_IN_JOB": "1", **(env or {})})
    return subprocess.run([sys.executable, str(root / "code" / jobs.SHIM), *args], cwd=root / "code", env=clean,
                          capture_output=True, text=True, timeout=300, check=False)


def training_container(project, tmp_path: Path) -> Path:
    """The training layout: the data in the train channel, hyperparameters.json, SM_* paths."""
    config = load_config(project.config_path)
    root = container(tmp_path, config, {"task": "train"})
    channel = root / "input" / "data" / "train"
    channel.mkdir(parents=True)
    shutil.copy(project.root / "data" / "train.csv", channel / "part-0000.csv")
    hps = {"sagemaker_program": jobs.SHIM, "sagemaker_submit_directory": "s3://test-bucket/code.tar.gz",
           "mlops_task": "train"}
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps), encoding="utf-8")
    return root


def test_training_entry_writes_a_model_that_compare_accepts_with_a_local_runs_lineage(project, tmp_path, monkeypatch):
    """The container trains with the package's train stage; imported, the model has a local run's lineage plus job."""
    sagemaker_project(project)
    root = training_container(project, tmp_path)
    env = {"SM_MODEL_DIR": str(root / "model"), "SM_CHANNEL_TRAIN": str(root / "input" / "data" / "train"),
           "SM_OUTPUT_DIR": str(root / "output")}
    done = run_entry(root, "--mlops_task", "train", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    version = (root / "model" / "LATEST").read_text(encoding="utf-8").strip()
    assert (root / "model" / version / "model.skops").is_file()
    assert version.endswith("-abc1234")

    config = load_config(project.config_path)
    job = {"kind": "training", "name": "test-project-train-1", "arn": "arn:aws:sagemaker:...", "billable_seconds": 9}
    imported, folder = remote.import_model(config, root / "model", [SOURCE], SOURCE, job)
    assert imported == version and (project.root / "models" / "LATEST").read_text().strip() == version
    metadata = read_json(folder / "metadata.json")
    monkeypatch.setenv("MLOPS_GIT_SHA", "abc1234def")
    monkeypatch.setenv("MLOPS_IN_JOB", "1")
    _, local_folder = train(config, load_training(config), source=SOURCE)
    local = read_json(local_folder / "metadata.json")
    assert set(metadata) - set(local) == {"job"} and set(local) <= set(metadata)
    assert metadata["data"]["fingerprint"] == local["data"]["fingerprint"]
    assert metadata["data"]["source"] == SOURCE and metadata["data"]["files"] == [SOURCE]
    for key in ("rows", "train_rows", "test_rows"):
        assert metadata["data"][key] == local["data"][key]
    assert metadata["suite"]["code_sha256"] == local["suite"]["code_sha256"] and "code_sha256" not in metadata["job"]
    assert metadata["features"] == local["features"] and metadata["params"] == local["params"]

    code, out, err = project.run("compare", "--champion", "none", "--model", str(folder))
    assert code == 0, out + err


def test_a_failing_training_entry_writes_the_failure_reason_and_exits_non_zero(project, tmp_path):
    """Data without the target: exit 1, and output/failure (SageMaker's FailureReason) holds the Error: line."""
    sagemaker_project(project)
    root = training_container(project, tmp_path)
    channel = root / "input" / "data" / "train" / "part-0000.csv"
    lines = channel.read_text(encoding="utf-8").splitlines()
    channel.write_text("\n".join([lines[0].replace("default", "other")] + lines[1:]) + "\n", encoding="utf-8")
    done = run_entry(root, "--mlops_task", "train")
    assert done.returncode == 1
    reason = (root / "output" / "failure").read_text(encoding="utf-8")
    assert reason.startswith("Error:") and "default" in reason, reason
    assert not (root / "model" / "LATEST").exists()


def test_a_spot_restart_reuses_the_checkpointed_model_instead_of_fitting_again(project, tmp_path):
    """A model finished before a spot interruption (in /opt/ml/checkpoints) is what the restarted job uploads."""
    sagemaker_project(project)
    root = training_container(project, tmp_path)
    (root / "checkpoints").mkdir()
    assert run_entry(root).returncode == 0  # first attempt: fits and checkpoints the finished model
    version = (root / "checkpoints" / "LATEST").read_text(encoding="utf-8").strip()
    shutil.rmtree(root / "model")
    (root / "input" / "data" / "train" / "part-0000.csv").unlink()  # a refit would now fail
    again = run_entry(root)
    assert again.returncode == 0 and "spot restart" in again.stdout
    assert (root / "model" / version / "model.skops").is_file()


def test_processing_entry_writes_one_shard_per_host(project, tmp_path):
    """A drift shard: this host's reference and current files reduced to count tables under output/<host>/."""
    sagemaker_project(project)
    config = load_config(project.config_path)
    columns = {"annual_income": "numeric", "home_ownership": "categorical"}
    root = container(tmp_path, config, {"task": "drift", "columns": columns})
    processing = root / "processing"
    (processing / "input" / "code").mkdir(parents=True)
    for side in ("reference0", "current"):
        (processing / "input" / side / "nested").mkdir(parents=True)
        shutil.copy(project.root / "data" / "train.csv", processing / "input" / side / "nested" / "a.csv")
    (root / "config").mkdir()
    (root / "config" / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-2"}), encoding="utf-8")
    done = run_entry(root, "shard", "drift")
    assert done.returncode == 0, done.stdout + done.stderr
    shard = read_shard(processing / "output" / "algo-2")
    assert shard["rows"] == {"reference": 800, "current": 800}
    results = merge_drift([shard], columns, threshold=0.1)
    assert [c.drifted for c in results] == [False, False] and results[0].statistic == 0.0  # the same rows
    assert yaml.safe_load((root / "code" / "project" / "mlops.yaml").read_text())["compute"]["engine"] == "sagemaker"
