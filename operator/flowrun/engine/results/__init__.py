"""`flowrun.engine.results`, as `prefect.engine.results`: where task results are stored.

The file-system results use fsspec, so `S3Result`, `GCSResult` and `AzureResult` need
the matching fsspec driver (s3fs, gcsfs, adlfs) installed where the task runs.
"""

from flowrun.engine.result.base import Result
from flowrun.engine.results.basic import ConstantResult, PrefectResult
from flowrun.engine.results.files import AzureResult, FSSpecResult, GCSResult, LocalResult, S3Result

__all__ = [
    "AzureResult",
    "ConstantResult",
    "FSSpecResult",
    "GCSResult",
    "LocalResult",
    "PrefectResult",
    "Result",
    "S3Result",
]
