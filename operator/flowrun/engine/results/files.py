"""Results stored as files through fsspec: local disk, S3, GCS, Azure Blob."""

from __future__ import annotations

import datetime as dt
import os
import posixpath
from typing import Any

import fsspec

from flowrun.engine.result.base import Result


class FSSpecResult(Result):
    """A result written as one file under `base` (an fsspec URL such as `s3://bucket/x`)."""

    protocol = "file"

    def __init__(self, base: str = "", storage_options: dict[str, Any] | None = None, **kw: Any):
        self.base = base
        self.storage_options = dict(storage_options or {})
        super().__init__(**kw)

    def _path(self, location: str) -> str:
        if "://" in location or os.path.isabs(location) or not self.base:
            return location
        return posixpath.join(self.base, location)

    def _fs(self) -> Any:
        return fsspec.filesystem(self.protocol, **self.storage_options)

    @property
    def default_location(self) -> str:
        return f"flowrun-result-{dt.datetime.now(dt.UTC):%Y-%m-%dT%H-%M-%S-%f}"

    def read(self, location: str) -> Result:
        new = self.copy()
        new.location = location
        with self._fs().open(self._path(location), "rb") as f:
            new.value = self.serializer.deserialize(f.read())
        return new

    def write(self, value_: Any, **kwargs: Any) -> Result:
        new = self.format(**kwargs)
        new.value = value_
        path = self._path(new.location or "")
        fs = self._fs()
        parent = posixpath.dirname(path)
        if parent and self.protocol == "file":
            fs.makedirs(parent, exist_ok=True)
        with fs.open(path, "wb") as f:
            f.write(self.serializer.serialize(value_))
        new.location = path
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        found: bool = self._fs().exists(self._path(location.format(**kwargs)))
        return found


class LocalResult(FSSpecResult):
    """A file in `dir` (default: `./.flowrun/results`, created when missing)."""

    def __init__(self, dir: str | None = None, validate_dir: bool = True, **kwargs: Any) -> None:
        directory = dir if dir is not None else os.path.join(".flowrun", "results")
        if validate_dir:
            directory = os.path.abspath(os.path.expanduser(directory))
            os.makedirs(directory, exist_ok=True)
        self.dir = directory
        super().__init__(base=directory, **kwargs)


class S3Result(FSSpecResult):
    protocol = "s3"

    def __init__(self, bucket: str, boto3_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        self.bucket = bucket
        super().__init__(base=f"s3://{bucket}", storage_options=boto3_kwargs, **kwargs)


class GCSResult(FSSpecResult):
    protocol = "gcs"

    def __init__(self, bucket: str, **kwargs: Any) -> None:
        self.bucket = bucket
        super().__init__(base=f"gcs://{bucket}", **kwargs)


class AzureResult(FSSpecResult):
    protocol = "abfs"

    def __init__(self, container: str, connection_string: str | None = None, **kwargs: Any):
        self.container = container
        options = {"connection_string": connection_string} if connection_string else {}
        super().__init__(base=f"abfs://{container}", storage_options=options, **kwargs)
