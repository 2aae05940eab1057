"""kr8s 0.20's session race (docs/kr8s-session-race.md), on the real API server.

A session created while another coroutine re-authenticates the same Api had no base URL, and
every later call failed with "Request URL is missing an 'http://' or 'https://' protocol".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import kr8s.asyncio
import pytest

from flowrun.cluster import kr8s_session

pytestmark = pytest.mark.controlplane


async def _session_made_during_reauthentication(kubeconfig: Path) -> str:
    api = await kr8s_session.private_api(kubeconfig=str(kubeconfig))
    # What kr8s does on a 401/403 in one coroutine, while another one re-creates its session.
    reauth = asyncio.create_task(api.auth.reauthenticate())
    await asyncio.sleep(0)  # let it blank `auth.server` and block on file I/O
    await api._create_session()
    await reauth
    base_url = str(api._session.base_url)
    version = await api.version()
    assert version["major"] == "1"
    await api._session.aclose()
    return base_url


def test_a_session_made_during_reauthentication_has_the_server(kubeconfig_path: Path) -> None:
    base_url = asyncio.run(_session_made_during_reauthentication(kubeconfig_path))
    assert base_url.startswith("https://127.0.0.1:")


def test_the_private_api_is_not_shared_with_dask_kubernetes(kubeconfig_path: Path) -> None:
    async def both() -> tuple[object, object]:
        ours = await kr8s_session.private_api(kubeconfig=str(kubeconfig_path))
        shared = await kr8s.asyncio.api(kubeconfig=str(kubeconfig_path))
        return ours, shared

    ours, shared = asyncio.run(both())
    assert ours is not shared
