"""Captured traffic: SageMaker's data-capture format written and read back, drift and labels on it.

The fixture (tests/fixtures/capture/) follows AWS's documentation, not our writer. The local
server stands in for SageMaker's capture (moto never writes capture files): it writes the same
format to a folder or to a moto_server bucket, and the drift check reads it back.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import BASE_CONFIG
from mlops.capture import Writer, event, list_window, read_events, window_start
from mlops.capture_decode import decode
from mlops.config import load_config
from mlops.lineage import resolve_model_dir
from mlops.package import build
from mlops.server import INFERENCE_ID_HEADER, running
from mlops.stages.datagen import generate
from mlops.stages.drift import EXIT_DRIFT

FIXTURE = Path(__file__).parent / "fixtures" / "capture" / "sagemaker.jsonl"
FEATURES = ["age", "income", "grade"]
KEY = re.compile(r"/[a-z0-9-]+/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$")


def test_the_documented_format_decodes_into_rows_and_answers():
    """Every documented encoding (CSV in feature order, CSV with a header, JSON, BASE64) and an error answer."""
    traffic = decode(read_events([str(FIXTURE)]), FEATURES, set(FEATURES), regression=False)
    rows = traffic.rows
    assert rows.select(FEATURES).rows() == [("41", "52000.5", "B"), ("35", "61000", "A"), ("58", None, "C"),
                                            ("29", "38000", "D"), ("63", "90500", "A")]
    assert rows.get_column("_inference_id").to_list() == [None, "req-0002", "req-0002", "req-0003", None]
    assert rows.get_column("_prediction").to_list() == ["0", "0", "1", "1", "0"]
    assert rows.get_column("_proba").to_list()[2] == [0.3, 0.7]
    assert traffic.requests == {"20261201T000000Z-abc1234": {"requests": 4, "rows": 5, "errors": 1}}
    assert not traffic.problems


def _line(data: str, encoding: str, content_type: str = "text/csv") -> str:
    answer = json.dumps({"model_version": "v1", "predictions": [0], "classes": [0, 1], "probabilities": [[0.9, 0.1]]})
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": answer,
                           "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-01T10:00:00Z"}, "eventVersion": "0"})


def test_bad_events_are_counted_by_reason_never_dropped_silently(tmp_path):
    """A truncated line, base64 that does not decode, an unknown content type, a row of the wrong width."""
    good = _line("41,52000,B", "CSV")
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([
        good, good[: len(good) // 2],  # truncated: the writer died mid-line
        _line("not base64!!", "BASE64"),
        _line(base64.b64encode(b"\x93NUMPY").decode(), "BASE64", "application/x-npy"),
        _line("41,52000", "CSV"),
    ]) + "\n", encoding="utf-8")
    traffic = decode(read_events([str(path)]), FEATURES, set(FEATURES), regression=False)
    assert traffic.rows.height == 1
    reasons = {p["problem"]: p["events"] for p in traffic.summary()}
    assert reasons == {
        "a line that is not a JSON capture event (truncated or not JSON)": 1,
        "request: BASE64 data that does not decode": 1,
        "request: content type 'application/x-npy' is neither CSV nor JSON (captured as BASE64)": 1,
        "CSV rows whose field count is not the header's (or the features')": 1,
    }
    assert "mixed.jsonl line 2" in traffic.summary()[0]["examples"][0]


def test_writer_keys_follow_sagemakers_layout_and_window(tmp_path):
    """Files land under <endpoint>/AllTraffic/yyyy/mm/dd/hh/; the window is chosen by that hour."""
    writer = Writer(str(tmp_path / "capture"), "demo-serve")
    writer.record(b"41,52000,B", "text/csv", b'{"predictions": [0]}', "application/json", inference_id="abc")
    files = list_window(str(tmp_path / "capture"), window_start(1))
    assert len(files) == 1 and KEY.search(files[0].replace("\\", "/")), files
    line = json.loads(Path(files[0]).read_text(encoding="utf-8"))
    assert line["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                    "data": "41,52000,B", "encoding": "CSV"}
    assert line["eventMetadata"]["inferenceId"] == "abc" and line["eventVersion"] == "0"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", line["eventMetadata"]["inferenceTime"])
    old = tmp_path / "capture/demo-serve/AllTraffic/2020/01/01/00/00-00-000-x.jsonl"
    old.parent.mkdir(parents=True)
    old.write_text(FIXTURE.read_text(encoding="utf-8"), encoding="utf-8")
    assert list_window(str(tmp_path / "capture"), window_start(1)) == files  # 2020 is outside the window
    binary = event(b"\xff\x00", "application/octet-stream", b"{}", "application/json")
    assert binary["captureData"]["endpointInput"]["encoding"] == "BASE64"


def _serve(project, rows, capture: Writer, batch: int = 50, json_every: int = 3) -> None:
    """Send ``rows`` to a local server of the trained model, CSV with a header and JSON in turn."""
    config = load_config(project.config_path)
    package = build(config, resolve_model_dir(config, None), project.root / "package")
    frame = rows.drop(columns=["default"])
    with running(package.tarball, capture=capture) as server:
        for number, start in enumerate(range(0, len(frame), batch)):
            part = frame.iloc[start:start + batch]
            if number % json_every == 2:
                body = json.dumps({"instances": json.loads(part.to_json(orient="records", date_format="iso"))}).encode()
                kind = "application/json"
            else:
                body, kind = part.to_csv(index=False).encode(), "text/csv"
            headers = {"Content-Type": kind, INFERENCE_ID_HEADER: f"batch-{number}"}
            request = urllib.request.Request(f"{server.url}/invocations", data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:  # nosec: 127.0.0.1
                assert response.status == 200


def _capture_config(project, **drift) -> None:
    config = copy.deepcopy(BASE_CONFIG)
    config["drift"] = {"current": "capture", **drift}
    config["labels"] = {"source": "data/labels.csv"}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


@pytest.fixture(name="served")
def _served(project):
    """A trained project whose endpoint served a drifted month; its capture under capture/."""
    assert project.run("train")[0] == 0
    assert project.run("evaluate")[0] == 0
    current = generate(600, seed=40, start="2024-07-01", days=31, drift=True)
    _serve(project, current, Writer(str(project.root / "capture"), "test-project-serve"))
    return current


def test_drift_on_captured_traffic_with_labels(project, served):
    """drift.current: capture reads what was served: column drift, prediction drift, performance with labels."""
    served[["loan_id", "default"]].rename(columns={"loan_id": "id", "default": "label"}).to_csv(
        project.root / "data/labels.csv", index=False)
    _capture_config(project)
    code, out, _ = project.run("drift", "--no-html")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert code == EXIT_DRIFT, out
    capture = record["capture"]
    assert capture["events"] == 12 and capture["rows"] == 600 and capture["unusable_events"] == 0
    assert record["current"]["rows"] == 600 and record["dataset_drift"]["drifted"]
    assert record["prediction_drift"]["column"] == "prediction"
    performance = record["performance"]
    assert performance["labels"]["coverage"] == 1.0 and performance["labels"]["matched_by"].startswith("data.id_column")
    assert performance["ci_low"] <= performance["current"] <= performance["ci_high"]
    assert "dataset drift" in record["triggers"]
    markdown = (project.root / "reports/drift.md").read_text()
    assert "Captured traffic" in markdown and "coverage 100.0%" in markdown and "Retrain triggered by" in markdown


def test_a_label_only_drop_is_the_trigger(project):
    """Same feature distribution, labels that no longer follow the model: performance drop alone fires."""
    assert project.run("train")[0] == 0
    assert project.run("evaluate")[0] == 0
    current = generate(300, seed=61, start="2024-07-01", days=31)
    _serve(project, current, Writer(str(project.root / "capture"), "test-project-serve"), batch=1, json_every=10**9)
    labels = current[["default"]].assign(id=[f"batch-{i}" for i in range(len(current))])
    labels["label"] = 1 - labels["default"]  # the world changed: every label flipped
    labels[["id", "label"]].to_csv(project.root / "data/labels.csv", index=False)
    config = copy.deepcopy(BASE_CONFIG)
    config["data"].pop("id_column")  # match by the capture's inferenceId
    config["drift"] = {"current": "capture"}
    config["labels"] = {"source": "data/labels.csv"}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    code, out, _ = project.run("drift", "--no-html")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert code == EXIT_DRIFT, out
    assert not record["dataset_drift"]["drifted"]
    assert record["triggers"] == ["performance drop"]
    assert record["performance"]["labels"]["matched_by"] == "the capture's inferenceId"
    assert record["performance"]["ci_high"] < record["performance"]["holdout"]


def test_unmatched_labels_empty_window_and_too_much_bad_traffic(project, served):
    """Labels matching nothing are counted; an empty window decides nothing; mostly bad traffic is an error."""
    del served
    (project.root / "data/labels.csv").write_text("id,label\n999999991,1\n999999992,0\n", encoding="utf-8")
    _capture_config(project)
    code, out, _ = project.run("drift", "--no-html", "--exit-zero")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert code == 0, out
    assert record["performance"]["labels"]["unmatched_labels"] == 2
    assert record["performance"]["note"] == "too few labelled rows to score"

    config = load_config(project.config_path)
    empty = project.root / "nothing"
    empty.mkdir()
    code, out, err = project.run("drift", "--no-html", "--current", f"capture:{empty}")
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert code == 0 and out.startswith("Too little data"), (out, err)
    assert not record["drifted"] and "no retrain" in record["insufficient"]
    assert "too little data" in (project.root / "reports/drift.md").read_text()
    del config

    folder = next((project.root / "capture").rglob("*.jsonl")).parent
    (folder / "bad.jsonl").write_text("\n".join(['{"captureData": {"endpointInput"'] * 40) + "\n", encoding="utf-8")
    code, _, err = project.run("drift", "--no-html")
    assert code == 1
    assert "40 of 52 captured events" in err and "drift.max_invalid_share 0.1" in err


def test_capture_on_a_moto_bucket(moto, monkeypatch):
    """The emulator's stand-in writes to S3 as SageMaker would; drift reads the window from the bucket."""
    import boto3  # pylint: disable=import-outside-toplevel  # AWS tests only

    for key, value in {"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket="cap-bucket")
    writer = Writer("s3://cap-bucket/capture/test-project/prod", "test-project-prod", flush_every=4)
    for number in range(10):
        writer.record(f"age,income,grade\n{30 + number},50000,B".encode(), "text/csv",
                      json.dumps({"model_version": "v1", "predictions": [1], "classes": [0, 1],
                                  "probabilities": [[0.2, 0.8]]}).encode(), "application/json")
    writer.close()
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="cap-bucket")["Contents"]]
    assert len(keys) == 3 and all(k.startswith("capture/test-project/prod/test-project-prod/AllTraffic/") for k in keys)
    files = list_window("s3://cap-bucket/capture/test-project/prod/test-project-prod", window_start(1))
    traffic = decode(read_events(files), FEATURES, set(FEATURES), regression=False)
    assert traffic.rows.height == 10
    assert np.array_equal(np.sort(traffic.rows.get_column("age").cast(int).to_numpy()), np.arange(30, 40))


