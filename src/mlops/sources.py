"""Data sources: what files a ``data.source`` / ``drift.current`` value names, and local copies of them.

Input: a source string: a local file, folder or glob; an ``s3://`` key or prefix; or a ``.json``
data manifest (:mod:`mlops.manifest`). Output: entries ``{"uri", ...}`` (S3 entries may carry
``version_id`` and ``etag``; manifest entries carry the recorded ``sha256``), in a stable order,
and a local path for each (S3 objects downloaded into a work folder). Only CSV and Parquet files
count; everything else in a folder or under a prefix is ignored.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from mlops import manifest, s3

DATA_SUFFIXES = (".csv", ".parquet", ".pq")


def expand_local(source: str) -> list[str]:
    """The CSV/Parquet files a local path, folder or glob names, sorted."""
    if any(char in source for char in "*?["):
        paths = sorted(glob.glob(source, recursive=True))
    elif os.path.isdir(source):
        paths = sorted(str(p) for p in Path(source).iterdir())
    else:
        paths = [source] if os.path.exists(source) else []
    if os.path.isfile(source) and not any(char in source for char in "*?["):
        return paths  # a file named explicitly: the reader says if it is not CSV/Parquet
    return [p for p in paths if Path(p).suffix.lower() in DATA_SUFFIXES]


def entries(source: str, *, versions: bool = False) -> list[dict]:
    """Every data file behind ``source``; ``versions`` asks S3 for VersionId and ETag (one HEAD per object)."""
    if source.endswith(".json"):
        return manifest.listed_files(source)
    if s3.is_s3(source):
        return s3.list_objects(source, DATA_SUFFIXES, versions=versions)
    return [{"uri": path} for path in expand_local(source)]


def local_copy(entry: dict, workdir: Path, index: int) -> Path:
    """A local path holding the entry's bytes (S3 objects are downloaded, at their version when recorded)."""
    uri = entry["uri"]
    if s3.is_s3(uri):
        return s3.download(uri, workdir / f"{index:05d}{Path(uri).suffix}", entry.get("version_id"))
    return Path(uri)
