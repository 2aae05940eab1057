"""`flowrun.engine.result`, as `prefect.engine.result`: the Result base class."""

from flowrun.engine.result.base import NoResult, NoResultType, Result, ResultNotImplementedError

__all__ = ["NoResult", "NoResultType", "Result", "ResultNotImplementedError"]
