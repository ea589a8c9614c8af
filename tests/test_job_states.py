"""Job states moto does not model (Failed, Stopped, a spot interruption, a cancel) and bad input: each an Error:."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import threading
import time
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from deploy_helpers import no_aws, use_moto
from test_jobs import BUCKET, configure, on_moto
from mlops import jobs
from mlops.config import load_config
from mlops.data import load_training
from mlops.io import read_json
from mlops.stages.train import train

pytestmark = [pytest.mark.aws]

NAME = ANY
ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/test-project-train-1"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
PASS_ROLE = ("User: arn:aws:sts::123456789012:assumed-role/test-project-github-read/gh is not authorized to perform: "
             "iam:PassRole on resource: arn:aws:iam::123456789012:role/test-project-sagemaker-jobs")


def training(status: str, transitions: list[tuple[str, str]], **extra) -> dict:
    """A DescribeTrainingJob response."""
    return {"TrainingJobName": "test-project-train-1", "TrainingJobArn": ARN, "TrainingJobStatus": status,
            "SecondaryStatus": transitions[-1][0] if transitions else "Starting",
            "SecondaryStatusTransitions": [{"Status": s, "StatusMessage": m, "StartTime": NOW} for s, m in transitions],
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/jobs/training/model.tar.gz"},
            "AlgorithmSpecification": {"TrainingInputMode": "File"}, "CreationTime": NOW,
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, **extra}


@pytest.fixture(name="stub")
def _stub(project, moto, monkeypatch):
    """moto for S3, STS and logs; a Stubber-driven SageMaker client for the job's states."""
    on_moto(project, moto, monkeypatch, 2)
    client = boto3.client("sagemaker")
    stubber = Stubber(client)
    connect = jobs.connect
    monkeypatch.setattr(jobs, "job_name", lambda config, stage, now=None: f"{config.project}-{stage}-1")

    def connect_stubbed(config):
        aws = connect(config)
        aws.clients["sagemaker"] = client
        return aws

    monkeypatch.setattr(jobs, "connect", connect_stubbed)
    with stubber:
        yield stubber


def _logs(*lines: str, group: str = "/aws/sagemaker/TrainingJobs", stream: str = "test-project-train-1/algo-1") -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": m}  # CloudWatch drops old
                                   for i, m in enumerate(lines)])


def _started(stub: Stubber) -> None:
    stub.add_response("create_training_job", {"TrainingJobArn": ARN})


def test_a_failed_job_gives_its_failure_reason_and_last_log_lines_and_registers_nothing(project, stub):
    """Failed: Error: with FailureReason and the job's last CloudWatch lines, exit 1, no models/ folder."""
    _logs("Installing requirements", "Error: target column 'default' is not in the data")
    _started(stub)
    stub.add_response("describe_training_job", training("InProgress", [("Starting", "Preparing the instances")]))
    stub.add_response("describe_training_job", training(
        "Failed", [("Starting", ""), ("Failed", "Training job failed")],
        FailureReason="AlgorithmError: Error: target column 'default' is not in the data"))
    code, out, err = project.run("train")
    assert code == 1
    assert "Error: SageMaker training job test-project-train-1 failed: AlgorithmError" in err
    assert "Last log lines:\n  Installing requirements" in err and "no model registered" in err
    assert "Starting: Preparing the instances" in out
    assert not (project.root / "models").exists()


def test_a_stopped_job_is_an_error_and_registers_nothing(project, stub):
    """Stopped (someone stopped it, or MaxRuntime): Error: ... was stopped, exit 1."""
    _started(stub)
    stub.add_response("describe_training_job", training("Stopped", [("MaxRuntimeExceeded", "Job exceeded "
                                                                                          "MaxRuntimeInSeconds")]))
    code, _, err = project.run("train")
    assert code == 1 and "test-project-train-1 was stopped: MaxRuntimeExceeded: Job exceeded" in err
    assert "see CloudWatch /aws/sagemaker/TrainingJobs/test-project-train-1" in err
    assert not (project.root / "models").exists()


