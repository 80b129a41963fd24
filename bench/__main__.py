"""Run the benchmark: ``python -m bench [--tiny] [--no-ngshare] [--blob-store sql]``.

Starts the stand-in hub, our service (gunicorn gthread) and ngshare 0.6.0 (in its
own virtual environment) on loopback, runs W1-W5 against both, one service right
after the other, W6 against ours alone, and writes ``results.md`` and
``results.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import time

from bench import clients, physical, report, services, workloads
from bench.workloads import MB, Data, Sizes
from tests.servers import REPO


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="small sizes: checks that it works")
    parser.add_argument("--no-ngshare", action="store_true", help="run our service alone")
    parser.add_argument(
        "--blob-store", choices=["filesystem", "sql"], default="filesystem",
        help="our blob store (default: filesystem)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="run W1-W5 this many times, alternating services; report each one's median",
    )
    parser.add_argument("--workers", type=int, default=2, help="our gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument(
        "--workloads", default="W1,W2,W3,W4,W5,W6", help="comma-separated subset of W1-W6"
    )
    parser.add_argument(
        "--warm-up", type=int, default=physical.WARM_UP // MB, metavar="MB",
        help="MB written and deleted before each timed step (0: none; see physical.settle)",
    )
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out", "latest"))
    parser.add_argument(
        "--ngshare-venv", default=os.path.join(REPO, "bench", "out", "ngshare-venv"),
        help="where to create ngshare's virtual environment (reused when present)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, command: str) -> dict:
    sizes = Sizes.tiny() if args.tiny else Sizes()
    selected = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    args.out = os.path.abspath(args.out)  # the servers run in other directories
    args.ngshare_venv = os.path.abspath(args.ngshare_venv)
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    results: dict = {
        "command": command, "tiny": args.tiny, "blob_store": args.blob_store,
        "workers": args.workers, "threads": args.threads, "repeat": args.repeat,
        "warm_up_MB": args.warm_up,
        "machine": report.machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "sizes": sizes.__dict__, "workloads": {},
    }
    print("physical reference ...", flush=True)
    results["physical"] = physical.reference(sizes.sha_probe, sizes.socket_probe)
    ng_python = None if args.no_ngshare else services.ngshare_python(args.ngshare_venv)
    if ng_python:
        results["ngshare_versions"] = report.versions(
            ng_python, ["ngshare", "tornado", "sqlalchemy"]
        )
    results["our_versions"] = report.versions(
        sys.executable, ["flask", "werkzeug", "gunicorn", "strawberry", "sqlalchemy"]
    )
    data = Data(os.path.join(work, "data"), sizes, args.repeat)
    data.make()
    users = ["admin", workloads.INSTRUCTOR, *sizes.student_names()]
    tokens = {clients.token_of(u): {"name": u, "admin": u == "admin"} for u in users}
    max_file = max(sizes.w6_file, sizes.w1_file) + 64 * MB
    try:
        with contextlib.ExitStack() as stack:
            hub = stack.enter_context(services.stand_in_hub(tokens, work))
            ours_server = stack.enter_context(services.ours(
                hub, work, args.blob_store, max_file, args.workers, args.threads
            ))
            targets = [(clients.Ours(ours_server.url), ours_server)]
            if ng_python:
                ng_server = stack.enter_context(services.ngshare(ng_python, hub, work))
                targets.append((clients.Ngshare(ng_server.url), ng_server))
            for svc, _ in targets:
                workloads.setup(svc, data)
            for name in selected:
                if name not in workloads.WORKLOADS:
                    continue
                runs: dict[str, list[dict]] = {svc.name: [] for svc, _ in targets}
                for run in range(args.repeat):  # alternating, so both see the same noise
                    for svc, server in targets:
                        print(f"{name} {svc.name} (run {run + 1}) ...", flush=True)
                        runs[svc.name].append(_attempt(
                            workloads.WORKLOADS[name], svc, server, data,
                            os.path.join(work, svc.name.split()[0]), args.warm_up, run,
                        ))
                results["workloads"][name] = {k: _median(v) for k, v in runs.items()}
            if "W6" in selected:
                svc, server = targets[0]
                print(f"W6 {svc.name} ...", flush=True)
                results["workloads"]["W6"] = {
                    svc.name: _attempt(
                        workloads.w6, svc, server, data, os.path.join(work, "w6"), args.warm_up
                    )
                }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


# Parts of a workload's result summed up on their own: whether more is better.
PARTS = {
    "upload_s": False, "upload_post_s": False, "download_s": False,
    "upload_vs_physical": True, "upload_vs_bare": True,
}

# Parts of a workload's result listed run by run, never merged (bench.cpu accountings).
ACCOUNTS = ("upload_cpu", "bare_cpu")


def _median(runs: list[dict]) -> dict:
    """One service's runs of a workload: the median run (of two, the better), with
    each part of a transfer (upload, download) the median of its own, the highest
    peak memory, all errors, and every run's time or rate under ``runs``."""
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return runs[0]
    key = "ops_per_s" if "ops_per_s" in ok[0] else "seconds"
    ordered = sorted(ok, key=lambda r: r[key], reverse=key == "ops_per_s")
    merged = dict(ordered[(len(ordered) - 1) // 2])
    for k, higher_is_better in PARTS.items():
        having = [r for r in ok if k in r]  # a part can be missing from a run (bare_failed)
        if having:  # not the part that the median whole happened to have
            values = sorted((r[k] for r in having), reverse=higher_is_better)
            merged[k] = values[(len(having) - 1) // 2]
            merged[f"{k}_runs"] = [round(r[k], 3) for r in having]
    for k in ACCOUNTS:  # one per run, in run order, as the transfers' own runs
        if any(k in r for r in ok):
            merged[f"{k}_runs"] = [r.get(k) for r in ok]
    for k in ("rss_peak", "pss_peak", "dataset_bytes_reuploaded"):
        if k in merged:
            merged[k] = max(r[k] for r in ok)
    if "errors" in merged:
        merged["errors"] = sum(r["errors"] for r in ok)
    merged["runs"] = [round(r[key], 3) for r in ok]
    if len(ok) < len(runs):
        merged["failed_runs"] = [r["failed"] for r in runs if "failed" in r]
    return merged


def _attempt(fn, svc, server, data: Data, work: str, warm_up_mb: int, run: int = 0) -> dict:
    """A workload's numbers, or what went wrong (a failure is a result too)."""
    os.makedirs(work, exist_ok=True)
    physical.settle(work, warm_up_mb * MB)
    try:
        result = fn(svc, server.pid, data, work, run)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return {"failed": f"{type(exc).__name__}: {exc}"[:500]}
    print("   ", report.brief(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    # Stopped from outside: unwind, so the servers this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "python -m bench " + " ".join(shlex.quote(a) for a in argv)
    results = run(args, command)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    markdown = report.markdown(results)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
