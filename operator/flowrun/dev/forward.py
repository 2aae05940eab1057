"""A loopback TCP forwarder from the host into the node's network namespace.

`python -m flowrun.dev.forward /run/netns/NAME PORT...` listens on the host's 127.0.0.1:PORT for
each PORT, then enters the namespace, so every upstream connection goes to 127.0.0.1:PORT there.
The kube-apiserver runs inside the namespace (it must reach the kubelet and the Pods), and this
keeps the same kubeconfig working from the user's shell. Python 3.11 has no os.setns, hence ctypes.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sys

_CLONE_NEWNET = 0x40000000


def enter_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def _handler(port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

    return handle


async def _serve(listeners: dict[int, socket.socket]) -> None:
    servers = [
        await asyncio.start_server(_handler(port), sock=sock) for port, sock in listeners.items()
    ]
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str]) -> int:
    netns, *ports = argv
    listeners: dict[int, socket.socket] = {}
    for port in map(int, ports):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        listeners[port] = sock
    # The listening sockets stay in the host's namespace; connections made from now on do not.
    enter_netns(netns)
    asyncio.run(_serve(listeners))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
