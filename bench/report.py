"""Machine facts and the Markdown report of a run (ratios, absolute numbers, targets)."""

from __future__ import annotations

import json
import os
import platform
import subprocess

import psutil

from bench.cpu import describe

MB = 1024 * 1024
OURS, NG = "ngshare-gql", "ngshare 0.6.0"


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    ).stdout.strip()
    return {
        "cpu": cpu, "cores": psutil.cpu_count(),
        "memory_GiB": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(), "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()], "commit": commit,
    }


def versions(python: str, packages: list[str]) -> dict:
    code = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    )
    names = ["strawberry-graphql" if p == "strawberry" else p for p in packages]
    out = subprocess.run([python, "-c", code, *names], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def brief(result: dict) -> str:
    shown = []
    for key, value in result.items():
        if key.startswith("rss"):
            value = f"{value / MB:.0f}MB"
        elif isinstance(value, float):
            value = f"{value:.3f}"
        shown.append(f"{key}={value}")
    return " ".join(shown)


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / MB:.0f} MB"


def _s(n: float | None) -> str:
    return "-" if n is None else f"{n:.2f} s"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _x(r: float | None) -> str:
    return "-" if r is None else f"{r:.1f}×"


def _get(results: dict, w: str, svc: str) -> dict:
    return results["workloads"].get(w, {}).get(svc) or {}


