"""A stand-in for SageMaker behind moto_server: when moto records a job, run its container entry here and upload
what SageMaker would (model.tar.gz, processing outputs, CloudWatch log lines).

moto 5 marks a job Completed at once and writes nothing: this stand-in, hooked on the boto3 session's
``after-call`` events, does the container's work for real (the uploaded code archive's mlops_job.py
in a folder laid out as /opt/ml) before the launcher looks at the job.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

from test_job_entry import run_entry

from mlops import jobs


class StandIn:
    """Records each create request and plays SageMaker's part for it."""

    def __init__(self, workdir: Path, session):
        self.workdir, self.session = workdir, session
        self.requests: dict[str, dict] = {}
        self.outputs: list = []
        events = session.events
        for operation in ("CreateTrainingJob", "CreateProcessingJob"):
            events.register(f"before-parameter-build.sagemaker.{operation}", self._record)
            events.register(f"after-call.sagemaker.{operation}", self._run)

    def _record(self, params, model, **_):
        self.requests[model.name] = dict(params)

    def _download(self, uri: str, dest: Path) -> list[Path]:
        s3 = self.session.client("s3")
        bucket, prefix = uri.removeprefix("s3://").split("/", 1)
        files = []
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            relative = obj["Key"][len(prefix):].lstrip("/") or Path(obj["Key"]).name
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            files.append(target)
        return files

    def _upload(self, uri: str, body: bytes) -> None:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        self.session.client("s3").put_object(Bucket=bucket, Key=key, Body=body)

    def _log(self, kind: str, stream: str, text: str) -> None:
        logs, group = self.session.client("logs"), jobs.LOG_GROUPS[kind]
        if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in text.splitlines() if line.strip()]
        if events:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def _container(self, name: str, code_uri: str) -> Path:
        root = self.workdir / name
        archive = self._download(code_uri, root / "archive")[0]
        with tarfile.open(archive) as tar:
            tar.extractall(root / "code", filter="data")
        return root

    def _run(self, model, **_):
        request = self.requests[model.name]
        if model.name == "CreateTrainingJob":
            self._train(request)
        else:
            self._process(request)

    def _train(self, request: dict) -> None:
        name = request["TrainingJobName"]
        root = self._container(name, request["HyperParameters"]["sagemaker_submit_directory"])
        for channel in request["InputDataConfig"]:
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"],
                           root / "input" / "data" / channel["ChannelName"])
        (root / "input" / "config").mkdir(parents=True)
        (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(request["HyperParameters"]))
        done = run_entry(root, env=request.get("Environment", {}))
        self.outputs.append(done)
        self._log("training", f"{name}/algo-1-1700000000", done.stdout + done.stderr)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted((root / "model").rglob("*")):
                tar.add(path, arcname=str(path.relative_to(root / "model")), recursive=False)
        self._upload(f"{request['OutputDataConfig']['S3OutputPath']}/{name}/output/model.tar.gz", buffer.getvalue())

    def _process(self, request: dict) -> None:
        name = request["ProcessingJobName"]
        count = request["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
        output = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
        for index in range(count):
            host = f"algo-{index + 1}"
            root = self._container(f"{name}-{host}", inputs["code"]["S3Uri"])
            processing = root / "processing"
            for input_name, spec in inputs.items():
                if input_name == "code":
                    continue
                files = self._download(spec["S3Uri"], processing / "input" / input_name)
                for position, path in enumerate(sorted(files)):  # ShardedByS3Key: each host a share of the keys
                    if spec["S3DataDistributionType"] == "ShardedByS3Key" and position % count != index:
                        path.unlink()
            (root / "config").mkdir()
            (root / "config" / "resourceconfig.json").write_text(json.dumps({"current_host": host}))
            command = request["AppSpecification"]["ContainerEntrypoint"][-1]
            done = run_entry(root, *command.split(jobs.SHIM, 1)[1].split(), env=request.get("Environment", {}))
            self.outputs.append(done)
            self._log("processing", f"{name}/{host}-1700000000", done.stdout + done.stderr)
            for path in (processing / "output").rglob("*"):
                if path.is_file():
                    relative = path.relative_to(processing / "output").as_posix()
                    self._upload(f"{output['S3Uri']}/{relative}", path.read_bytes())
