"""Kubeconfig files for the local control plane: the admin's, and one per token or client cert.

Tests act as other identities (a ServiceAccount through TokenRequest, an unprivileged user) by
pointing a client or a subprocess at one of these files, so the API server's RBAC is really applied.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from flowrun.dev import pki as pki_mod


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def render(*, server: str, ca: bytes, user: dict[str, str], name: str = "flowrun-dev") -> str:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return yaml.safe_dump(config, sort_keys=False)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def write_admin(path: Path, *, server: str, pki: pki_mod.Pki) -> Path:
    user = {
        "client-certificate-data": _b64(pki.admin_cert.read_bytes()),
        "client-key-data": _b64(pki.admin_key.read_bytes()),
    }
    return _write(path, render(server=server, ca=pki.ca_cert.read_bytes(), user=user))


def write_token(path: Path, *, server: str, pki: pki_mod.Pki, token: str) -> Path:
    """A kubeconfig that authenticates with a bearer token (e.g. from TokenRequest)."""
    return _write(path, render(server=server, ca=pki.ca_cert.read_bytes(), user={"token": token}))


def write_user(
    path: Path, *, server: str, pki: pki_mod.Pki, user: str, groups: tuple[str, ...] = ()
) -> Path:
    """A kubeconfig for an arbitrary user, by a client certificate signed by the plane's CA."""
    cert, key = pki_mod.client_certificate(pki, user=user, groups=groups)
    creds = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}
    return _write(path, render(server=server, ca=pki.ca_cert.read_bytes(), user=creds))
