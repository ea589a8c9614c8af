"""Inside a SageMaker job: the container side of ``compute: sagemaker`` (``python mlops_job.py <task>``).

Input: SageMaker's container layout under ``$MLOPS_SM_ROOT`` (default ``/opt/ml``; the ``SM_*``
variables of the training toolkit win where set): ``input/config/hyperparameters.json``,
``input/data/<channel>/`` (training), ``processing/input/<name>/`` (processing, files sharded by S3
key), ``config/resourceconfig.json`` (this host); the code archive :mod:`mlops.jobs` uploaded
(this package, ``requirements.txt``, ``project/mlops.yaml``, ``project/schema.yaml``,
``project/job.json``). Output:

- ``train``: this package's own train stage (``python -m mlops train``, the command ``make train``
  runs) on the ``train`` channel, writing ``models/<version>/`` into ``/opt/ml/model`` (SageMaker
  uploads it as ``model.tar.gz``), and into ``/opt/ml/checkpoints`` when spot training has one, so
  a restart after an interruption reuses a finished model instead of fitting again;
- ``shard``: this host's mergeable statistics (:mod:`mlops.shards`) for ``validate`` or ``drift``
  in ``processing/output/<host>/``;
- ``compare``: ``make compare``'s result (:func:`compare_here`) in ``processing/output/<host>/``.

A staged data manifest (:mod:`mlops.job_inputs`, the ``manifest`` input or channel) is what the
stage reads as its data (:func:`data_source`).

A failure writes its ``Error:`` message to ``output/failure``, which SageMaker reports as the
job's FailureReason, and exits non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from pathlib import Path

CODE = Path(__file__).resolve().parents[1]  # the archive's root: mlops/, project/, requirements.txt
IN_JOB = "MLOPS_IN_JOB"  # set inside a job: the stages run locally there (mlops.jobs.wanted)
MANIFEST = "mlops-manifest.json"  # a data manifest staged for the job (mlops.job_inputs)


def root() -> Path:
    """SageMaker's container root (``/opt/ml``, or ``$MLOPS_SM_ROOT`` for tests and local runs)."""
    return Path(os.environ.get("MLOPS_SM_ROOT", "/opt/ml"))


def hyperparameters() -> dict:
    """The job's hyperparameters: ``$SM_HPS`` (training toolkit) or ``input/config/hyperparameters.json``."""
    if os.environ.get("SM_HPS"):
        return json.loads(os.environ["SM_HPS"])
    path = root() / "input" / "config" / "hyperparameters.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def current_host() -> str:
    """This instance's name (``algo-1``, ...), from ``$SM_CURRENT_HOST`` or ``config/resourceconfig.json``."""
    if os.environ.get("SM_CURRENT_HOST"):
        return os.environ["SM_CURRENT_HOST"]
    path = root() / "config" / "resourceconfig.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8")).get("current_host", "algo-1")
    return "algo-1"


def data_source(data: Path, manifest: Path, *, sharded: bool = False) -> str | None:
    """What the stage reads as ``--data``: a staged data manifest (:mod:`mlops.job_inputs`), its files made
    absolute, else every file of ``data``; None when this host got no files.

    ``sharded``: the files are sharded by S3 key across instances, so the manifest is cut to this host's files.
    """
    listed = manifest / MANIFEST
    if not listed.is_file():
        return f"{data}/**/*" if any(p.is_file() for p in data.rglob("*")) else None
    record = json.loads(listed.read_text(encoding="utf-8"))
    files = [{**entry, "uri": str(data / entry["uri"])} for entry in record["files"]
             if not sharded or (data / entry["uri"]).is_file()]
    if not files:
        return None
    out = Path(tempfile.mkdtemp(prefix="mlops-job-data-")) / MANIFEST
    out.write_text(json.dumps({**record, "files": files}), encoding="utf-8")
    return str(out)


def _fail(message: str) -> int:
    output = Path(os.environ.get("SM_OUTPUT_DIR", root() / "output"))
    output.mkdir(parents=True, exist_ok=True)
    for name in ("failure", "message"):  # training's FailureReason, processing's ExitMessage (1 KB each)
        (output / name).write_text(message[-1000:], encoding="utf-8")
    print(message, file=sys.stderr, flush=True)
    return 1


