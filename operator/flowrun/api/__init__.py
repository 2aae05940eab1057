"""The FlowRun resource: models, CRD generation, manifest validation and the status builder.

Imports neither kopf nor Kubernetes clients: `flowrun run` uses it without a cluster.
"""

from flowrun.api.models import FlowRun, FlowRunSpec, FlowRunStatus

__all__ = ["FlowRun", "FlowRunSpec", "FlowRunStatus"]
