"""The package served by the 1.9-0 image's own serving stack on Python 3.12, not only by our stand-in.

A fresh venv on the image's Python minor version becomes what the container runs: uv installs
the image's PyPI packages (``IMAGE_PACKAGES``), then sagemaker_containers' own start-up install
runs the image's pip on the package's ``code/`` (``pip install . -r requirements.txt``, replacing
the image's scikit-learn, pandas, numpy and scipy with the pins). Real ``model.tar.gz`` files from
``mlops.package.build`` are unpacked as the container unpacks them, and ``tests/toolkit_driver.py``
serves each through sagemaker_containers' Transformer and Worker with the environment our
CloudFormation Model sets. The venv is built once per requirement set and kept under pytest's
cache folder. Skipped, with the reason, only where no Python 3.12 (or no uv) exists.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import BASE_CONFIG, multiclass_frame, regression_frame
from deploy_helpers import train_version, write_project
from toolkit_venv import ToolkitVenv, clean_environment, find_toolkit, pins_of
from mlops.config import load_config
from mlops.contract import infer_contract, write_contract
from mlops.data import load_training, split
from mlops.lineage import MODEL_FILE
from mlops.metrics import predict
from mlops.model import load_model
from mlops.package import build, unpack
from mlops.scoring import features_of
from mlops.smoke import Answer, held_out_rows, smoke_test
from mlops.stages.datagen import generate

pytestmark = [pytest.mark.toolkit, pytest.mark.xdist_group("toolkit")]

# What the 1.9-0 image has (sagemaker-scikit-learn:1.9-0-cpu-py3, Python 3.12; the versions of
# aws/deep-learning-containers docker/sklearn/1.9-0/uv.lock, read 2026-08-21), the part on PyPI serving uses:
# the single-model chain (sagemaker-containers, sdist with a C extension, and its runtime dependencies),
# the multi-model toolkit, and the data libraries. The container's pip install of code/requirements.txt
# then replaces the image's versions of the libraries it pins, as it does at start. Left out: the
# image's sagemaker-sklearn-container glue (not on PyPI; tests/toolkit_driver.py plays its part),
# multi-model-server (Java), sagemaker-training, nginx.
IMAGE_PACKAGES = (
    "sagemaker-containers==2.8.6.post2",
    "sagemaker-inference==1.5.5",
    "Flask==3.1.3",
    "Werkzeug==3.1.8",
    "gunicorn==26.0.0",
    "gevent==26.5.0",
    "boto3==1.43.46",
    "protobuf==3.20.2",
    "six==1.17.0",
    "retrying==1.3.3",
    "inotify-simple==1.2.1",
    "paramiko==5.0.0",
    "psutil==7.2.2",
    "typing==3.10.0.0",
    "setuptools==80.10.2",
    "pip==26.1.2",
    "scikit-learn==1.9.0",
    "numpy==2.5.1",
    "scipy==1.18.0",
    "pandas==2.2.3",
    "pyarrow==25.0.0",
)
# The image's uv override-dependencies: sagemaker-containers declares flask==1.1.1, the image runs these.
IMAGE_OVERRIDES = ("Flask==3.1.3", "Werkzeug==3.1.8")
ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("toolkit_driver.py")
TOLERANCE = 1e-6
# The image's own ENV lines (docker/sklearn/1.9-0/Dockerfile) that the serving chain can read.
IMAGE_ENV = {"SAGEMAKER_SKLEARN_VERSION": "1.9-0", "SM_MODEL_DIR": "/opt/ml/model",
             "SAGEMAKER_SERVING_MODULE": "sagemaker_sklearn_container.serving:main"}
REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors  # PyYAML's loader hierarchy
    """Reads CloudFormation's short tags (``!Ref X`` becomes ``{"Ref": "X"}``)."""


