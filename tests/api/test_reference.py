"""docs/flowrun-reference.md is generated from the models; it may not drift from them."""

from __future__ import annotations

from pathlib import Path

from flowrun.api import reference

ROOT = Path(__file__).resolve().parents[2]


def test_committed_reference_matches_the_models() -> None:
    committed = (ROOT / "docs" / "flowrun-reference.md").read_text()
    assert committed == reference.render(), (
        "docs/flowrun-reference.md is stale: run "
        "`.venv/bin/flowrun crd --reference > docs/flowrun-reference.md`"
    )


def test_reference_lists_every_spec_field_with_its_constraints() -> None:
    text = reference.render()
    for path in ("spec.flow.ref", "spec.executor.dask.cluster", "spec.cancel", "status.phase"):
        assert f"| `{path}` |" in text
    assert "`Kubernetes`, `Local`, `External`" in text
    assert "| `spec.flow.tasks[].name` | string | yes |" in text
