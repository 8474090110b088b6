"""Instructions per command of sgpy's Python side, counted by valgrind: a measure that does not drift
with the machine's load, for changes to the per-command path.

    python -m sgpy.sandbox -- python benchmarks/instructions.py [--commands 5120] [WORKLOAD ...]

Runs inside the sandbox (real sg devices; the kernel's own work is not
counted: valgrind counts the instructions of this process only).  For each
workload it runs this script under ``valgrind --tool=callgrind`` twice, with
N commands and with none, and prints (difference) / N: what one command
costs on top of the set-up.  Workloads: ``loop`` (sgpy's binding in a bare
Python loop, ``SyncCaller.call``: the floor of any synchronous Python
path), ``tur`` (``execute(TEST UNIT READY)``, prebuilt), ``cmd``
(``channel.cmd.TestUnitReady()``: the command built per call), ``read``
(``execute`` of a prebuilt 4 KiB READ(10)), ``many`` (``execute_many`` of
256 prebuilt 4 KiB READ(10)s on a one-fd channel: QD 16), ``fresh`` (the
same with 256 READ(10)s built for each batch, their building counted),
``chain`` (16
READ(10)s in flight, each done callback submitting the next), ``pool``
(the same on a channel of up to 16 fds, as ``benchmarks/run.py``'s
callback rows run it: one command per fd).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ("loop", "tur", "cmd", "read", "many", "fresh", "chain", "pool")


def work(what: str, n: int) -> None:
    """Run ``n`` commands of workload ``what`` (after the same warm-up whatever ``n``)."""
    sys.path.insert(0, os.path.dirname(HERE))
    from sgpy import _binding, command, devices
    from sgpy.channel import Channel
    from sgpy.constants import Direction

    dev = sorted(d.path for d in devices.devices())[0]
    ch = Channel.from_path(dev, max_fds=16 if what == "pool" else 1, block_size=512)
    tur = command.TestUnitReady()
    ring = [command.Read10(lba=(i * 7919 % 1000) * 8, transfer_length=8) for i in range(256)]
    caller = _binding.SyncCaller(os.open(dev, os.O_RDWR))
    for _ in range(2):  # warm-up: the same for every n, so that the difference is n commands
        ch.execute(tur)
        ch.execute_many(ring[:32])
        caller.call(tur.cdb, _binding.DXFER[Direction.NONE], _binding.NULL, 0, 60000)
    if what == "loop":
        call, cdb, none, null = caller.call, tur.cdb, _binding.DXFER[Direction.NONE], _binding.NULL
        for _ in range(n):
            call(cdb, none, null, 0, 60000)
    elif what == "tur":
        execute = ch.execute
        for _ in range(n):
            execute(tur)
    elif what == "cmd":
        build_and_send = ch.cmd.TestUnitReady
        for _ in range(n):
            build_and_send()
    elif what == "read":
        execute, rd = ch.execute, ring[0]
        for _ in range(n):
            execute(rd)
    elif what == "many":
        for _ in range(n // 256):
            ch.execute_many(ring)
    elif what == "fresh":
        read10 = command.Read10
        for b in range(n // 256):
            ch.execute_many([read10(lba=((b * 256 + i) * 7919 % 1000) * 8, transfer_length=8) for i in range(256)])
    elif what in ("chain", "pool"):
        state = {"left": n}
        rd = ring[0]

        def on_done(io: object) -> None:
            if state["left"] > 0:
                state["left"] -= 1
                ch.execute(rd, async_=True).add_done_callback(on_done)

        for _ in range(min(16, n)):
            state["left"] -= 1
            ch.execute(rd, async_=True).add_done_callback(on_done)
        ch.reactor.wait()
    ch.close()


def count(what: str, n: int) -> int:
    """Instructions of one run of this script with workload ``what`` and ``n`` commands."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           os.path.abspath(__file__), "--run", what, str(n)],
                          capture_output=True, text=True, check=False)
    m = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or m is None:
        raise SystemExit(f"valgrind run of {what} failed:\n{proc.stderr[-3000:]}")
    return int(m.group(1))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=f"of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--commands", type=int, default=5120, help="commands per counted run (a multiple of 256)")
    p.add_argument("--run", nargs=2, metavar=("WORKLOAD", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run:
        work(args.run[0], int(args.run[1]))
        return 0
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}: choose from {', '.join(WORKLOADS)}")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    n = args.commands
    floor: List[int] = []
    for what in args.workloads or WORKLOADS:
        per = (count(what, n) - count(what, 0)) / n
        if what == "loop":
            floor.append(int(per))
        ratio = f"  ({floor[0] / per:.2f} of the bare loop's cost)" if floor and what != "loop" else ""
        print(f"{what:6s} {per:10,.0f} instructions per command{ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
