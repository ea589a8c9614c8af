"""Data manifests: pinned files with sha256, S3 object versions, and refusal of changed data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlops.data import load
from mlops.errors import DataError
from mlops.io import sha256_file
from mlops.manifest import DataFile, build_manifest, write_manifest
from mlops.s3 import list_objects

CSV_V1 = "id,x\n1,0.5\n2,1.5\n"
CSV_V2 = "id,x\n1,9.5\n2,9.5\n3,9.5\n"


def _entry(path: Path, role: str, rows: int) -> DataFile:
    return DataFile(uri=str(path), role=role, sha256=sha256_file(path), bytes=path.stat().st_size, rows=rows)


def test_local_manifest_loads_exactly_its_files_and_refuses_changes(tmp_path):
    """A manifest as a data source reads its files in order (paths relative to it) and checks each sha256."""
    (tmp_path / "data/a").mkdir(parents=True)
    first, second = tmp_path / "data/a/one.csv", tmp_path / "data/two.csv"
    first.write_text(CSV_V1)
    second.write_text("id,x\n3,2.5\n")
    manifest = tmp_path / "data/manifest.json"
    record = build_manifest(manifest, [_entry(first, "reference", 2), _entry(second, "current", 1)],
                            window={"mode": "reference_plus_current"}, rows=3, created_by="test")
    write_manifest(manifest, record)
    assert [f["uri"] for f in json.loads(manifest.read_text())["files"]] == ["a/one.csv", "two.csv"]
    dataset = load(str(manifest))
    assert dataset.frame.get_column("id").to_list() == [1, 2, 3]
    assert dataset.files == (str(first), str(second))
    assert dataset.fingerprint == hashlib.sha256(first.read_bytes() + second.read_bytes()).hexdigest()

    second.write_text("id,x\n3,2.6\n")
    with pytest.raises(DataError, match="changed since the manifest"):
        load(str(manifest))
    second.unlink()
    with pytest.raises(DataError, match="does not exist"):
        load(str(manifest))


def test_a_json_that_is_not_a_manifest_is_a_clear_error(tmp_path):
    """data.source naming some other JSON file says what a manifest must look like."""
    other = tmp_path / "other.json"
    other.write_text('{"files": []}')
    with pytest.raises(DataError, match="is not a data manifest"):
        load(str(other), label="data.source")


def test_s3_manifest_pins_object_versions(monkeypatch, tmp_path):
    """Listing a versioned bucket records VersionIds; loading fetches that version after an overwrite."""
    moto = pytest.importorskip("moto")
    import boto3  # pylint: disable=import-outside-toplevel  # only this test talks to (mocked) S3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="batches")
        s3.put_bucket_versioning(Bucket="batches", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="batches", Key="prod/2024-07.csv", Body=CSV_V1.encode())
        s3.put_object(Bucket="batches", Key="prod/notes.txt", Body=b"ignored")
        found = list_objects("s3://batches/prod/", (".csv", ".parquet", ".pq"), versions=True)
        assert len(found) == 1
        listed = found[0]
        assert listed["uri"] == "s3://batches/prod/2024-07.csv" and listed["version_id"]
        entry = DataFile(uri=listed["uri"], role="current", sha256=hashlib.sha256(CSV_V1.encode()).hexdigest(),
                         bytes=len(CSV_V1), rows=2, version_id=listed["version_id"], etag=listed["etag"])
        path = tmp_path / "manifest.json"
        record = build_manifest(path, [entry], window={}, rows=2, created_by="test")
        assert record["files"][0]["version_id"] == listed["version_id"]
        assert record["files"][0]["uri"] == "s3://batches/prod/2024-07.csv"

        s3.put_object(Bucket="batches", Key="prod/2024-07.csv", Body=CSV_V2.encode())
        write_manifest(path, record)
        pinned = load(str(path))
        assert pinned.frame.height == 2 and pinned.files == ("s3://batches/prod/2024-07.csv",)
        record["files"][0].pop("version_id")  # without the version, the latest (changed) object is read
        write_manifest(path, record)
        with pytest.raises(DataError, match="changed since the manifest"):
            load(str(path))
