"""sgpy against fio's sg engine, sg3_utils and a C floor, on one kernel, side by side.

    python benchmarks/run.py [--rounds 3] [--seconds 1.5] [--million 1000000] [--channels 256]

One command does everything: it installs what is missing (fio and
sg3-utils, and the QEMU sandbox's packages, through apt-get; sgpy's venv
through scripts/setup), builds the C floor ``benchmarks/floor.c`` with cc,
measures the host's probes, boots the QEMU sandbox ONCE with scsi_debug,
runs ``benchmarks/guest.py`` there (interleaved rounds, medians), prints one
table with IOPS and the ratios to fio and to C of both sgpy contenders (IO
objects, as an application drives them, and jobs, ``Channel.run``, whose
submit/complete loop is in C) beside the emulator's inflation factors, saves the raw numbers to ``benchmarks/results.json`` and
draws ``docs/_static/perf_qd.png`` with ``benchmarks/plot.py``.

Why QEMU and not the UML sandbox: User-Mode Linux makes each system call
hundreds of times slower, which hides Python's own cost.  QEMU's software
emulation slows Python more than it slows kernel code, hence the inflation
factors (a C syscall loop and a Python CPU loop, inside and outside the
guest) printed with the table.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")

#: scsi_debug at load time: four 64 MiB disks (one shared store) that
#: complete every command inside write(); guest.py switches ndelay at run time.
SCSI_DEBUG = "delay=0 dev_size_mb=64 num_tgts=4"


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# what the harness needs


def _apt_install(packages: Sequence[str]) -> None:
    say(f"installing {' '.join(packages)} with apt-get")
    sudo = [] if os.getuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def ensure_packages() -> None:
    need = []
    if shutil.which("fio") is None:
        need.append("fio")
    if shutil.which("sg_dd") is None or shutil.which("sgp_dd") is None:
        need.append("sg3-utils")
    if shutil.which("cc") is None:
        need += ["gcc", "libc6-dev"]
    from sgpy.sandbox import SandboxError, qemu

    try:
        qemu.find_qemu()
    except SandboxError:
        need += ["qemu-system-x86", "linux-image-amd64", "busybox-static"]
    if need:
        _apt_install(need)


def ensure_venv() -> None:
    """Re-run under the project's venv (built by scripts/setup) unless sgpy is importable here."""
    try:
        import sgpy._sgffi  # noqa: F401

        return
    except ImportError:
        pass
    if os.environ.get("SGPY_BENCH_REEXEC"):
        raise SystemExit("bench: sgpy's extension is still not importable after scripts/setup")
    say("setting up .venv with scripts/setup")
    subprocess.run([os.path.join(ROOT, "scripts", "setup")], check=True)
    os.environ["SGPY_BENCH_REEXEC"] = "1"
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__), *sys.argv[1:]])


def build_floor() -> str:
    """Compile benchmarks/floor.c once per content into sgpy's cache directory."""
    from sgpy.sandbox import cache_dir

    src = os.path.join(HERE, "floor.c")
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    out = os.path.join(cache_dir(), f"floor-{digest}")
    if not os.path.exists(out):
        say("building benchmarks/floor.c")
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-Wall", "-o", out, src], check=True)
    return out


# ---------------------------------------------------------------------------
# host probes (the same as inside the guest)


def host_probes(floor: str) -> Dict[str, float]:
    sys.path.insert(0, HERE)
    import guest  # noqa: E402  (pure Python parts only; no device needed)

    out = subprocess.run([floor, "syscall", "1.0"], check=True, stdout=subprocess.PIPE, text=True).stdout
    ops, secs = out.split()[1], out.split()[3]
    return {"python loop": guest.python_loop(1.0), "C syscall loop": int(ops) / float(secs)}


# ---------------------------------------------------------------------------
# the table