def _model_archive(project, monkeypatch, tmp_path) -> None:
    """A model.tar.gz as the container's train stage leaves /opt/ml/model, uploaded where SageMaker puts it."""
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(tmp_path / "opt-ml-model"))
    config = load_config(project.config_path)
    train(config, load_training(config), source=f"s3://{BUCKET}/data/")
    monkeypatch.delenv("MLOPS_MODELS_DIR")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted((tmp_path / "opt-ml-model").rglob("*")):
            tar.add(path, arcname=str(path.relative_to(tmp_path / "opt-ml-model")), recursive=False)
    boto3.client("s3").put_object(Bucket=BUCKET, Key="jobs/training/model.tar.gz", Body=buffer.getvalue())


def test_a_spot_interruption_is_reported_and_the_resumed_job_brings_its_model(project, stub, monkeypatch, tmp_path):
    """Interrupted then resumed from the checkpoint: said in the log; billable < training seconds in the lineage."""
    configure(project, spot=True)
    _model_archive(project, monkeypatch, tmp_path)
    _started(stub)
    steps = [("Starting", ""), ("Training", "Training image download completed")]
    stub.add_response("describe_training_job", training("InProgress", steps, EnableManagedSpotTraining=True))
    steps.append(("Interrupted", "The job was interrupted: insufficient spot capacity"))
    stub.add_response("describe_training_job", training("InProgress", steps, EnableManagedSpotTraining=True))
    steps += [("Restarting", "Restarting from checkpoint"), ("Training", ""), ("Completed", "Training job completed")]
    stub.add_response("describe_training_job", training("Completed", steps, EnableManagedSpotTraining=True,
                                                        BillableTimeInSeconds=40, TrainingTimeInSeconds=120))
    code, out, err = project.run("train")
    assert code == 0, out + err
    assert "Interrupted: The job was interrupted" in out and "resumes from its checkpoint" in out
    assert out.index("Interrupted") < out.index("Restarting") < out.index("Completed")
    latest = (project.root / "models" / "LATEST").read_text().strip()
    job = read_json(project.root / "models" / latest / "metadata.json")["job"]
    assert (job["billable_seconds"], job["training_seconds"], job["spot"]) == (40, 120, True)
    stub.assert_no_pending_responses()


def test_a_role_without_pass_role_says_which_permission_is_missing(project, stub):
    """AccessDenied on iam:PassRole from CreateTrainingJob: Error: naming the role and the foundation policy."""
    stub.add_client_error("create_training_job", service_error_code="AccessDeniedException",
                          service_message=PASS_ROLE, http_status_code=400)
    code, _, err = project.run("train")
    assert code == 1
    assert "Error: starting SageMaker training job" in err and "AccessDeniedException" in err
    assert "needs iam:PassRole on arn:aws:iam::123456789012:role/test-project-sagemaker-jobs" in err
    assert "infra/foundation.yml" in err and not (project.root / "models").exists()