def _stage(command: list[str], env: dict) -> tuple[int, list[str]]:
    """Run ``python -m mlops <command>``, its output passed through to the job's log; (exit code, last lines)."""
    tail: deque[str] = deque(maxlen=20)
    with subprocess.Popen([sys.executable, "-m", "mlops", "--config", str(CODE / "project" / "mlops.yaml"),
                           *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            tail.append(line.rstrip())
    return process.returncode, list(tail)


def train_in_container() -> int:
    """Train on the ``train`` channel into the model folder (SM_MODEL_DIR); reuse a checkpointed model."""
    model_dir = Path(os.environ.get("SM_MODEL_DIR", root() / "model"))
    channel = Path(os.environ.get("SM_CHANNEL_TRAIN", root() / "input" / "data" / "train"))
    source = data_source(channel, Path(os.environ.get("SM_CHANNEL_MANIFEST", root() / "input" / "data" / "manifest")))
    checkpoints = root() / "checkpoints"
    if (checkpoints / "LATEST").is_file():
        print(f"spot restart: reusing the model finished before the interruption ({checkpoints})", flush=True)
        shutil.copytree(checkpoints, model_dir, dirs_exist_ok=True)
        return 0
    env = {**os.environ, IN_JOB: "1", "MLOPS_MODELS_DIR": str(model_dir), "PYTHONPATH": str(CODE),
           "MLOPS_REPORTS_DIR": str(root() / "output" / "data" / "reports")}
    env.pop("MLOPS_FROM_MAKE", None)
    code, tail = _stage(["train", "--data", source or f"{channel}/**/*"], env)
    if code:
        first = next((i for i, line in enumerate(tail) if line.startswith("Error:")), max(len(tail) - 5, 0))
        return _fail("\n".join(tail[first:]) or f"python -m mlops train exited {code}")
    if checkpoints.is_dir():
        shutil.copytree(model_dir, checkpoints, dirs_exist_ok=True)
    return 0


def _side(name: str):
    """The frame of this host's files of every input named ``name*`` (``reference0``, ...), or None if it got none."""
    from mlops.data import load  # pylint: disable=import-outside-toplevel  # polars only once installed

    base = root() / "processing" / "input"
    if not any(p.is_file() for folder in base.glob(f"{name}*") for p in folder.rglob("*")):
        return None  # more instances than files: this shard got none
    return load(f"{base}/{name}*/**/*", label=f"{name} shard").frame


def shard(task: str) -> int:
    """This host's statistics for ``validate`` or ``drift`` into ``processing/output/<host>/``."""
    # pylint: disable=import-outside-toplevel  # the pins are installed by mlops_job.py before this runs
    from mlops.config import load_config
    from mlops.contract import load_contract
    from mlops.shards import drift_shard, validation_shard, write_shard
    from mlops.validation import required_columns

    spec = json.loads((CODE / "project" / "job.json").read_text(encoding="utf-8"))
    out = root() / "processing" / "output" / current_host()
    if task == "validate":
        from mlops.data import load

        config = load_config(CODE / "project" / "mlops.yaml")
        base = root() / "processing" / "input"
        source = data_source(base / "data", base / "manifest", sharded=True)
        frame = None if source is None else load(source, label="data shard").frame
        stats = {"rows": 0, "columns": [], "failures": [], "nulls": {}, "unique": {}} if frame is None else \
            validation_shard(frame, load_contract(config), required_columns(config))
    else:
        stats = drift_shard(_side("reference"), _side("current"), spec["columns"])
    write_shard(stats, out)
    print(f"{task} shard of {current_host()} -> {out}", flush=True)
    return 0


def compare_here() -> int:
    """``make compare``'s scoring on one instance: the data validated, both models scored on its held-out rows
    (:func:`mlops.comparison.compare`, as on the runner), the result in ``processing/output/<host>/compare.json``."""
    # pylint: disable=import-outside-toplevel  # the pins are installed by mlops_job.py before this runs
    from mlops.champion import Champion
    from mlops.comparison import compare
    from mlops.config import load_config
    from mlops.context import Context
    from mlops.io import atomic_write_json

    spec = json.loads((CODE / "project" / "job.json").read_text(encoding="utf-8"))
    config = load_config(CODE / "project" / "mlops.yaml")
    base = root() / "processing" / "input"
    source = data_source(base / "data", base / "manifest")
    if source is None:
        return _fail(f"Error: the job got no data files for {spec['label']}")
    ctx = Context(config, data=source, label=spec["label"])
    dataset = ctx.checked() if config.gates.require_validation else ctx.load()
    champion_dir = base / "models" / "champion"
    champion_dir = champion_dir if champion_dir.is_dir() else None
    result = compare(config, dataset, champion_dir, base / "models" / "challenger",
                     champion=Champion(**spec["champion"], model_dir=champion_dir),
                     validation={**ctx.validated(), "schema_file": config.data.schema_file},
                     schema_diff=spec["schema_diff"])
    atomic_write_json(root() / "processing" / "output" / current_host() / "compare.json", result)
    print(f"compare on {result['test_rows']} held-out rows -> {result['verdict']}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``train`` (script mode passes hyperparameters as ``--name value``), ``shard <validate|drift>`` or
    ``compare``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    task = hyperparameters().get("mlops_task") or (argv[0] if argv and not argv[0].startswith("-") else "train")
    try:
        if task == "train":
            return train_in_container()
        if task == "compare":
            return compare_here()
        if task == "shard":
            return shard(argv[1] if len(argv) > 1 else "drift")
        return _fail(f"Error: unknown job task {task!r}")
    except Exception as exc:  # pylint: disable=broad-exception-caught  # any failure must reach FailureReason
        return _fail(f"Error: {type(exc).__name__}: {exc}")
