"""Uploads as a JupyterHub user makes them: through the hub's proxy, and straight to us.

``python -m bench.proxy [--size MB] [--uploads N] [--tiny]`` starts a real JupyterHub
(configurable-http-proxy, our service as a hub-managed gunicorn service configured by
``deploy/jupyterhub_config.py`` with 1 worker × 8 threads) and releases N fresh files,
alternating between the proxy's URL and the service's own port, with a hub token.  It
prints both medians (the first upload of each route is left out: it warms the caches)
and sha256's throughput on this machine, and writes them as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from bench.physical import settle, sha256_throughput
from bench.workloads import MB, write_random
from ngshare_gql.client import Client, LocalFile
from tests.servers import jupyterhub_server

RELEASE = (
    "mutation($a: String!, $f: [FileInput!]!) "
    '{ releaseAssignment(courseId: "bench", name: $a, files: $f) { name } }'
)


def run(size: int, uploads: int, work: str) -> dict:
    env = {
        "NGSHARE_DATABASE_URL": f"sqlite:///{work}/ngshare.db",
        "NGSHARE_BLOB_STORE": "filesystem",
        "NGSHARE_BLOB_DIR": os.path.join(work, "blobs"),
        "NGSHARE_WORKERS": "1",
        "NGSHARE_THREADS": "8",
        "NGSHARE_MAX_FILE_SIZE": str(size + MB),
        "NGSHARE_MAX_UPLOAD_SIZE": str(size + MB),
    }
    rates: dict[str, list[float]] = {"proxy": [], "direct": []}
    with jupyterhub_server(work, env) as hub:
        hub.user("prof", groups=("formgrade-bench",))
        token = hub.token("prof")[0]
        urls = {"proxy": hub.service_url, "direct": hub.direct_service_url}
        for i in range(2 * uploads):
            route = "proxy" if i % 2 == 0 else "direct"
            path = os.path.join(work, "upload.bin")
            write_random(path, size)
            local = LocalFile.scan("data.bin", path)
            settle(work)
            client = Client(urls[route], token, timeout=600)
            started = time.perf_counter()
            client.execute_with_files(
                RELEASE, {"a": f"a{i}", "f": [local.as_input()]}, {"f.0.content": local}
            )
            rates[route].append(size / MB / (time.perf_counter() - started))
    return {
        "size_MB": size / MB,
        "sha256_MBps": sha256_throughput(min(512 * MB, 16 * size)),
        **{f"{route}_MBps": [round(r) for r in values] for route, values in rates.items()},
        **{
            f"{route}_median_MBps": statistics.median(values[1:] or values)
            for route, values in rates.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=50, help="MB per upload")
    parser.add_argument("--uploads", type=int, default=6, help="uploads per route")
    parser.add_argument("--tiny", action="store_true", help="1 MB, 2 per route")
    parser.add_argument("--out", default=os.path.join("bench", "out", "proxy"))
    args = parser.parse_args(argv)
    size, uploads = (MB, 2) if args.tiny else (args.size * MB, args.uploads)
    work = tempfile.mkdtemp(prefix="ngshare-proxy-bench-")
    try:
        results = run(size, uploads, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    sha = results["sha256_MBps"]
    for route in ("proxy", "direct"):
        median = results[f"{route}_median_MBps"]
        print(f"{route:>6}: {median:6.0f} MB/s ({100 * median / sha:.0f}% of sha256 {sha:.0f} MB/s)"
              f"  runs {results[f'{route}_MBps']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
