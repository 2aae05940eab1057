"""A guard against kr8s 0.20's session race (docs/kr8s-session-race.md).

kr8s shares one `Api` per thread and event loop between us and dask-kubernetes. Every
`await kr8s.asyncio.api()` re-authenticates it, and re-authentication blanks `auth.server`
while it awaits file I/O; `Api._create_session` (run after any 401/403) reads `auth.server`
*before* awaiting the auth lock. A session made in that window has no base URL and stays
broken for every later call ("Request URL is missing an 'http://' or 'https://' protocol").
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import kr8s.asyncio
from kr8s._api import Api

_INSTALLED = "_flowrun_session_guard"


async def _create_session(self: Any) -> None:
    # Await the auth lock first (inside ssl_context): with no await between it and the read of
    # `auth.server`, no re-authentication can be half-way when the base URL is taken.
    verify = await self.auth.ssl_context()
    headers = {"User-Agent": self.__version__, "content-type": "application/json"}
    if self.auth.token:
        headers["Authorization"] = f"Bearer {self.auth.token}"
    if self._session:
        with contextlib.suppress(RuntimeError):
            await self._session.aclose()
        self._session = None
    self._session = httpx.AsyncClient(
        base_url=self.auth.server,
        headers=headers,
        verify=verify,
        timeout=self._timeout,
        follow_redirects=True,
        proxy=self.auth.proxy,
    )


def install() -> None:
    """Make every kr8s Api in this process (ours and dask-kubernetes') create sessions safely."""
    if not getattr(Api, _INSTALLED, False):
        Api._create_session = _create_session  # type: ignore[method-assign]
        setattr(Api, _INSTALLED, True)


async def private_api(**kwargs: Any) -> Any:
    """An Api of our own, authenticated once, outside kr8s' shared cache.

    In the cache, dask-kubernetes' `api()` calls (four a second per starting cluster) would
    re-authenticate it each time, writing a fresh set of certificate temp files per call.
    """
    install()
    api = kr8s.asyncio.Api(bypass_factory=True, **kwargs)
    for instances in Api._instances.values():
        for key, value in list(instances.items()):
            if value is api:
                del instances[key]
    return await api
