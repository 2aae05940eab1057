"""Manifest files for `flowrun run`: one FlowRun, and the FlowTemplates it may name.

A FlowRun with `spec.flow.templateRef` finds its FlowTemplate in the same file (multi-document
YAML, as a GitOps repository keeps them) or in the files given with `--template`. `Files` is
the `plan.TemplateSource` of `flowrun run`: the run copies the template it names, as the
operator does, through `plan.resolve_template`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from flowrun.api import templates
from flowrun.api.validation import SpecError
from flowrun.runs.plan import TemplateCopy


def read_documents(path: Path) -> list[Any]:
    """The non-empty YAML documents of `path`; SpecError names the file when it cannot."""
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as err:
        raise SpecError([f"{path}: {err.strerror or err}"]) from None
    except yaml.YAMLError as err:
        raise SpecError([f"{path}: not valid YAML: {err}"]) from None


def _kind(doc: Any) -> Any:
    return doc.get("kind") if isinstance(doc, Mapping) else None


def split(path: Path, docs: list[Any]) -> tuple[Any, list[Mapping[str, Any]]]:
    """The one FlowRun document of a run's file, and its FlowTemplate documents."""
    found = [d for d in docs if _kind(d) != templates.KIND]
    if len(found) != 1:
        raise SpecError(
            [f"{path}: expected one FlowRun document (and any FlowTemplates), found {len(found)}"]
        )
    return found[0], [d for d in docs if _kind(d) == templates.KIND]


def template_files(paths: Iterable[Path]) -> list[Mapping[str, Any]]:
    """The FlowTemplates of `--template` files (nothing else may be in them)."""
    out: list[Mapping[str, Any]] = []
    for path in paths:
        for i, doc in enumerate(read_documents(path)):
            if _kind(doc) != templates.KIND:
                raise SpecError(
                    [f"{path}: document {i + 1} is not a FlowTemplate (kind: {_kind(doc)})"]
                )
            out.append(doc)
    return out


class Files:
    """The FlowTemplates read from the run's files, by name."""

    def __init__(self, found: Iterable[Mapping[str, Any]], where: str) -> None:
        self.where = where
        self.by_name: dict[str, Mapping[str, Any]] = {}
        for doc in found:
            name = (doc.get("metadata") or {}).get("name")
            if isinstance(name, str):
                self.by_name.setdefault(name, doc)

    async def template_copy(self, name: str) -> TemplateCopy:
        if name not in self.by_name:
            known = ", ".join(sorted(self.by_name)) or "none"
            raise SpecError(
                [
                    f"spec.flow.templateRef.name: FlowTemplate {name!r} not found in {self.where} "
                    f"(FlowTemplates there: {known}); add it to the file or give its file "
                    "with --template FILE"
                ]
            )
        return TemplateCopy(body=self.by_name[name])