def test_retrain_trains_on_the_labelled_captured_rows(project, served):
    """A retrain on captured traffic writes the labelled rows beside the manifest and trains on them."""
    labelled = served.iloc[:500]
    labelled[["loan_id", "default"]].rename(columns={"loan_id": "id", "default": "label"}).to_csv(
        project.root / "data/labels.csv", index=False)
    _capture_config(project)
    code, out, err = project.run("retrain")
    assert code == 0, out + err
    manifest = json.loads((project.root / "data/manifest.json").read_text())
    assert [(f["uri"], f["role"], f["rows"]) for f in manifest["files"]] == [
        ("train.csv", "reference", 800), ("../reports/retrain/captured.parquet", "current", 500)]
    import polars as pl  # pylint: disable=import-outside-toplevel  # this test only
    rows = pl.read_parquet(project.root / "reports/retrain/captured.parquet")
    assert sorted(rows.get_column("loan_id").to_list()) == sorted(labelled["loan_id"].tolist())
    assert rows.schema["default"] == pl.Int64 and rows.schema["application_date"] == pl.Datetime("us")
    assert not [c for c in rows.columns if c.startswith("_")]
    assert project.run("validate")[0] == 0  # the merged config trains from exactly these rows


def test_requests_without_the_id_and_time_columns_are_not_contract_breaks(project):
    """The id and time columns are optional in a request: traffic without them is not counted as breaking rows."""
    assert project.run("train")[0] == 0
    current = generate(300, seed=44, start="2024-07-01", days=31).drop(columns=["loan_id", "application_date"])
    _serve(project, current, Writer(str(project.root / "capture"), "test-project-serve"), json_every=10**9)
    _capture_config(project)
    (project.root / "data/labels.csv").write_text("id,label\nnot-a-request,1\n", encoding="utf-8")
    code, out, err = project.run("drift", "--no-html", "--exit-zero")
    assert code == 0, out + err
    record = json.loads((project.root / "reports/drift.json").read_text())
    assert record["capture"]["rows"] == 300 and record["capture"]["invalid_rows"] == 0
    assert record["performance"]["labels"]["matched_by"] == "the capture's inferenceId"
