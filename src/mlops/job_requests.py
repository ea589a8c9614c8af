"""The create requests of ``compute: sagemaker``'s jobs, and the image they run.

Input: the config (``compute``, ``deploy``), the job's name, its code archive's URI, the execution
role, the commit, and its S3 inputs (:mod:`mlops.job_inputs`). Output: the ``CreateTrainingJob``
request (script mode running this package's train stage) and the ``CreateProcessingJob`` request
(this package's ``shard`` or ``compare`` task), as :mod:`mlops.remote` sends them; and the check
that the image's Python can install the suite's pins.
"""

from __future__ import annotations

from mlops import jobs
from mlops.config import Config
from mlops.errors import JobError
from mlops.job_entry import IN_JOB

IMAGE_ROOT = "/opt/ml"


def image(config: Config) -> str:
    """``compute.image_uri``, else the serving image: training and serving share one image and one set of pins."""
    from mlops.images import serving_image  # pylint: disable=import-outside-toplevel  # packaging only here

    return config.compute.image_uri or serving_image(config)


def _environment(sha: str) -> dict:
    return {"MLOPS_GIT_SHA": sha, IN_JOB: "1", "PYTHONUNBUFFERED": "1"}


def training_request(config: Config, *, name: str, inputs: dict[str, str], code_uri: str, role: str,
                     sha: str) -> dict:
    """The CreateTrainingJob request: script mode running this package's train stage on the ``train`` channel
    (``inputs["data"]``), beside a ``manifest`` channel when the data is a staged manifest."""
    compute, out = config.compute, jobs.output_prefix(config)
    stopping = {"MaxRuntimeInSeconds": compute.max_runtime_minutes * 60}
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image(config), "TrainingInputMode": "File"},
        "RoleArn": role,
        "HyperParameters": {"sagemaker_program": jobs.SHIM, "sagemaker_submit_directory": code_uri,
                            "sagemaker_region": config.deploy.region, "sagemaker_container_log_level": "20",
                            "mlops_task": "train"},
        "InputDataConfig": [{"ChannelName": channel, "InputMode": "File", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
            for channel, uri in (("train", inputs["data"]), ("manifest", inputs.get("manifest"))) if uri],
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


# pylint: disable-next=too-many-arguments  # the request's parts, all keywords
def processing_request(config: Config, *, name: str, task: str, inputs: dict[str, str], code_uri: str,
                       role: str, sha: str, sharded: tuple[str, ...] = (), instances: int | None = None) -> dict:
    """The CreateProcessingJob request running ``task``: the inputs named in ``sharded`` split by S3 key across
    ``compute.instance_count`` instances (or ``instances``), every other input copied to each instance."""
    compute, out, root = config.compute, jobs.output_prefix(config), jobs.PROCESSING_ROOT

    def s3_input(input_name: str, uri: str, distribution: str) -> dict:
        return {"InputName": input_name, "S3Input": {
            "S3Uri": uri, "LocalPath": f"{root}/input/{input_name}", "S3DataType": "S3Prefix",
            "S3InputMode": "File", "S3DataDistributionType": distribution}}

    command = f"cd {root}/input/code && tar -xzf sourcedir.tar.gz && exec python3 {jobs.SHIM} {task}"
    return {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": instances or compute.instance_count,
                                                  "InstanceType": compute.instance_type,
                                                  "VolumeSizeInGB": compute.volume_gb}},
        "StoppingCondition": {"MaxRuntimeInSeconds": compute.max_runtime_minutes * 60},
        "AppSpecification": {"ImageUri": image(config), "ContainerEntrypoint": ["/bin/sh", "-c", command]},
        "Environment": _environment(sha),
        "RoleArn": role,
        "ProcessingInputs": [s3_input("code", code_uri, "FullyReplicated")]
        + [s3_input(input_name, uri, "ShardedByS3Key" if input_name in sharded else "FullyReplicated")
           for input_name, uri in inputs.items()],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "shards", "S3Output": {
            "S3Uri": f"{out}/processing/{name}/shards", "LocalPath": f"{root}/output", "S3UploadMode": "EndOfJob"}}]},
        "Tags": jobs.tags(config, task.split()[-1], sha),
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