def _short_tag(loader, tag: str, node):
    if isinstance(node, yaml.ScalarNode):
        return {tag: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {tag: loader.construct_sequence(node, deep=True)}
    return {tag: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _short_tag)


def _value(value, refs: dict, conditions: dict):
    """A template value with Ref and If resolved; None for AWS::NoValue."""
    if isinstance(value, dict) and "Ref" in value:
        return None if value["Ref"] == "AWS::NoValue" else refs[value["Ref"]]
    if isinstance(value, dict) and ("If" in value or "Fn::If" in value):
        name, when_true, when_false = value.get("If") or value["Fn::If"]
        return _value(when_true if conditions[name] else when_false, refs, conditions)
    return str(value)


def container_environment(base: Path, version: str, digest: str, vendored: bool = False) -> dict:
    """The serving container's variables: infra/serving.yml's Model Environment and the image's, /opt/ml at ``base``."""
    template = yaml.load((ROOT / "infra" / "serving.yml").read_text(encoding="utf-8"), Loader=_CfnLoader)
    refs = {"AWS::Region": REGION, "ModelVersion": version, "PackageDigest": digest}
    declared = template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["Environment"]
    resolved = {name: _value(value, refs, {"IsVendored": vendored}) for name, value in declared.items()}
    values = {name: value for name, value in resolved.items() if value is not None}
    values = {**IMAGE_ENV, **values}
    values = {name: value.replace("/opt/ml", str(base)) for name, value in values.items()}
    return {**values, "SAGEMAKER_BASE_DIR": str(base)}  # the one addition: where /opt/ml is here


class Chain:
    """A toolkit_driver.py process serving one unpacked package: requests in, answers out."""

    def __init__(self, venv: ToolkitVenv, base: Path, environment: dict):
        self.base = base
        # pylint: disable-next=consider-using-with  # closed in close(), with the process
        self._log = tempfile.NamedTemporaryFile("w+", prefix="toolkit-driver-", suffix=".log")
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with  # ended in close()
            [str(venv.python), str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, cwd=base, env={**clean_environment(), **environment})
        self.ready: dict = {}

    def wait_ready(self, timeout: float = 300) -> dict:
        """The driver's first line: versions, start-up time, the response class our output_fn picked."""
        self.ready = self._answer(timeout)
        assert self.ready.get("ready"), f"the chain did not start: {self.ready.get('error')}\n{self.log()}"
        return self.ready

    def log(self) -> str:
        """What the driver and the toolkit logged (stderr)."""
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8")[-4000:]

    def _answer(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, f"the toolkit driver said nothing for {timeout} s; its log:\n{self.log()}"
        line = self.process.stdout.readline()
        assert line, f"the toolkit driver exited with {self.process.poll()}; its log:\n{self.log()}"
        return json.loads(line)

    def call(self, body: str = "", content_type: str | None = "application/json", accept: str | None = None,
             method: str = "POST", path: str = "/invocations") -> dict:
        """One request through the chain: its status, Content-Type and body."""
        headers = {k: v for k, v in (("Content-Type", content_type), ("Accept", accept)) if v is not None}
        self.process.stdin.write(json.dumps({"method": method, "path": path, "headers": headers, "body": body}) + "\n")
        self.process.stdin.flush()
        return self._answer(60)

    def invoke(self, body: bytes, content_type: str) -> Answer:
        """The smoke test's invoker: POST /invocations with Accept application/json, as InvokeEndpoint does."""
        started = time.perf_counter()
        reply = self.call(body.decode("utf-8"), content_type, "application/json")
        return Answer(reply["status"], reply["body"], time.perf_counter() - started)

    def close(self) -> None:
        """End the driver (stdin closed) and drop its log."""
        self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._log.close()


def _served(config, root: Path, sha: str) -> dict:
    """Train a version, package it, unpack it where the container would (<base>/model), and its held-out rows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLOPS_MODELS_DIR", raising=False)
        version = train_version(config, sha, patch)
    package = build(config, config.models_dir / version, root / "package")
    base = root / "opt-ml"
    model_dir = unpack(package.tarball, base / "model")
    metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    parts = split(config, load_training(config).frame, features_of(metadata))
    rows = held_out_rows(config, metadata, len(parts.x_test))
    # What `make evaluate` computes on these rows: mlops.metrics.predict on the split's held-out rows.
    local = predict(load_model(config.models_dir / version / MODEL_FILE), parts.x_test, parts.y_test, config.task)
    return {"config": config, "package": package, "base": base, "rows": rows, "local": local,
            "features": list(parts.x_test.columns),
            "environment": container_environment(base, version, package.content_digest)}


def _project(root: Path, frame, task: str, data: dict, split_rule: dict | None, model: dict):
    """A project on ``frame`` with its inferred contract."""
    (root / "data").mkdir(parents=True)
    frame.to_csv(root / "data" / "train.csv", index=False)
    (root / "mlops.yaml").write_text(yaml.safe_dump({
        "project": f"toolkit-{task}", "task": task, "model": model,
        "data": {**data, "source": "data/train.csv"},
        "split": split_rule or {"method": "random", "test_size": 0.3, "seed": 5},
    }), encoding="utf-8")
    config = load_config(root / "mlops.yaml")
    write_contract(infer_contract(config, load_training(config).frame), config.resolve("schema.yaml"))
    return config


@pytest.fixture(scope="module", name="loan")
def _loan(tmp_path_factory):
    """The serving tests' binary loan model (logistic regression), packaged and unpacked as the container does."""
    root = tmp_path_factory.mktemp("toolkit-loan")
    return _served(load_config(write_project(root / "project")), root, "a1b2c3d")


@pytest.fixture(scope="module", name="toolkit", autouse=True)
def _toolkit():
    """A Python 3.12 and uv, looked for before anything is trained; else every test here skips, saying why."""
    toolkit = find_toolkit()
    if isinstance(toolkit, str):
        pytest.skip(toolkit)
    return toolkit


@pytest.fixture(scope="module", name="venv")
def _venv(request, toolkit, loan):
    """The Python 3.12 venv with the image's serving toolkit and the package's pins (built once, then reused)."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider: a fresh build
    if cache is not None:
        folder = cache.mkdir("toolkit-venv")
    else:
        folder = request.getfixturevalue("tmp_path_factory").mktemp("toolkit-venv")
    venv = toolkit.venv(IMAGE_PACKAGES, IMAGE_OVERRIDES, loan["base"] / "model" / "code", folder)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:  # absent in pytest-xdist workers: the summary is in -rP output
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{venv.summary()}")
    return venv


@pytest.fixture(scope="module", name="chain")
def _chain(venv, loan):
    """The loan package served through sagemaker_containers' Transformer and Worker."""
    chain = Chain(venv, loan["base"], loan["environment"])
    try:
        chain.wait_ready()
        yield chain
    finally:
        chain.close()


def _csv(rows, features, header: bool = True) -> str:
    lines = [",".join("" if r[f] is None else str(r[f]) for f in features) for r in rows.records]
    return "\n".join(([",".join(features)] if header else []) + lines) + "\n"


def test_the_venv_is_the_images_python_toolkit_and_the_packages_pins(venv, chain, loan):
    """The chain runs on Python 3.12 with the image's toolkit versions and exactly code/requirements.txt's pins."""
    ready = chain.ready
    assert ready["python"].startswith("3.12.")
    pinned = pins_of((loan["base"] / "model" / "code" / "requirements.txt").read_text(encoding="utf-8"))
    image = pins_of("\n".join(IMAGE_PACKAGES))
    expected = {**image, **pinned}
    installed = ready["versions"]
    assert {name: installed.get(name) for name in expected} == expected
    assert "inference" not in installed  # the install step's copy is removed: code/ itself is served
    log = (venv.folder / "container-install.log").read_text(encoding="utf-8")
    replaced = [f"{name}-{version}" for name, version in pinned.items() if image.get(name) not in (None, version)]
    assert replaced and all(name in log.split("Successfully installed")[-1] for name in replaced), log[-2000:]
    assert ready["response_class"] == "sagemaker_containers._worker.Response"
    print(venv.summary(), f"driver start-up {ready['startup_seconds']} s")


def test_json_csv_and_json_lines_answer_200_with_the_pipelines_own_predictions(chain, loan):
    """Every held-out row (make evaluate's) through the real chain: 200, JSON, probabilities equal to 1e-6."""
    rows, local = loan["rows"], loan["local"]
    answers = {
        "json": chain.call(json.dumps({"instances": rows.records})),
        "csv with header": chain.call(_csv(rows, loan["features"]), "text/csv"),
        "csv, charset (bytes)": chain.call(_csv(rows, loan["features"]), "text/csv; charset=utf-8"),
        "headerless csv": chain.call(_csv(rows, loan["features"], header=False), "text/csv"),
        "json lines": chain.call("\n".join(json.dumps(r) for r in rows.records), "application/jsonlines"),
        "accept */*": chain.call(json.dumps(rows.records), accept="*/*"),
    }
    for kind, reply in answers.items():
        assert (reply["status"], reply["content_type"]) == (200, "application/json"), (kind, reply["body"][:300])
        answer = json.loads(reply["body"])
        assert answer["model_version"] == loan["package"].version and answer["rows"] == len(rows.records) == 200
        assert answer["classes"] == list(local.classes)
        np.testing.assert_allclose(answer["probabilities"], local.proba, atol=TOLERANCE, rtol=0, err_msg=kind)
        assert answer["predictions"] == local.y_pred.tolist(), kind
    assert len({reply["body"] for reply in answers.values()}) == 1


def test_a_row_breaking_the_contract_is_a_400_with_our_body_not_a_500(chain, loan):
    """The toolkit passes our 400 and its JSON error body through; a malformed body is a 400 too."""
    rows = [dict(r) for r in loan["rows"].records[:3]]
    rows[1]["age"] = -7
    reply = chain.call(json.dumps({"instances": rows}))
    assert (reply["status"], reply["content_type"]) == (400, "application/json"), reply["body"][:300]
    answer = json.loads(reply["body"])
    assert "1 row(s) break the data contract" in answer["error"] and "predictions" not in answer
    assert answer["errors"] == [{"row": 1, "column": "age", "value": -7, "problem": "below the minimum 0"}]
    malformed = chain.call("{not json")
    assert malformed["status"] == 400 and "not valid JSON" in json.loads(malformed["body"])["error"]
    assert chain.call(_csv(loan["rows"], loan["features"])[:-30] + ",1,2,3\n", "text/csv")["status"] == 400


def test_unsupported_content_type_is_415_and_accept_406_through_the_toolkit(chain, loan):
    """Statuses the toolkit would turn into 500 were they exceptions arrive as our 415 and 406, with JSON bodies."""
    body = json.dumps(loan["rows"].records[:2])
    for reply, status in ((chain.call(body, "application/x-parquet"), 415), (chain.call(body, accept="text/csv"), 406)):
        assert (reply["status"], reply["content_type"]) == (status, "application/json")
        assert json.loads(reply["body"])["error"]
    default = chain.call(body, content_type=None)  # no Content-Type: the toolkit assumes application/json
    assert default["status"] == 200 and len(json.loads(default["body"])["predictions"]) == 2
    assert chain.call(method="GET", path="/ping", content_type=None)["status"] == 200
    assert chain.call(method="GET", path="/execution-parameters", content_type=None)["status"] == 404


def test_the_deploys_smoke_test_passes_against_the_toolkit(chain, loan):
    """mlops.smoke.smoke_test, the deploy's last gate, passes with the chain as its endpoint."""
    config = loan["config"]
    metadata = json.loads((loan["base"] / "model" / "metadata.json").read_text(encoding="utf-8"))
    rows = held_out_rows(config, metadata, config.deploy.smoke_rows)
    evidence = smoke_test(chain.invoke, "sagemaker-containers 2.8.6.post2 on Python 3.12", loan["package"].tarball,
                          rows, config.deploy.smoke_max_latency_ms)
    assert evidence["rows"] == config.deploy.smoke_rows and evidence["bad_row_status"] == 400


# One estimator per task kind, each with other fitted types for skops to carry across versions.
KINDS = {
    "binary": (lambda: generate(600, seed=4), BASE_CONFIG["data"], BASE_CONFIG["split"],
               {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 30}}),
    "multiclass": (lambda: multiclass_frame(400, seed=2), {"target": "label", "id_column": "row_id"}, None,
                   {"estimator": "sklearn.ensemble.RandomForestClassifier",
                    "params": {"n_estimators": 25, "random_state": 0}}),
    "regression": (lambda: regression_frame(300, seed=3), {"target": "price", "id_column": "house_id"}, None,
                   {"estimator": "sklearn.ensemble.HistGradientBoostingRegressor", "params": {"max_iter": 30}}),
}


@pytest.fixture(scope="module", name="kinds")
def _kinds(venv, tmp_path_factory):
    """One model per task kind trained here on Python 3.11, each served by its own chain (started together)."""
    served, chains = {}, {}
    for number, (kind, (frame, data, split_rule, model)) in enumerate(KINDS.items()):
        root = tmp_path_factory.mktemp(f"toolkit-{kind}")
        project = _project(root / "project", frame(), kind, data, split_rule, model)
        served[kind] = _served(project, root, f"f00d{number:03d}")
        chains[kind] = Chain(venv, served[kind]["base"], served[kind]["environment"])
    try:
        for chain in chains.values():
            chain.wait_ready()
        yield {kind: (served[kind], chains[kind]) for kind in KINDS}
    finally:
        for chain in chains.values():
            chain.process.stdin.close()  # all end together; close() then waits for each
        for chain in chains.values():
            chain.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_model_trained_on_311_loads_and_predicts_the_same_on_312(kinds, kind):
    """skops loads a model trained on 3.11 in the 3.12 chain, which answers as the 3.11 pipeline does."""
    served, chain = kinds[kind]
    assert sys.version_info[:2] == (3, 11) and chain.ready["python"].startswith("3.12.")
    rows, local = served["rows"], served["local"]
    reply = chain.call(json.dumps({"instances": rows.records}))
    assert reply["status"] == 200, reply["body"][:500]
    answer = json.loads(reply["body"])
    if kind == "regression":
        assert "classes" not in answer
        np.testing.assert_allclose(answer["predictions"], local.y_pred, rtol=TOLERANCE, atol=TOLERANCE)
    else:
        assert answer["classes"] == list(local.classes)
        np.testing.assert_allclose(answer["probabilities"], local.proba, atol=TOLERANCE, rtol=0)
        assert answer["predictions"] == local.y_pred.tolist()


def test_under_the_multi_model_server_errors_are_its_toolkit_errors(venv, loan):
    """Under SAGEMAKER_MULTI_MODEL, sagemaker_inference's Transformer answers our 200 and 400 (the image has both)."""
    chain = Chain(venv, loan["base"], {**loan["environment"], "SAGEMAKER_MULTI_MODEL": "true"})
    try:
        chain.wait_ready()
        good = chain.call(json.dumps({"instances": loan["rows"].records[:5]}))
        assert (good["status"], good["content_type"]) == (200, "application/json"), good["body"][:300]
        np.testing.assert_allclose(json.loads(good["body"])["probabilities"], loan["local"].proba[:5], atol=TOLERANCE)
        bad = chain.call("{not json")
        assert bad["status"] == 400, bad["body"][:300]
        # The toolkit appends its traceback to the message: the error body is our JSON, then a newline and text.
        first, _, trace = bad["body"].partition("\n")
        assert "not valid JSON" in json.loads(first)["error"] and "Traceback" in trace
        assert chain.ready["response_class"] == "builtins.tuple"
    finally:
        chain.close()