def test_a_failed_processing_job_leaves_no_report(project, stub):
    """validate as a job that fails: Error: with ExitMessage, exit 1, no validation.json."""
    stub.add_response("create_processing_job", {"ProcessingJobArn": ARN.replace("training", "processing")})
    stub.add_response("describe_processing_job", {
        "ProcessingJobName": "test-project-validate-1", "ProcessingJobArn": ARN, "ProcessingJobStatus": "Failed",
        "ExitMessage": "Error: DataError: data shard: cannot read part-0001.csv", "CreationTime": NOW,
        "FailureReason": "AlgorithmError: See job logs for more information",
        "AppSpecification": {"ImageUri": "image"}, "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}}})
    (project.root / "reports").mkdir(exist_ok=True)
    (project.root / "reports" / "validation.json").write_text("{}")  # a stale report from an earlier run
    code, _, err = project.run("validate")
    assert code == 1 and "processing job" in err and "AlgorithmError" in err
    assert not (project.root / "reports" / "validation.json").exists()


class _Running:
    """A SageMaker client whose job never finishes: records stop calls."""

    def __init__(self):
        self.meta = boto3.client("sagemaker").meta
        self.stopped: list[str] = []

    def create_training_job(self, **request):
        """Accept the request."""
        return {"TrainingJobArn": ARN.replace("test-project-train-1", request["TrainingJobName"])}

    def describe_training_job(self, TrainingJobName):  # pylint: disable=invalid-name  # boto3's keyword
        """Always still training."""
        return training("InProgress", [("Training", "")], TrainingJobName=TrainingJobName)

    def stop_training_job(self, TrainingJobName):  # pylint: disable=invalid-name  # boto3's keyword
        """Record the stop."""
        self.stopped.append(TrainingJobName)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_cancelled_command_stops_its_job(project, moto, monkeypatch, signum):
    """SIGTERM or SIGINT (a cancelled workflow) while following: StopTrainingJob is called, exit 130, no model."""
    use_moto(monkeypatch, moto)
    monkeypatch.setenv("MLOPS_JOB_POLL_SECONDS", "0.05")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    configure(project)
    fake = _Running()
    connect = jobs.connect

    def connect_fake(config):
        aws = connect(config)
        aws.clients["sagemaker"] = fake
        return aws

    monkeypatch.setattr(jobs, "connect", connect_fake)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signum))
    timer.start()
    try:
        code, out, err = project.run("train")
    finally:
        timer.cancel()
    assert code == 130, out + err
    assert len(fake.stopped) == 1 and fake.stopped[0].startswith("test-project-train-")
    assert f"{signal.Signals(signum).name} received" in err and "Stopping SageMaker training job" in out
    assert not (project.root / "models").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


def test_no_credentials_is_an_error_before_any_job(project, monkeypatch, tmp_path):
    """No AWS credentials anywhere: Error: saying how to provide them, exit 1."""
    no_aws(monkeypatch, tmp_path)
    configure(project)
    code, _, err = project.run("train")
    assert code == 1 and "Error: no AWS credentials found" in err and "compute: local" in err


def test_data_not_on_s3_is_an_error(project):
    """A local data.source with compute: sagemaker: Error: upload it to S3 or use compute: local."""
    configure(project)
    config = project.config_path.read_text().replace(f"s3://{BUCKET}/data/", "data/train.csv")
    project.config_path.write_text(config)
    for stage in ("train", "validate"):
        code, _, err = project.run(stage)
        assert code == 1 and "data.source is 'data/train.csv'" in err and "not an s3:// prefix" in err


def test_an_unknown_instance_type_is_refused_with_the_nearest_names(project, moto, monkeypatch):
    """ml.m5.huge is no SageMaker instance type: Error: with suggestions, before anything is uploaded."""
    use_moto(monkeypatch, moto)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    configure(project, instance_type="ml.m5.huge")
    code, _, err = project.run("train")
    assert code == 1 and "'ml.m5.huge' is not a SageMaker training instance type; did you mean" in err
    assert "ml.m5." in err.split("did you mean")[1]
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)


def test_pins_the_image_python_cannot_install_are_refused_before_any_job(project, monkeypatch, tmp_path):
    """The image's Python cannot install a pin: Error: naming it, before credentials are even looked at."""
    no_aws(monkeypatch, tmp_path)
    configure(project)
    conflict = ["numpy 9.0 (Requires-Python >=3.14)"]
    monkeypatch.setattr("mlops.images.python_conflicts",
                        lambda libraries, python: conflict if "numpy" in libraries else [])
    code, _, err = project.run("train")
    assert code == 1 and "runs Python 3.12, which cannot install numpy 9.0 (Requires-Python >=3.14)" in err


def test_a_role_without_create_training_job_is_told_so_not_about_pass_role(project, stub):
    """AccessDenied on sagemaker:CreateTrainingJob itself: Error: names the run-jobs policy, not iam:PassRole."""
    stub.add_client_error("create_training_job", service_error_code="AccessDeniedException", http_status_code=400,
                          service_message=PASS_ROLE.replace("iam:PassRole", "sagemaker:CreateTrainingJob"))
    code, _, err = project.run("train")
    assert code == 1 and "lacks the permission above" in err and "needs iam:PassRole" not in err