def targets(results: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, goal, measured, met) rows; met is None when not measured."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for w, goal in (("W1", 10), ("W2", 5), ("W3", 5)):
        ours, ng = _get(results, w, OURS), _get(results, w, NG)
        if ng.get("failed") and ours.get("seconds"):
            rows.append((f"{w} speed", f"≥{goal}×", "ngshare failed, ours succeeded", True))
            continue
        r = _ratio(ng.get("seconds"), ours.get("seconds"))
        rows.append((f"{w} speed", f"≥{goal}×", _x(r), None if r is None else r >= goal))
    ours, ng = _get(results, "W1", OURS), _get(results, "W1", NG)
    for kind in ("rss", "pss"):
        r = _ratio(ours.get(f"{kind}_peak"), ng.get(f"{kind}_peak"))
        rows.append((f"W1 peak {kind.upper()} ours/ngshare", "≤0.20",
                     "-" if r is None else f"{r:.2f}", None if r is None else r <= 0.2))
    for w in ("W1", "W6"):
        o = _get(results, w, OURS)
        if "rss_peak" in o:
            growth = o["rss_peak"] - o["rss_idle"]
            rows.append((f"{w} our RSS above idle", "≤100 MB", _mb(growth), growth <= 100 * MB))
    o, n = _get(results, "W4", OURS), _get(results, "W4", NG)
    r = _ratio(o.get("ops_per_s"), n.get("ops_per_s"))
    rows.append(("W4 throughput", "≥3×", _x(r), None if r is None else r >= 3))
    o = _get(results, "W5", OURS)
    if "dataset_bytes_reuploaded" in o:
        rows.append(("W5 dataset bytes re-uploaded", "0", str(o["dataset_bytes_reuploaded"]),
                     o["dataset_bytes_reuploaded"] == 0 and not o["errors"]))
    o = _get(results, "W6", OURS)
    if o:
        rows.append(("W6 file intact", "yes", "yes" if o.get("intact") else o.get("failed", "no"),
                     bool(o.get("intact"))))
    o = _get(results, "W1", OURS)
    if o.get("upload_post_s"):
        start_ref = min(results["physical"].values())
        mbps = o["bytes"] / MB / o["upload_post_s"]
        against_start = f"{100 * mbps / start_ref:.0f}% of the run's first ({start_ref:.0f} MB/s)"
        if "upload_vs_physical" in o:
            fraction = o["upload_vs_physical"]
            measured = (
                f"{100 * fraction:.0f}% (runs "
                + ", ".join(f"{100 * r:.0f}%" for r in o.get("upload_vs_physical_runs", []))
                + f") of the reference measured beside each upload; {mbps:.0f} MB/s is "
                + against_start
            )
        else:  # a run from before the reference was measured beside each upload
            fraction, measured = mbps / start_ref, f"{mbps:.0f} MB/s is {against_start}"
        rows.append(("W1 upload throughput / physical", "≥50%", measured, fraction >= 0.5))
        if "upload_vs_bare" not in o and "bare_failed" in o:
            rows.append(("W1 upload throughput / the bare transfer beside it", "-",
                         f"not measured: {o['bare_failed']}", None))
        elif "upload_vs_bare" in o:
            rows.append((
                "W1 upload throughput / the bare transfer beside it", "-",
                f"{100 * o['upload_vs_bare']:.0f}% (runs "
                + ", ".join(f"{100 * r:.0f}%" for r in o.get("upload_vs_bare_runs", []))
                + ") of the same file sent bare just before each upload: loopback TCP into "
                "a staging file, hashed behind, no HTTP, GraphQL or database",
                None,
            ))
        for key, what in (("upload_cpu", "each upload's POST"),
                          ("bare_cpu", "each bare transfer")):
            if o.get(f"{key}_runs"):
                rows.append((f"CPU time during {what} (bench.cpu; server, bench, idle and "
                             "steal in 10 ms clock ticks)", "-",
                             "; ".join(describe(c) for c in o[f"{key}_runs"]), None))
    return rows


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Run {results['started']} · `{results['command']}`",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_GiB']} GiB, {m['os']}, "
        f"Python {m['python']}, load average at start {m['load_avg_at_start']}, "
        f"commit {m['commit']}.",
        f"Ours: gunicorn gthread ({results['workers']} workers × {results['threads']} threads), "
        f"blob store `{results['blob_store']}`, each of W1-W5 run {results.get('repeat', 1)}× "
        "alternating services (median shown; of two, the better), "
        f"SQLite; {results.get('our_versions')}. "
        f"ngshare: {results.get('ngshare_versions', 'not run')}, "
        "single Tornado process, SQLite. Both identify callers at the same stand-in hub. "
        f"Before each timed step: sync, then a {results.get('warm_up_MB', 0)} MB warm-up write "
        "(`bench.physical.settle`).",
        "",
        f"Physical reference: sha256 {results['physical']['sha256_MBps']:.0f} MB/s, loopback TCP "
        f"{results['physical']['loopback_MBps']:.0f} MB/s.",
        "",
        "| workload | ngshare-gql | ngshare 0.6.0 | speed-up "
        "| peak RSS (idle) ours / ngshare | peak PSS (idle) ours / ngshare |",
        "|---|---|---|---|---|---|",
    ]
    for w, data in results["workloads"].items():
        o, n = data.get(OURS, {}), data.get(NG, {})
        if w == "W4":
            cell = lambda d: d.get("failed") or (  # noqa: E731
                f"{d['ops_per_s']:.0f} ops/s, p50 {d['p50_ms']:.1f} ms, p95 {d['p95_ms']:.1f} ms"
                + (f" (runs {', '.join(f'{r:.0f}' for r in d['runs'])})"
                   if len(d.get("runs", [])) > 1 else "")
                if "ops_per_s" in d else "-")
            speed = _ratio(o.get("ops_per_s"), n.get("ops_per_s"))
        else:
            cell = lambda d: d.get("failed") or _s(d.get("seconds")) + _extra(d)  # noqa: E731
            speed = _ratio(n.get("seconds"), o.get("seconds"))
        mem = " | ".join(
            f"{_mb(o.get(f'{k}_peak'))} ({_mb(o.get(f'{k}_idle'))}) / "
            f"{_mb(n.get(f'{k}_peak'))} ({_mb(n.get(f'{k}_idle'))})"
            for k in ("rss", "pss")
        )
        lines.append(f"| {w} | {cell(o)} | {cell(n) if n else 'not run'} | {_x(speed)} | {mem} |")
    lines += ["", "| target | goal | measured | met |", "|---|---|---|---|"]
    for name, goal, measured, met in targets(results):
        verdict = "-" if met is None else ("yes" if met else "NO")
        lines.append(f"| {name} | {goal} | {measured} | {verdict} |")
    return "\n".join(lines) + "\n"


def _extra(d: dict) -> str:
    parts = []
    if len(d.get("runs", [])) > 1:
        parts.append("runs " + ", ".join(f"{r:.2f}" for r in d["runs"]))
    if d.get("errors"):
        parts.append(f"{d['errors']} errors: {d.get('first_error')}")
    if "upload_post_s" in d:
        parts.append(f"up {d['bytes'] / MB / d['upload_post_s']:.0f} MB/s, "
                     f"down {d['bytes'] / MB / d['download_s']:.0f} MB/s")
    if "wire_bytes" in d:
        parts.append(
            f"sent {_mb(d['wire_bytes'])}, dataset re-sent {_mb(d['dataset_bytes_reuploaded'])}"
        )
    if d.get("intact") is False:
        parts.append("CORRUPT")
    return f" ({'; '.join(parts)})" if parts else ""
