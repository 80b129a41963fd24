"""The stand-in hub in a process of its own: ``python -m bench.hub PORT TOKENS_JSON``.

Both services ask it ``GET /hub/api/user`` with the caller's token, as they would
ask JupyterHub.  It runs apart from the benchmark's client threads so that its
answers are not slowed by them (ngshare asks it on every request).
"""

from __future__ import annotations

import json
import signal
import sys
import threading

from tests.fakehub import FakeHub


def main(argv: list[str]) -> None:
    port, tokens_path = int(argv[0]), argv[1]
    with open(tokens_path) as f:
        tokens = json.load(f)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeHub(tokens, port=port):
        print("ready", flush=True)
        stop.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
