"""Building blocks shared by the spec and status models: the base model and wire types.

`JSON` marks free-form values (they become `x-kubernetes-preserve-unknown-fields` in the CRD),
`Quantity` Kubernetes quantities (int-or-string), `Timestamp` RFC 3339 times.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

JSON = Annotated[Any, Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]
# Kubernetes' quantity syntax (k8s.io/apimachinery resource.Quantity, the pattern of its
# OpenAPI schema) without the minus sign: every quantity here is a container's resources, and
# the API server refuses a Pod that asks for less than nothing, long after the FlowRun was taken.
QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
QUANTITY_EXAMPLES = "e.g. 50m, 2, 256Mi, 1Gi"
MAX_QUANTITY = 64  # characters
_QUANTITY = re.compile(QUANTITY_PATTERN)


def _quantity(value: int | str) -> int | str:
    """One message for both members of the union (pydantic would give one per member)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and len(value) <= MAX_QUANTITY and _QUANTITY.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not a Kubernetes quantity ({QUANTITY_EXAMPLES})")


Quantity = Annotated[
    int | str,
    AfterValidator(_quantity),
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            # The API server applies each to its own type: pattern to strings, minimum to numbers.
            "pattern": QUANTITY_PATTERN,
            "maxLength": MAX_QUANTITY,  # bounds the cost of CEL rules that parse quantities
            "minimum": 0,
        }
    ),
]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
TaskName = Annotated[str, Field(min_length=1, max_length=253)]


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def keyed(description: str, *, max_items: int, required: bool = False) -> Any:
    """A list of objects keyed by `name`: the API server refuses duplicate names."""
    return Field(
        ... if required else None,
        description=description,
        max_length=max_items,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
