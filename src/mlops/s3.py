"""S3 addresses and objects: parse ``s3://bucket/key``, list a prefix, fetch an object (at a version).

Input: ``s3://`` URIs; boto3 finds credentials and honours ``AWS_ENDPOINT_URL`` (emulators).
Output: ``(bucket, key)`` pairs, object listings with size, ETag and VersionId, object bytes and
local copies.
Failures become :class:`~mlops.errors.DataError` saying which URI could not be read.
"""

from __future__ import annotations

from pathlib import Path

from mlops.errors import DataError


def is_s3(uri: str) -> bool:
    """True for an ``s3://`` URI."""
    return uri.startswith("s3://")


def has_credentials() -> bool:
    """True when boto3 finds AWS credentials (environment, profile, or role)."""
    try:
        import boto3  # pylint: disable=import-outside-toplevel  # only S3 users pay for boto3

        return boto3.Session().get_credentials() is not None
    except Exception:  # pylint: disable=broad-exception-caught  # any failure means "no usable credentials"
        return False


def parse(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def client():
    """A boto3 S3 client (imported here: only S3 users pay for boto3)."""
    import boto3  # pylint: disable=import-outside-toplevel  # only S3 data pays for boto3

    return boto3.client("s3")


def list_objects(uri: str, suffixes: tuple[str, ...] | None = None, *, versions: bool = False,
                 s3_client=None) -> list[dict]:
    """Objects under a prefix, sorted by key: ``uri``, ``bytes`` and, with ``versions``, ``etag``/``version_id``."""
    bucket, prefix = parse(uri)
    s3 = s3_client or client()
    try:
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects.extend(page.get("Contents", []))
        found = []
        for obj in sorted(objects, key=lambda o: o["Key"]):
            if suffixes is not None and Path(obj["Key"]).suffix.lower() not in suffixes:
                continue
            entry = {"uri": f"s3://{bucket}/{obj['Key']}", "bytes": obj["Size"]}
            if versions:
                head = s3.head_object(Bucket=bucket, Key=obj["Key"])
                version = head.get("VersionId")
                entry.update(etag=head.get("ETag", "").strip('"') or None,
                             version_id=version if version and version != "null" else None)
            found.append(entry)
        return found
    except Exception as exc:  # pylint: disable=broad-exception-caught  # botocore raises many kinds: all mean unreadable
        raise DataError(f"cannot list {uri}: {exc}. Check the URI and your AWS credentials") from None


def read(uri: str, s3_client=None) -> bytes:
    """One object's bytes."""
    bucket, key = parse(uri)
    try:
        return (s3_client or client()).get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # pylint: disable=broad-exception-caught  # botocore raises many kinds
        raise DataError(f"cannot read {uri}: {exc}. Check the URI and your AWS credentials") from None


def download(uri: str, dest: Path, version_id: str | None = None) -> Path:
    """Download one object (at ``version_id`` when given) to ``dest``."""
    bucket, key = parse(uri)
    extra = {"VersionId": version_id} if version_id else None
    try:
        client().download_file(bucket, key, str(dest), ExtraArgs=extra)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # botocore raises many kinds
        where = f" version {version_id}" if version_id else ""
        raise DataError(f"cannot read {uri}{where}: {exc}. Check the URI and your AWS credentials") from None
    return dest
