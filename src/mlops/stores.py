"""Where registry objects live: a local folder or an S3 prefix, behind one small interface.

Input: a root folder, or a bucket and prefix (boto3 finds credentials; ``AWS_ENDPOINT_URL``
points it at an emulator). Output: text reads and writes (mutable: the environment pointers),
create-once writes (versions, pass records, releases: ``If-None-Match: *`` on S3, a hard link
on a folder; identical bytes are a no-op, other bytes a :class:`~mlops.errors.DeployError`),
downloads that return the object's version id, listings and printable addresses.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Protocol

from mlops import s3
from mlops.errors import DeployError, ModelError
from mlops.io import atomic_write_text


class Store(Protocol):
    """Where registry objects live: keys are '/'-separated paths under the project prefix."""

    def read_text(self, key: str) -> str | None:
        """The object's text, or None when it does not exist."""

    def write_text(self, key: str, text: str) -> None:
        """Write (or overwrite) an object: pointers only; versions are written with :meth:`create`."""

    def create(self, key: str, data: bytes) -> bool:
        """Write a new object; False when ``key`` already holds exactly ``data``; DeployError for other bytes."""

    def download(self, key: str, path: Path) -> str | None:
        """Copy ``key`` to a local file; return the object's version id (None where there are no versions)."""

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``."""

    def uri(self, key: str) -> str:
        """A printable address of ``key``."""


def _immutable(where: str, old: bytes, new: bytes) -> DeployError:
    return DeployError(
        f"{where} already exists with other bytes (sha256 {hashlib.sha256(old).hexdigest()[:16]}..., this write "
        f"{hashlib.sha256(new).hexdigest()[:16]}...): registered versions are immutable. Train a new version "
        "instead of changing a registered one")


class LocalStore(Store):
    """A registry in a local folder."""

    def __init__(self, root: Path):
        self.root = root

    def read_text(self, key: str) -> str | None:
        path = self.root / key
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write_text(self, key: str, text: str) -> None:
        atomic_write_text(self.root / key, text)

    def create(self, key: str, data: bytes) -> bool:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.write_bytes(data)
        try:
            os.link(temp, target)  # fails when the target exists: create-once, like S3's If-None-Match
        except FileExistsError:
            old = target.read_bytes()
            if old != data:
                raise _immutable(str(target), old, data) from None
            return False
        finally:
            temp.unlink()
        return True

    def download(self, key: str, path: Path) -> str | None:  # pylint: disable=useless-return  # None: no versions
        source = self.root / key
        if not source.is_file():
            raise ModelError(f"{source} is not in the registry")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        return None  # a folder has no object versions

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def uri(self, key: str) -> str:
        return str(self.root / key)


class S3Store(Store):
    """A registry under an s3:// prefix (boto3; honours AWS_ENDPOINT_URL for emulators).

    New objects are written with ``If-None-Match: *``: S3 refuses to overwrite an existing key, and
    the foundation stack's bucket policy refuses registry writes without that header.
    """

    def __init__(self, bucket: str, prefix: str, client=None):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = client or s3.client()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read_text(self, key: str) -> str | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return body.decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=text.encode("utf-8"))

    def create(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel  # boto only for S3

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            old = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            if old != data:
                raise _immutable(self.uri(key), old, data) from None
            return False
        return True

    def download(self, key: str, path: Path) -> str | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        with open(path, "wb") as handle:
            for chunk in iter(lambda: response["Body"].read(1 << 20), b""):
                handle.write(chunk)
        version = response.get("VersionId")
        return version if version and version != "null" else None

    def list(self, prefix: str) -> list[str]:
        keys, start = [], len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(obj["Key"][start:] for obj in page.get("Contents", []))
        return sorted(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"
