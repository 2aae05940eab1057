"""Building blocks shared by the spec and status models: the base model and wire types.

`JSON` marks free-form values (they become `x-kubernetes-preserve-unknown-fields` in the CRD),
`Quantity` Kubernetes quantities (int-or-string), `Timestamp` RFC 3339 times.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

JSON = Annotated[Any, Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]
Quantity = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]
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
