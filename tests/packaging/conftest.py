"""Fixtures of the packaging tests: the pinned helm binary without a running control plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowrun.dev import build


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """The helm that `flowrun dev build` compiles (built on first use, like the control plane)."""
    return build.ensure_built() / "helm"