def med(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(results: List[Dict[str, Any]], host: Dict[str, float]) -> Dict[str, Any]:
    iops: Dict[Tuple[int, str, str], List[float]] = {}
    probes: Dict[str, List[float]] = {}
    other: Dict[str, Any] = {"channels": [], "latency": []}
    for r in results:
        if r["kind"] == "iops":
            iops.setdefault((r["setting"], r["workload"], r["who"]), []).append(r["value"])
        elif r["kind"] == "probe":
            probes.setdefault(r["what"], []).append(r["value"])
        elif r["kind"] == "unsupported":
            other.setdefault("unsupported", {})[f"{r['setting']}|{r['workload']}|{r['who']}"] = r["why"]
        elif r["kind"] == "info":
            other["kernel"] = r["kernel"]
        elif r["kind"] == "million":
            other["million"] = r
        elif r["kind"] == "million job":
            other["million job"] = r
        elif r["kind"] == "channels":
            other["channels"].append(r)
        elif r["kind"] == "latency":
            other["latency"].append(r)
        elif r["kind"] == "growth":
            other.setdefault("growth", []).append(r)
    return {
        "iops": {f"{s}|{w}|{who}": {"median": med(v), "runs": v} for (s, w, who), v in iops.items()},
        "probes_guest": {k: med(v) for k, v in probes.items()},
        "probes_host": host,
        **other,
    }


def table(summary: Dict[str, Any]) -> str:
    rows: Dict[Tuple[int, str], Dict[str, float]] = {}
    order: List[Tuple[int, str]] = []
    for key, v in summary["iops"].items():
        s, w, who = key.split("|")
        k = (int(s), w)
        if k not in rows:
            rows[k] = {}
            order.append(k)
        rows[k][who] = v["median"]

    def fmt(x: Optional[float]) -> str:
        return "—" if x is None else f"{x:,.0f}"

    def ratio(a: Optional[float], b: Optional[float]) -> str:
        return "—" if a is None or b is None or not b else f"{a / b:.2f}"

    # Columns: IOPS of both sgpy contenders, fio and C, then the ratios (the job's first).
    cols = ((13, "setting"), (36, "workload"), (9, "sgpy IO"), (9, "sgpy job"), (9, "fio"), (9, "C floor"),
            (7, "job/fio"), (7, "job/C"), (7, "IO/fio"), (7, "IO/C"))

    def row(*cells: str) -> str:
        return " ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, ((w, _), c) in enumerate(zip(cols, cells)))

    head = row(*(name for _, name in cols))
    lines = [head, "-" * len(head)]
    notes: set = set()
    for k in order:
        s, w = k
        r = rows[k]
        setting = "delay=0" if s == 0 else f"ndelay={s}"
        if "sgpy" not in r and "sgpy job" not in r and ("sg_dd" in r or "sgp_dd" in r):
            for tool in ("sg_dd", "sgp_dd"):
                if tool in r:
                    lines.append(row(setting, f"{w} ({tool})", "—", "—", "—", "—")
                                 + f"   {tool}: {fmt(r[tool])}")
            continue
        sg, job, fi, c = r.get("sgpy"), r.get("sgpy job"), r.get("fio"), r.get("C")
        fio_cell = fmt(fi) if fi is not None else "—"
        if fi is None and f"{s}|{w}|fio" in summary.get("unsupported", {}):
            fio_cell = "n/a"
            notes.add("n/a: fio's sg engine keeps all commands on one fd; sg queues at most 16 per fd (EDOM)")
        lines.append(row(setting, w, fmt(sg), fmt(job), fio_cell, fmt(c), ratio(job, fi), ratio(job, c),
                         ratio(sg, fi), ratio(sg, c)))
    lines.append("sgpy IO: IO objects (Channel.execute, callbacks in Python); sgpy job: Channel.run "
                 "(submit/complete loop in C,")
    lines.append("  latencies recorded); C floor: benchmarks/floor.c; job/fio, job/C, IO/fio, IO/C: "
                 "IOPS ratios (higher is better for sgpy)")
    lines += sorted(notes)
    lat = summary.get("latency")
    if lat:
        by: Dict[Tuple[int, str], List[Dict[str, Any]]] = {}
        for r in lat:
            by.setdefault((r["setting"], r["workload"]), []).append(r)
        for (s, w), rs in by.items():
            setting = "delay=0" if s == 0 else f"ndelay={s}"
            lines.append(f"sgpy job latency, {setting} {w}: p50 {med([r['p50_us'] for r in rs]):,.1f} µs, "
                         f"p99 {med([r['p99_us'] for r in rs]):,.1f} µs (median of {len(rs)} round{'s' if len(rs) != 1 else ''})")
    lines.append("")
    lines += percommand_table(summary)
    lines.append("")
    g, h = summary["probes_guest"], summary["probes_host"]
    lines.append("inflation (host / guest, per second):")
    for what in ("C syscall loop", "python loop"):
        if what in g and what in h:
            lines.append(f"  {what:<16} host {h[what]:>14,.0f}  guest {g[what]:>12,.0f}  "
                         f"inflation x{h[what] / g[what]:.1f}")
    if "C syscall loop" in g and "python loop" in g:
        pf = h["python loop"] / g["python loop"]
        cf = h["C syscall loop"] / g["C syscall loop"]
        lines.append(f"  Python is slowed x{pf / cf:.1f} more than C syscalls in the guest")
    for key, how in (("million", "IO objects"), ("million job", "one job")):
        m = summary.get(key)
        if m:
            lines.append(f"{m['commands']:,} commands at QD 16 ({how}): {m['commands'] / m['seconds']:,.0f}/s; "
                         f"RSS start {m['rss_start_kib']:,} KiB, end {m['rss_end_kib']:,} KiB, "
                         f"max {m['rss_max_kib']:,} KiB")
    lines.extend(growth_table(summary.get("growth", [])))
    ch = summary.get("channels")
    if ch:
        one = med([r["one"] for r in ch])
        many = med([r["many"] for r in ch])
        lines.append(f"{ch[0]['channels']} channels on one reactor (16 in flight): {many:,.0f}/s vs one channel "
                     f"QD 16: {one:,.0f}/s; per-command cost x{one / many:.2f} of one channel's")
    return "\n".join(lines)


def growth_table(rows: List[Dict[str, Any]]) -> List[str]:
    """Per-command cost and memory of execute_many(async_=True) as the batch grows (GC on)."""
    if not rows:
        return []
    out = ["execute_many(async_=True) of N prebuilt commands, one wait (QD 16, one fd, GC on):",
           f"{'workload':<16} {'N':>9} {'us/cmd':>8} {'vs 1st':>7} {'RSS before':>11} {'with IOs':>10} "
           f"{'dropped':>9} {'B/IO':>6} {'GC runs':>8}"]
    first: Dict[str, float] = {}
    for r in rows:
        base = first.setdefault(r["workload"], r["us"])
        per_io = (r["rss_peak_kib"] - r["rss_start_kib"]) * 1024 / r["n"]
        out.append(f"{r['workload']:<16} {r['n']:>9,} {r['us']:>8.1f} {r['us'] / base:>7.2f} "
                   f"{r['rss_start_kib']:>9,} K {r['rss_peak_kib']:>8,} K {r['rss_end_kib']:>7,} K "
                   f"{per_io:>6,.0f} {r['gc_runs']:>8}")
    return out


def percommand_table(summary: Dict[str, Any]) -> List[str]:
    """The per-command API beside the bare Python loop and C: ratios of medians, and their spread
    across rounds (each round's own ratio, min-max), since rounds are interleaved."""
    iops = summary["iops"]
    keys = sorted({tuple(k.split("|")[:2]) for k in iops if k.endswith("|Python loop")},
                  key=lambda sw: (int(sw[0]), sw[1]))
    if not keys:
        return []

    def runs(s: str, w: str, who: str) -> List[float]:
        v = iops.get(f"{s}|{w}|{who}")
        return v["runs"] if v else []

    def cell(a: List[float], b: List[float]) -> str:
        if not a or not b:
            return "—"
        per_round = [x / y for x, y in zip(a, b) if y]
        return f"{med(a) / med(b):.2f} ({min(per_round):.2f}-{max(per_round):.2f})"

    out = ["per-command API (IOPS medians; ratios of medians, per-round min-max in brackets):",
           f"{'setting':<13} {'workload':<24} {'sgpy IO':>9} {'sgpy many':>9} {'Py loop':>9} {'C floor':>9}  "
           f"{'IO/loop':<17} {'many/loop':<17} {'IO/C':<17} {'many/C':<17}"]
    for s, w in keys:
        io, many, loop, c = (runs(s, w, who) for who in ("sgpy", "sgpy many", "Python loop", "C"))
        setting = "delay=0" if s == "0" else f"ndelay={s}"
        out.append(f"{setting:<13} {w:<24} {med(io) if io else float('nan'):>9,.0f} "
                   f"{med(many) if many else float('nan'):>9,.0f} {med(loop):>9,.0f} "
                   f"{med(c) if c else float('nan'):>9,.0f}  {cell(io, loop):<17} {cell(many, loop):<17} "
                   f"{cell(io, c):<17} {cell(many, c):<17}")
    out.append("Py loop: sgpy's binding called from a bare Python loop (SyncCaller.call; async: reap, fill, submit "
               "per command); sgpy many: execute_many of 256 prebuilt READ(10)s on a one-fd channel (QD 16)")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported; >= 3)")
    p.add_argument("--seconds", type=float, default=1.5, help="length of each measurement")
    p.add_argument("--million", type=int, default=1_000_000, help="commands of the flat-RSS run (0: skip)")
    p.add_argument("--channels", type=int, default=256, help="channels of the many-channel run (0: skip)")
    p.add_argument("--timeout", type=float, default=3600, help="kill the guest after this many seconds")
    p.add_argument("--no-plot", action="store_true", help="do not draw docs/_static/perf_qd.png")
    p.add_argument("--growth", default="1000,10000,100000,1000000",
                   help="batch sizes of the growth rows ('' to skip)")
    p.add_argument("--growth-only", action="store_true",
                   help="only the growth rows: no rounds, no million or channel runs; the results go to "
                        "benchmarks/growth.json (results.json is left alone)")
    p.add_argument("--only", default="",
                   help="run only the workloads whose name contains one of these comma-separated words "
                        "(e.g. 'sync,QD 16'), with no million, channel or growth runs; the results go to "
                        "benchmarks/results-only.json (results.json is left alone)")
    args = p.parse_args(argv)
    if args.growth_only or args.only:
        args.million = 0
        args.channels = 0
    if args.only:
        args.growth = ""
    sys.path.insert(0, ROOT)
    ensure_venv()
    ensure_packages()
    from sgpy import sandbox

    floor = build_floor()
    say("host probes")
    host = host_probes(floor)
    say("booting the QEMU sandbox (once) and measuring; progress follows")
    out = io.BytesIO()
    t0 = time.monotonic()
    rc = sandbox.run(
        [sys.executable, os.path.join(HERE, "guest.py"), "--floor", floor, "--rounds", str(args.rounds),
         "--seconds", str(args.seconds), "--million", str(args.million), "--channels", str(args.channels),
         "--growth", args.growth, "--only", args.only] + (["--skip-rounds"] if args.growth_only else []),
        kernel="qemu", scsi_debug=SCSI_DEBUG, timeout=args.timeout, cwd=ROOT, stdout=out, mem="2048M",
    )
    if rc != 0:
        say(f"the guest's run failed with status {rc} (its error is above); the table has what was measured")
    say(f"guest run took {time.monotonic() - t0:.0f} s")
    results = [json.loads(line[len("RESULT "):]) for line in out.getvalue().decode().splitlines()
               if line.startswith("RESULT ")]
    summary = summarize(results, host)
    summary["command"] = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    summary["rounds"] = args.rounds
    if args.growth_only:
        with open(os.path.join(HERE, "growth.json"), "w", encoding="utf-8") as f:
            json.dump({"command": summary["command"], "growth": summary.get("growth", []),
                       "probes_host": host}, f, indent=1)
        print("\n".join(growth_table(summary.get("growth", []))))
        return rc
    name = "results-only.json" if args.only else "results.json"
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(table(summary))
    if not args.no_plot and not args.only:
        # matplotlib goes into the project's venv, not the system's Python.
        py = VENV_PY if os.path.exists(VENV_PY) else sys.executable
        subprocess.run([py, os.path.join(HERE, "plot.py"), os.path.join(HERE, "results.json")], check=False)
    return rc


if __name__ == "__main__":
    sys.exit(main())
