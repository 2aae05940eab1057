"""Write an OCI image archive (one uncompressed layer) that `ctr images import` accepts.

The node has no registry: every image a Pod uses is packed here from a root filesystem and
imported into the node's containerd under a name carried by the index annotation.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MEDIA = "application/vnd.oci.image"


@dataclass
class ImageConfig:
    """The runtime part of an OCI image config (what a Dockerfile's ENV/USER/CMD... set)."""

    env: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    user: str = ""
    workdir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)

    def as_oci(self) -> dict[str, Any]:
        config: dict[str, Any] = {"Env": self.env}
        for key, value in (
            ("Entrypoint", self.entrypoint),
            ("Cmd", self.cmd),
            ("User", self.user),
            ("WorkingDir", self.workdir),
            ("Labels", self.labels),
        ):
            if value:
                config[key] = value
        if self.exposed_ports:
            config["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        return config


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest(), path.stat().st_size


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _layer(rootfs: Path, target: Path) -> None:
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as layer:
        for child in sorted(rootfs.iterdir()):
            layer.add(child, arcname=child.name, recursive=True)


def pack(rootfs: Path, name: str, archive: Path, config: ImageConfig) -> str:
    """Pack `rootfs` as image `name` into `archive`; return the manifest digest."""
    return pack_images(rootfs, archive, {name: config})[name]


def pack_images(rootfs: Path, archive: Path, images: dict[str, ImageConfig]) -> dict[str, str]:
    """Pack `rootfs` once, as one image per name (each with its own config, all sharing the one
    layer) into `archive`; return each image's manifest digest."""
    layer_path = archive.with_suffix(".layer.tar")
    _layer(rootfs, layer_path)
    layer_digest, layer_size = _hash_file(layer_path)
    layer = {"mediaType": f"{_MEDIA}.layer.v1.tar", "digest": layer_digest, "size": layer_size}
    blobs: dict[str, bytes] = {}
    entries: list[dict[str, Any]] = []
    digests: dict[str, str] = {}
    for name, config in images.items():
        config_bytes = _image_config(config, layer_digest)
        manifest_bytes = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": f"{_MEDIA}.manifest.v1+json",
                "config": {
                    "mediaType": f"{_MEDIA}.config.v1+json",
                    "digest": _digest(config_bytes),
                    "size": len(config_bytes),
                },
                "layers": [layer],
            },
            sort_keys=True,
        ).encode()
        blobs[_digest(config_bytes)] = config_bytes
        blobs[_digest(manifest_bytes)] = manifest_bytes
        digests[name] = _digest(manifest_bytes)
        entries.append(
            {
                "mediaType": f"{_MEDIA}.manifest.v1+json",
                "digest": _digest(manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                },
            }
        )
    index = {"schemaVersion": 2, "mediaType": f"{_MEDIA}.index.v1+json", "manifests": entries}
    with tarfile.open(archive, "w") as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add_bytes(tar, "index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            _add_bytes(tar, f"blobs/sha256/{digest[7:]}", data)
        tar.add(layer_path, arcname=f"blobs/sha256/{layer_digest[7:]}")
    layer_path.unlink()
    return digests


def _image_config(config: ImageConfig, layer_digest: str) -> bytes:
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config.as_oci(),
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "flowrun dev image"}],
    }
    return json.dumps(image_config, sort_keys=True).encode()
