"""A FlowRun's copy of its FlowTemplate: a ConfigMap owned by the run, taken once.

When the operator first reconciles a FlowRun with `spec.flow.templateRef`, it reads the
FlowTemplate and stores it (identity and `spec.flow`, gzip'd JSON in `binaryData`) in the
ConfigMap `fr-<name>-<uid8>-flow`, immutable and owned by the FlowRun (deleted with it). Every
later step reads that copy, never the template: the in-process run, the runner Pod (whose Role
may `get` that one ConfigMap) and any resumption after a restart. So an edit or deletion of the
template never changes a run that has started.

`Snapshots` is the `flowrun.runs.plan.TemplateSource` of both: the operator's may take the copy
(`create=True`), the runner's only reads it.
"""

from __future__ import annotations

from typing import Any

from flowrun.api import templates
from flowrun.cluster import base
from flowrun.cluster.labels import build_owner_reference
from flowrun.controller import kubeobjects
from flowrun.controller import runner_objects as objects
from flowrun.runs.outcome import FlowRunError
from flowrun.runs.plan import TemplateCopy, TemplateMissing


def manifest(owner: base.Owner, template: dict[str, Any]) -> dict[str, Any]:
    """The snapshot ConfigMap of `template` (a FlowTemplate as read) for the run `owner`."""
    metadata = {
        "name": objects.snapshot_name(owner),
        "namespace": owner.namespace,
        "labels": {**objects.labels(owner), "app.kubernetes.io/component": "flow-snapshot"},
        "ownerReferences": [build_owner_reference(owner)],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
        "binaryData": {templates.SNAPSHOT_KEY: templates.encode(template)},
    }


class Snapshots:
    """The run's copy of its template, taken on first use when `create` (the operator)."""

    def __init__(self, api: Any, owner: base.Owner, *, create: bool) -> None:
        self.api = api
        self.owner = owner
        self.create = create

    async def template_copy(self, name: str) -> TemplateCopy:
        cm_name = objects.snapshot_name(self.owner)
        namespace = self.owner.namespace
        found = await kubeobjects.get(self.api, "ConfigMap", namespace, cm_name)
        if found is None and not self.create:
            raise FlowRunError(
                "TemplateCopyNotFound",
                f"spec.flow.templateRef.name: the run's copy of FlowTemplate {name!r} "
                f"(ConfigMap {cm_name}) is gone; create a new FlowRun to run again.",
            )
        if found is None:
            template = await kubeobjects.get(self.api, "FlowTemplate", namespace, name)
            if template is None:
                raise TemplateMissing(name, namespace)
            found = manifest(self.owner, template)
            if not await kubeobjects.create(self.api, found):
                # Taken already (an earlier attempt that stopped before recording it): that copy
                # is the run's, whatever the template says now.
                found = await kubeobjects.get(self.api, "ConfigMap", namespace, cm_name)
        encoded = ((found or {}).get("binaryData") or {}).get(templates.SNAPSHOT_KEY)
        if encoded is None:
            raise FlowRunError(
                "TemplateCopyNotFound", f"ConfigMap {cm_name} holds no {templates.SNAPSHOT_KEY}"
            )
        return TemplateCopy(body=templates.decode(encoded), config_map=cm_name)
