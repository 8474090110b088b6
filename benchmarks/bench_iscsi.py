#!/usr/bin/env python3
"""sgpy over iSCSI against libiscsi's own ``iscsi-perf`` (C), same tgtd LUN, queue depth 32.

A private tgtd (``tests/iscsi/iscsi_target.py``) serves one file-backed LUN
on 127.0.0.1.  The two contenders run in turn, interleaved (perf, sgpy,
perf, sgpy...), each for ``-t`` seconds, and the medians of their IOPS are
compared:

``iscsi-perf``
    ``iscsi-perf -m 32 -b 8 -t T URL``: 32 READs of 8 blocks (4 KiB) in
    flight, sequential LBAs; its closing "iops average" line is read.
``sgpy``
    one :class:`sgpy.iscsi.IscsiChannel` with ``queue_depth=32`` on its own
    reactor, fed READ(10) commands of 8 blocks at sequential LBAs through
    ``execute_many(async_=True)`` in batches, so its queue never runs dry;
    IOPS are the commands completed in full (good status, no residual) per
    second of the timed loop.

Both speak to the same tgtd over loopback; the machine's cores are shared
with tgtd, as they would be by any initiator on it.  The target ratio is
sgpy >= 0.7 x iscsi-perf.

    python benchmarks/bench_iscsi.py [-t 5] [-r 5] [--lun-mb 64]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.join(_ROOT, "tests", "iscsi"))

from iscsi_target import Tgtd, missing  # noqa: E402

from sgpy import Reactor, command, handler  # noqa: E402
from sgpy.iscsi import IscsiChannel  # noqa: E402

QUEUE_DEPTH = 32
BLOCKS = 8  # 4 KiB reads of 512-byte blocks, iscsi-perf's -b 8
TARGET_RATIO = 0.7


def run_iscsi_perf(url: str, seconds: int) -> float:
    """One iscsi-perf run; its "iops average" figure."""
    out = subprocess.run(["iscsi-perf", "-m", str(QUEUE_DEPTH), "-b", str(BLOCKS), "-t", str(seconds), url],
                         capture_output=True, text=True, timeout=seconds + 60)
    found = re.findall(r"iops average (\d+)", out.stdout.replace("\r", "\n"))
    if out.returncode != 0 or not found:
        raise RuntimeError(f"iscsi-perf failed ({out.returncode}): {out.stdout[-500:]}{out.stderr[-500:]}")
    return float(found[-1])


def run_sgpy(url: str, seconds: float, lun_blocks: int) -> float:
    """One sgpy run: READ(10) x 8 blocks at queue depth 32 for ``seconds``; IOPS."""
    batch = 512
    reactor = Reactor()
    try:
        ch = IscsiChannel.from_url(url, reactor=reactor, queue_depth=QUEUE_DEPTH)
        ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        lba = 0
        span = lun_blocks - BLOCKS

        def make() -> list:
            nonlocal lba
            cmds = []
            for _ in range(batch):
                cmds.append(command.Read10(lba=lba, transfer_length=BLOCKS))
                lba = (lba + BLOCKS) % span
            return cmds

        done = 0
        pending = [ch.execute_many(make(), async_=True), ch.execute_many(make(), async_=True)]
        start = time.perf_counter()
        end = start + seconds
        while True:
            oldest = pending.pop(0)
            reactor.wait(oldest)
            done += sum(1 for io in oldest if io.ok and not io.hdr.resid)
            if time.perf_counter() >= end:
                break
            pending.append(ch.execute_many(make(), async_=True))
        elapsed = time.perf_counter() - start
        for ios in pending:
            reactor.wait(ios)
        ch.close()
        return done / elapsed
    finally:
        reactor.close()


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-t", "--seconds", type=int, default=5, help="length of each run (default 5)")
    p.add_argument("-r", "--rounds", type=int, default=5, help="runs of each contender (default 5)")
    p.add_argument("--lun-mb", type=int, default=64, help="size of the LUN's backing file (default 64)")
    args = p.parse_args(argv)
    why = missing()
    if why:
        print(f"bench_iscsi: cannot run: {why}", file=sys.stderr)
        return 2
    if shutil.which("iscsi-perf") is None:
        print("bench_iscsi: iscsi-perf is missing (Debian package libiscsi-bin)", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="sgpy-bench-iscsi-")
    tgtd = Tgtd(work)
    try:
        tgtd.start()
        iqn = tgtd.add_target("bench", size_mb=args.lun_mb)
        url = tgtd.url(iqn, 1)
        lun_blocks = args.lun_mb * 2048
        # Warm the target's page cache and both code paths once.
        run_iscsi_perf(url, 1)
        run_sgpy(url, 1, lun_blocks)
        perf: List[float] = []
        ours: List[float] = []
        print(f"target {url}, queue depth {QUEUE_DEPTH}, {BLOCKS * 512}-byte reads, "
              f"{args.rounds} x {args.seconds} s each, interleaved")
        for r in range(args.rounds):
            perf.append(run_iscsi_perf(url, args.seconds))
            ours.append(run_sgpy(url, args.seconds, lun_blocks))
            print(f"  round {r + 1}: iscsi-perf {perf[-1]:9.0f} IOPS   sgpy {ours[-1]:9.0f} IOPS")
        mp, mo = statistics.median(perf), statistics.median(ours)
        ratio = mo / mp
        print(f"median: iscsi-perf {mp:.0f} IOPS, sgpy {mo:.0f} IOPS, ratio {ratio:.2f} "
              f"(target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
        return 0 if ratio >= TARGET_RATIO else 1
    finally:
        tgtd.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
