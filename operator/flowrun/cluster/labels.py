"""Labels and ownerReferences of what the operator creates for a FlowRun (its Dask cluster's
objects and its runner's): found again by label, deleted with the FlowRun."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flowrun.cluster import base

LABEL_FLOWRUN = "flowrun.dev/flowrun"
LABEL_FLOWRUN_UID = "flowrun.dev/flowrun-uid"


def build_owner_reference(owner: base.Owner) -> dict[str, Any]:
    """The ownerReference that ties a child to its FlowRun (cascading deletion)."""
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def label_value(text: str) -> str:
    """`text` as a valid label value: itself when it is one, else a readable prefix plus a hash.

    A label value is at most 63 characters of `[A-Za-z0-9._-]`, beginning and ending with an
    alphanumeric. A FlowRun name may have 253 characters, so a plain cut can end in `-` or `.`
    (refused by the API server) and two long names could share a cut; the hash keeps them apart.

    >>> label_value("etl.daily")
    'etl.daily'
    >>> v = label_value("a" * 62 + "-b"); len(v), v[-9:-8], v[:5]
    (63, '-', 'aaaaa')
    """
    if _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[: 63 - len(digest) - 1]
    head = head.strip("-._")
    return f"{head}-{digest}" if head else digest


_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def build_labels(owner: base.Owner, options: base.ClusterOptions) -> dict[str, str]:
    """Labels that let anyone (and a sweep) find a FlowRun's Dask resources."""
    return {
        **options.extra_labels,
        "app.kubernetes.io/managed-by": "flowrun-operator",
        LABEL_FLOWRUN: label_value(owner.name),
        LABEL_FLOWRUN_UID: label_value(owner.uid),
    }
